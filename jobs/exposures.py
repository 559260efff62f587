"""lookups + flagged_clients -> exposures: whose watchlist data was returned to a flagged entity.

This is the list the data protection officer needs to notify people: for each watchlist person
and each flagged entity (or member of a flagged campaign) that received their data, when and how often.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas import EXPOSURES


def exposures(lookups: DataFrame, flags: DataFrame) -> DataFrame:
    """Hits on watchlist people by non-shadow flagged entities, directly or as campaign members."""
    live = flags.where(~F.col("shadow"))
    direct = live.where(F.col("entity_type") != "campaign").select(
        "entity_type",
        "entity_value",
        F.lit(None).cast("string").alias("campaign"),
        "severity",
        "detect_run_id",
        "detect_date",
    )
    members = live.where(F.col("entity_type") == "campaign").select(
        F.lit("client_id").alias("entity_type"),
        F.explode("members").alias("entity_value"),
        F.col("entity_value").alias("campaign"),
        "severity",
        "detect_run_id",
        "detect_date",
    )
    received = lookups.where(F.col("hit") & F.col("watchlist_key").isNotNull())
    return (
        received.join(direct.unionByName(members), ["entity_type", "entity_value"])
        .groupBy("detect_run_id", "detect_date", "watchlist_key", "entity_type", "entity_value", "campaign")
        .agg(
            F.first("severity").alias("severity"),
            F.count(F.lit(1)).alias("hits"),
            F.min("event_time").alias("first_hit"),
            F.max("event_time").alias("last_hit"),
        )
        .transform(EXPOSURES.conform)
    )
