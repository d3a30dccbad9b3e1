"""homicide_assets: a Dagster data platform for death investigations and partner data."""

__version__ = "0.1.0"
