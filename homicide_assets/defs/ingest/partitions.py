"""One dynamic partition per delivered file, one partitions definition per feed."""

from dagster import DynamicPartitionsDefinition

from homicide_assets.lib.feeds import FEED_NAMES

DELIVERY_PARTITIONS: dict[str, DynamicPartitionsDefinition] = {
    feed: DynamicPartitionsDefinition(name=f"deliveries_{feed}") for feed in FEED_NAMES
}
