"""Pure logic with no Dagster import: parsing, normalising, matching, scoring, rendering."""
