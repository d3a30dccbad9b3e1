"""Ingest: landing folder -> archive -> raw/<feed> -> staged/<feed>."""

from homicide_assets.defs.ingest.assets import raw_assets, staged_assets
from homicide_assets.defs.ingest.partitions import DELIVERY_PARTITIONS
from homicide_assets.defs.ingest.sensors import partner_delivery_sensor

__all__ = ["DELIVERY_PARTITIONS", "partner_delivery_sensor", "raw_assets", "staged_assets"]
