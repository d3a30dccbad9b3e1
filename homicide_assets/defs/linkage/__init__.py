"""Linkage: person matches and clusters across partners, and one register row per death."""

from homicide_assets.defs.linkage.assets import LinkageConfig, linkage_assets

__all__ = ["LinkageConfig", "linkage_assets"]
