"""Patterns: rates, trends with control limits, the police and partner view, hotspots."""

from homicide_assets.defs.patterns.assets import (
    DEATH_PATTERNS_KEY,
    VIOLENCE_HOTSPOTS_KEY,
    PatternsConfig,
    death_patterns,
    patterns_assets,
    violence_hotspots,
)

__all__ = [
    "DEATH_PATTERNS_KEY",
    "VIOLENCE_HOTSPOTS_KEY",
    "PatternsConfig",
    "death_patterns",
    "patterns_assets",
    "violence_hotspots",
]
