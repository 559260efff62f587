"""lookups -> entity_hours / entity_prefix_hours -> entity_days / entity_prefix_days -> entity_windows.

Distinct counts live in per-hour HLL sketches (`hll_sketch_agg`). The hours of a day are merged
once (`hll_union_agg`) into a stored day row, and a sliding 7-day window merges at most seven
stored day rows: an incremental run that recomputes one day reads the other six as they were
stored, instead of merging their hours again. The sequence numbers tried under one ID prefix are
kept as exact sets (at most 1000 values each), which merge by union.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.sketches import union_sets, value_set
from schemas import ENTITY_DAYS, ENTITY_HOURS, ENTITY_PREFIX_DAYS, ENTITY_PREFIX_HOURS, ENTITY_WINDOWS

ENTITY = ["entity_type", "entity_value"]
_SKETCHES = {
    "sketch_ids": "id_hash",
    "sketch_names": "name_hash",
    "sketch_watchlist": "watchlist_key",
    "sketch_clients": "client_id",
    "sketch_devices": "device_id",
    "sketch_ips": "client_ip",
}
DISTINCT = {
    "distinct_ids": "sketch_ids",
    "distinct_names": "sketch_names",
    "distinct_watchlist": "sketch_watchlist",
    "distinct_clients": "sketch_clients",
    "distinct_devices": "sketch_devices",
    "distinct_ips": "sketch_ips",
}
SAMPLES = 5
_COUNTS = ("lookups", "hits", "misses", "id_lookups", "invalid_ids")
_SETS = ("watchlist_keys", "watchlist_hit_keys")


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
            value_set("watchlist_key").alias("watchlist_keys"),
            value_set(F.when(F.col("hit"), F.col("watchlist_key"))).alias("watchlist_hit_keys"),
            F.slice(value_set("id_masked"), 1, SAMPLES).alias("id_samples"),
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
        .agg(value_set("id_seq").alias("seqs"))
        .transform(ENTITY_PREFIX_HOURS.conform)
    )


def _window_keys(df: DataFrame, kind: str, ends: Column) -> DataFrame:
    """Tag rows of an hourly (hour) or daily (day, 7d) table with the window(s) of `kind` they fall in.

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


def _merge(rows: DataFrame, keys: list[str], *more: Column) -> DataFrame:
    """Merge rows into one per key: counts summed, sketches and sets united, plus the aggregates `more`.

    `active_days` counts the rows merged, which is the active days when the rows are day rows.
    """
    return rows.groupBy(*keys).agg(
        *[F.sum(c).alias(c) for c in _COUNTS],
        F.count(F.lit(1)).alias("active_days"),
        *[F.hll_union_agg(s, True).alias(s) for s in _SKETCHES],
        *[union_sets(c).alias(c) for c in _SETS],
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        *more,
    )


def entity_days(hours: DataFrame) -> DataFrame:
    """One row per entity and day: the day's hours merged, as a 7-day window reads them."""
    samples = F.slice(union_sets("id_samples"), 1, SAMPLES).alias("id_samples")
    return _merge(hours, [*ENTITY, "event_date"], samples).transform(ENTITY_DAYS.conform)


def entity_prefix_days(prefix_hours: DataFrame) -> DataFrame:
    """One row per entity, day and ID prefix: the sequence numbers tried under it that day."""
    return (
        prefix_hours.groupBy(*ENTITY, "event_date", "id_prefix_hash")
        .agg(union_sets("seqs").alias("seqs"))
        .transform(ENTITY_PREFIX_DAYS.conform)
    )


def _seq_features(per_prefix: DataFrame, keys: list[str]) -> DataFrame:
    per_prefix = per_prefix.withColumn("n", F.size("seqs")).withColumn(
        "consecutive", F.size(F.filter("seqs", lambda s: F.array_contains(F.col("seqs"), s - 1)))
    )
    return per_prefix.groupBy(*keys).agg(
        F.max("n").alias("max_seqs_per_prefix"),
        (F.sum("consecutive") / F.sum("n")).alias("consecutive_share"),
    )


def _prefix_features(prefixes: DataFrame, kind: str, ends: Column) -> DataFrame:
    keys = [*ENTITY, "window_start", "window_end"]
    rows = _window_keys(prefixes, kind, ends)
    if kind == "7d":  # one prefix over up to seven days
        rows = rows.groupBy(*keys, "id_prefix_hash").agg(union_sets("seqs").alias("seqs"))
    return _seq_features(rows, keys)


def seven_day_ends(dates: list[date], last: date) -> list[date]:
    """The days whose 7-day windows include any of `dates`, up to the last day with data."""
    return sorted({d + timedelta(days=k) for d in dates for k in range(7) if d + timedelta(days=k) <= last})


def _merged(rows: DataFrame, kind: str, ends: Column) -> DataFrame:
    """One row per entity and window of `kind`, still carrying sketches.

    A row of entity_hours is already one hour window and a row of entity_days one day window; a
    7-day window merges up to seven day rows.
    """
    if kind != "7d":
        return _window_keys(rows.withColumn("active_days", F.lit(1)), kind, ends)
    return _merge(_window_keys(rows, kind, ends), [*ENTITY, "window_start", "window_end"])


def entity_windows(sources: dict[str, tuple[DataFrame, DataFrame]], ends_7d: list[date] = ()) -> DataFrame:
    """Every window of each kind in `sources`, which maps the kind to the rows it is built from.

    hour: (entity_hours, entity_prefix_hours), each row one window; day: (entity_days,
    entity_prefix_days), each row one window; 7d: (entity_days, entity_prefix_days) of the days the
    windows ending on `ends_7d` cover.
    """
    ends = F.array(*[F.lit(d) for d in ends_7d]).cast("array<date>")
    keys = [*ENTITY, "window_start", "window_end"]
    frames = [
        _merged(rows, kind, ends)
        .select(
            *keys,
            *_COUNTS,
            "active_days",
            *_SETS,
            "first_seen",
            "last_seen",
            *[F.coalesce(F.hll_sketch_estimate(sketch), F.lit(0)).alias(name) for name, sketch in DISTINCT.items()],
        )
        .join(_prefix_features(prefixes, kind, ends), keys, "left")
        .withColumn("window", F.lit(kind))
        for kind, (rows, prefixes) in sources.items()
    ]
    out = reduce(DataFrame.unionByName, frames)
    capped = {name: F.least(F.col(name), F.col("lookups")) for name in DISTINCT}
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
