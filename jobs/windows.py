"""lookups -> entity_hours / entity_prefix_hours -> entity_windows.

Distinct counts live in per-hour HLL sketches (`hll_sketch_agg`); day and sliding 7-day windows
merge those sketches (`hll_union_agg`) instead of rescanning lookups. The sequence numbers tried
under one ID prefix are kept as exact sets (at most 1000 values each), which merge by union.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import ENTITY_HOURS, ENTITY_PREFIX_HOURS, ENTITY_WINDOWS

ENTITY = ["entity_type", "entity_value"]
_SKETCHES = {
    "sketch_ids": "id_hash",
    "sketch_names": "name_hash",
    "sketch_watchlist": "watchlist_key",
    "sketch_clients": "client_id",
    "sketch_devices": "device_id",
    "sketch_ips": "client_ip",
}
_DISTINCT = {
    "distinct_ids": "sketch_ids",
    "distinct_names": "sketch_names",
    "distinct_watchlist": "sketch_watchlist",
    "distinct_clients": "sketch_clients",
    "distinct_devices": "sketch_devices",
    "distinct_ips": "sketch_ips",
}
SAMPLES = 5


def entity_hours(lookups: DataFrame, lg_config_k: int) -> DataFrame:
    """One row per entity and hour with counts, HLL sketches and small sets."""
    return (
        lookups.groupBy(*ENTITY, F.col("event_hour").alias("hour_start"), "event_date")
        .agg(
            F.count(F.lit(1)).alias("lookups"),
            F.count_if("hit").alias("hits"),
            F.count_if("miss").alias("misses"),
            F.count("id_hash").alias("id_lookups"),
            F.count_if(F.col("id_hash").isNotNull() & ~F.col("id_valid")).alias("invalid_ids"),
            *[F.hll_sketch_agg(src, lg_config_k).alias(name) for name, src in _SKETCHES.items()],
            F.collect_set("watchlist_key").alias("watchlist_keys"),
            F.collect_set(F.when(F.col("hit"), F.col("watchlist_key"))).alias("watchlist_hit_keys"),
            F.slice(F.collect_set("id_masked"), 1, SAMPLES).alias("id_samples"),
            F.min("event_time").alias("first_seen"),
            F.max("event_time").alias("last_seen"),
        )
        .transform(ENTITY_HOURS.conform)
    )


def entity_prefix_hours(lookups: DataFrame) -> DataFrame:
    """One row per entity, hour and ID prefix with the set of sequence numbers tried."""
    return (
        lookups.where(F.col("id_prefix_hash").isNotNull() & F.col("id_seq").isNotNull())
        .groupBy(*ENTITY, F.col("event_hour").alias("hour_start"), "event_date", "id_prefix_hash")
        .agg(F.collect_set("id_seq").alias("seqs"))
        .transform(ENTITY_PREFIX_HOURS.conform)
    )


def _window_keys(df: DataFrame, kind: str, ends: Column) -> DataFrame:
    """Tag rows of an hourly table with the window(s) of `kind` they fall in.

    `ends` (array<date>) lists the days whose sliding 7-day windows are wanted: a row of day d
    belongs to the windows ending on those of d .. d+6 that are listed.
    """
    if kind == "hour":
        return df.withColumn("window_start", F.col("hour_start")).withColumn(
            "window_end", F.col("hour_start") + F.expr("INTERVAL 1 HOUR")
        )
    if kind == "day":
        start = F.col("event_date").cast("timestamp")
        return df.withColumn("window_start", start).withColumn("window_end", start + F.expr("INTERVAL 1 DAY"))
    wanted = F.filter(F.sequence(F.col("event_date"), F.date_add("event_date", 6)), lambda e: F.array_contains(ends, e))
    return (
        df.withColumn("_end", F.explode(wanted))
        .withColumn("window_start", F.date_sub("_end", 6).cast("timestamp"))
        .withColumn("window_end", F.date_add("_end", 1).cast("timestamp"))
        .drop("_end")
    )


def _estimate(sketch: str) -> Column:
    return F.coalesce(F.hll_sketch_estimate(F.hll_union_agg(sketch, True)), F.lit(0))


def _union_sets(col: str) -> Column:
    return F.array_distinct(F.flatten(F.collect_list(col)))


def _prefix_features(prefix_hours: DataFrame, kind: str, ends: Column) -> DataFrame:
    keys = [*ENTITY, "window_start", "window_end"]
    per_prefix = (
        _window_keys(prefix_hours, kind, ends)
        .groupBy(*keys, "id_prefix_hash")
        .agg(_union_sets("seqs").alias("seqs"))
        .withColumn("n", F.size("seqs"))
        .withColumn("consecutive", F.size(F.filter("seqs", lambda s: F.array_contains(F.col("seqs"), s - 1))))
    )
    return per_prefix.groupBy(*keys).agg(
        F.max("n").alias("max_seqs_per_prefix"),
        (F.sum("consecutive") / F.sum("n")).alias("consecutive_share"),
    )


def seven_day_ends(dates: list[date], last: date) -> list[date]:
    """The days whose 7-day windows include any of `dates`, up to the last day with data."""
    return sorted({d + timedelta(days=k) for d in dates for k in range(7) if d + timedelta(days=k) <= last})


def entity_windows(hours: DataFrame, prefix_hours: DataFrame, kinds: list[str], ends_7d: list[date] = ()) -> DataFrame:
    """Merge hourly rows into every hour and day window of `hours`, and the 7-day windows ending on the given days."""
    ends = F.array(*[F.lit(d) for d in ends_7d]).cast("array<date>")
    frames = []
    for kind in kinds:
        keys = [*ENTITY, "window_start", "window_end"]
        merged = (
            _window_keys(hours, kind, ends)
            .groupBy(*keys)
            .agg(
                *[F.sum(c).alias(c) for c in ("lookups", "hits", "misses", "id_lookups", "invalid_ids")],
                *[_estimate(sketch).alias(name) for name, sketch in _DISTINCT.items()],
                F.countDistinct("event_date").alias("active_days"),
                _union_sets("watchlist_keys").alias("watchlist_keys"),
                _union_sets("watchlist_hit_keys").alias("watchlist_hit_keys"),
                F.min("first_seen").alias("first_seen"),
                F.max("last_seen").alias("last_seen"),
            )
        )
        frames.append(
            merged.join(_prefix_features(prefix_hours, kind, ends), keys, "left").withColumn("window", F.lit(kind))
        )
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    capped = {name: F.least(F.col(name), F.col("lookups")) for name in _DISTINCT}
    return (
        out.withColumns(capped)
        .withColumn("miss_share", F.col("misses") / F.col("lookups"))
        .withColumn(
            "invalid_id_share",
            F.when(F.col("id_lookups") > 0, F.col("invalid_ids") / F.col("id_lookups")).otherwise(F.lit(0.0)),
        )
        .fillna({"max_seqs_per_prefix": 0, "consecutive_share": 0.0})
        .withColumn("window_date", F.to_date("window_start"))
        .transform(ENTITY_WINDOWS.conform)
    )
