"""requests -> lookups: the lookup requests, keyed to the entity that made them.

An entity is the client id when the gateway logged one, else the device id; the IP is the key only
for anonymous traffic, so hundreds of people behind one carrier-grade NAT address are never merged
into one "client".
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import LOOKUPS


def ip_24(ip: Column) -> Column:
    """The IPv4 /24 of an address as 'a.b.c.0/24', else null."""
    head = F.regexp_extract(ip, r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
    return F.when(head != "", F.concat(head, F.lit(".0/24")))


def to_lookups(requests: DataFrame) -> DataFrame:
    """The lookup rows of `requests` with entity keys, /24 and hit/miss flags, in `lookups` column order."""
    return (
        requests.where(F.col("is_lookup") & (F.col("id_hash").isNotNull() | F.col("name_hash").isNotNull()))
        .withColumn(
            "entity_type",
            F.when(F.col("client_id").isNotNull(), "client_id")
            .when(F.col("device_id").isNotNull(), "device_id")
            .otherwise("client_ip"),
        )
        .withColumn("entity_value", F.coalesce("client_id", "device_id", "client_ip"))
        .withColumn("event_hour", F.date_trunc("hour", "event_time"))
        .withColumn("ip_24", ip_24(F.col("client_ip")))
        .withColumn("hit", F.col("status") == 200)
        .withColumn("miss", F.col("status") == 404)
        .transform(LOOKUPS.conform)
    )
