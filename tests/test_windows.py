"""lookups -> entity_hours -> entity_days -> entity_windows: window features, merging of days, and HLL accuracy."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from core.rules import load_rules
from jobs.windows import (
    entity_days,
    entity_hours,
    entity_prefix_days,
    entity_prefix_hours,
    entity_windows,
    seven_day_ends,
)
from schemas import LOOKUPS
from schemas.table import spark_type

KINDS = ["hour", "day", "7d"]
LG_K = load_rules().hll_lg_config_k


def as_lookups(df):
    """`df` completed to `lookups`: event_hour/event_date follow event_time, other missing columns get defaults or null."""
    defaults = {
        "entity_type": F.lit("client_id"),
        "client_ip": F.lit("203.0.113.7"),
        "status": F.lit(404),
        "hit": F.lit(False),
        "miss": F.lit(True),
        "id_valid": F.lit(True),
        "source_file": F.lit("/logs/a.jsonl"),
        "line_no": F.lit(1),
        "event_hour": F.date_trunc("hour", "event_time"),
        "event_date": F.to_date("event_time"),
    }
    fill = {
        c.name: defaults.get(c.name, F.lit(None)).cast(spark_type(c.type))
        for c in LOOKUPS.columns
        if c.name not in df.columns
    }
    return df.withColumns(fill).transform(LOOKUPS.conform)


def lookups_frame(spark, ddl: str, rows: list[tuple]):
    """`lookups` rows from a few columns given inline."""
    return as_lookups(spark.createDataFrame(rows, ddl))


def windows_of(lookups, kinds=KINDS):
    """entity_windows over `lookups`, with every 7-day window that ends on a day with data."""
    hours = entity_hours(lookups, LG_K)
    prefix_hours = entity_prefix_hours(lookups)
    days = (entity_days(hours), entity_prefix_days(prefix_hours))
    sources = {"hour": (hours, prefix_hours), "day": days, "7d": days}
    dates = sorted({r["event_date"] for r in lookups.select("event_date").distinct().collect()})
    return entity_windows({kind: sources[kind] for kind in kinds}, seven_day_ends(dates, dates[-1]))


def _seq_rows(entity: str, at: datetime, prefix: str, seqs: list[int]) -> list[tuple]:
    return [(entity, at, f"{prefix}-{s:03d}".ljust(64, "0"), prefix.ljust(64, "0"), s) for s in seqs]


SEQ_DDL = "entity_value string, event_time timestamp, id_hash string, id_prefix_hash string, id_seq int"


@pytest.mark.spark
def test_entity_windows_prefix_features_per_hour_and_merged_over_the_day(spark):
    ten, eleven = datetime(2026, 11, 1, 10, 5), datetime(2026, 11, 1, 11, 5)
    lookups = lookups_frame(
        spark,
        SEQ_DDL,
        _seq_rows("a", ten, "p1", [1, 2, 3, 7])
        + _seq_rows("a", ten, "p2", [5])
        + _seq_rows("a", eleven, "p1", [4, 8])
        # a repeat of seq 2 in the next hour adds nothing to the set
        + _seq_rows("a", eleven, "p1", [2]),
    )
    got = windows_of(lookups).select("window", "window_start", "lookups", "max_seqs_per_prefix", "consecutive_share")
    day = datetime(2026, 11, 1)
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [
                # p1 {1,2,3,7}: 2 and 3 follow a tried number; p2 {5}: none -> 2 of 5
                ("hour", datetime(2026, 11, 1, 10), 5, 4, 2 / 5),
                # p1 {2,4,8}: none follows a tried number
                ("hour", datetime(2026, 11, 1, 11), 3, 3, 0.0),
                # p1 {1,2,3,4,7,8}: 2,3,4,8 -> with p2 {5}: 4 of 7
                ("day", day, 8, 6, 4 / 7),
                ("7d", datetime(2026, 10, 26), 8, 6, 4 / 7),
            ],
            "window string, window_start timestamp, lookups bigint, max_seqs_per_prefix bigint, consecutive_share double",
        ),
    )


@pytest.mark.spark
def test_entity_windows_without_sequence_numbers_have_zero_prefix_features(spark):
    lookups = lookups_frame(
        spark,
        "entity_value string, event_time timestamp, name_hash string",
        [("a", datetime(2026, 11, 1, 10), "n" * 64)],
    )
    got = windows_of(lookups, ["day"]).select(
        "max_seqs_per_prefix", "consecutive_share", "distinct_ids", "distinct_names"
    )
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [(0, 0.0, 0, 1)],
            "max_seqs_per_prefix bigint, consecutive_share double, distinct_ids bigint, distinct_names bigint",
        ),
    )


@pytest.mark.spark
def test_entity_windows_seven_day_window_merges_days_and_slides(spark):
    d1, d2 = datetime(2026, 11, 1, 10), datetime(2026, 11, 3, 15)
    rows = [("a", d1, f"{i:064d}", None, None) for i in range(5)]
    rows += [("a", d2, f"{i:064d}", None, None) for i in range(3, 10)]  # ids 3 and 4 again
    lookups = lookups_frame(spark, SEQ_DDL, rows)
    got = windows_of(lookups).where("window = '7d'")
    assertDataFrameEqual(
        got.select("window_start", "window_end", "lookups", "distinct_ids", "active_days", "first_seen", "last_seen"),
        spark.createDataFrame(
            [
                # windows ending on each day from the first to the last day with data
                (datetime(2026, 10, 26), datetime(2026, 11, 2), 5, 5, 1, d1, d1),
                (datetime(2026, 10, 27), datetime(2026, 11, 3), 5, 5, 1, d1, d1),
                (datetime(2026, 10, 28), datetime(2026, 11, 4), 12, 10, 2, d1, d2),
            ],
            "window_start timestamp, window_end timestamp, lookups bigint, distinct_ids bigint, active_days bigint, "
            "first_seen timestamp, last_seen timestamp",
        ),
    )


@pytest.mark.spark
def test_entity_windows_day_lookups_equal_the_lookups_rows_of_that_day(spark):
    rows = [
        ("a", datetime(2026, 11, 1, h, m), f"{h}{m}".ljust(64, "0"), None, None) for h in (0, 9, 23) for m in (0, 59)
    ]
    rows += [("a", datetime(2026, 11, 2, 0, 0), "x" * 64, None, None)]
    rows += [("b", datetime(2026, 11, 2, 12, 30), "y" * 64, None, None)] * 3
    lookups = lookups_frame(spark, SEQ_DDL, rows)
    expected = lookups.groupBy(
        "entity_type", "entity_value", F.col("event_date").cast("timestamp").alias("window_start")
    ).agg(F.count(F.lit(1)).alias("lookups"))
    got = windows_of(lookups).where("window = 'day'").select("entity_type", "entity_value", "window_start", "lookups")
    assertDataFrameEqual(got, expected)
    hourly = windows_of(lookups, ["hour"]).groupBy("entity_value").agg(F.sum("lookups").alias("n"))
    assertDataFrameEqual(hourly, spark.createDataFrame([("a", 7), ("b", 3)], "entity_value string, n bigint"))


@pytest.mark.spark
def test_entity_windows_counts_hits_misses_invalid_share_and_linked_identities(spark):
    t = datetime(2026, 11, 1, 10)
    lookups = lookups_frame(
        spark,
        "entity_type string, entity_value string, event_time timestamp, client_id string, device_id string, "
        "client_ip string, hit boolean, miss boolean, id_hash string, id_valid boolean, name_hash string, watchlist_key string",
        [
            ("device_id", "d1", t, None, "d1", "203.0.113.7", True, False, "1" * 64, True, None, None),
            ("device_id", "d1", t, None, "d1", "203.0.113.8", False, True, "2" * 64, False, "n" * 64, "wl-1"),
            ("device_id", "d1", t, None, "d1", "203.0.113.8", False, False, "3" * 64, False, "m" * 64, "wl-2"),
            ("device_id", "d1", t, None, "d1", "203.0.113.8", True, False, None, None, "m" * 64, "wl-2"),
        ],
    )
    got = windows_of(lookups, ["day"]).select(
        "lookups",
        "hits",
        "misses",
        "miss_share",
        "invalid_id_share",
        "distinct_ids",
        "distinct_names",
        "distinct_watchlist",
        "distinct_clients",
        "distinct_devices",
        "distinct_ips",
        F.array_sort("watchlist_keys").alias("watchlist_keys"),
        "watchlist_hit_keys",
    )
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [(4, 2, 1, 0.25, 2 / 3, 3, 2, 2, 0, 1, 2, ["wl-1", "wl-2"], ["wl-2"])],
            "lookups bigint, hits bigint, misses bigint, miss_share double, invalid_id_share double, "
            "distinct_ids bigint, distinct_names bigint, distinct_watchlist bigint, distinct_clients bigint, "
            "distinct_devices bigint, distinct_ips bigint, watchlist_keys array<string>, watchlist_hit_keys array<string>",
        ),
    )


@pytest.mark.spark
def test_entity_days_keep_sets_sorted_and_the_first_masked_ids_as_samples_whatever_the_row_order(spark):
    # Twelve lookups over three hours, in reverse order: the day keeps the 5 smallest masked IDs of the
    # whole day, not the first hour's, so an incremental run and a full recomputation show the same samples.
    masked = [f"110105********{n:04d}" for n in range(12)]
    rows = [("d1", datetime(2026, 11, 1, 9 + n % 3), f"wl-{11 - n:02d}", m) for n, m in enumerate(reversed(masked))]
    lookups = lookups_frame(
        spark, "entity_value string, event_time timestamp, watchlist_key string, id_masked string", rows
    )
    hours = entity_hours(lookups.repartition(3), LG_K)
    (day,) = entity_days(hours).collect()
    assert day["watchlist_keys"] == [f"wl-{n:02d}" for n in range(12)]
    assert day["id_samples"] == masked[:5]
    assert [h["watchlist_keys"] == sorted(h["watchlist_keys"]) for h in hours.collect()] == [True] * 3


# --- HLL accuracy: day and 7-day figures merge hourly sketches and must stay close to exact ----------------
# entity -> (distinct ids, hours they are spread over). Every id is looked up twice, in different hours
# (and for the larger ones on different days), so a merge that double-counted would be far off.
HLL_CASES = {"e100": (100, 7), "e1000": (1000, 48), "e5000": (5000, 72)}


@pytest.fixture(scope="module")
def hll_windows(spark):
    """entity_windows rows of the HLL_CASES entities, each with the exact distinct counts of its window."""
    frames = []
    for entity, (n, hours) in HLL_CASES.items():
        frames.append(
            spark.range(2 * n).select(
                F.lit(entity).alias("entity_value"),
                (
                    F.lit(datetime(2026, 11, 1))
                    + F.make_interval(hours=(F.col("id") % hours).cast("int"), mins=F.lit(17))
                ).alias("event_time"),
                F.sha2((F.col("id") % n).cast("string"), 256).alias("id_hash"),
                F.sha2(F.concat(F.lit("name"), (F.col("id") % n).cast("string")), 256).alias("name_hash"),
            )
        )
    lookups = as_lookups(frames[0].unionByName(frames[1]).unionByName(frames[2])).cache()
    windows = windows_of(lookups).cache()
    spans = windows.select("entity_value", "window", "window_start", "window_end")
    exact = (
        spans.join(lookups, ["entity_value"])
        .where((F.col("event_time") >= F.col("window_start")) & (F.col("event_time") < F.col("window_end")))
        .groupBy("entity_value", "window", "window_start")
        .agg(F.countDistinct("id_hash").alias("exact_ids"), F.countDistinct("name_hash").alias("exact_names"))
    )
    joined = windows.join(exact, ["entity_value", "window", "window_start"]).collect()
    yield joined
    windows.unpersist()
    lookups.unpersist()


@pytest.mark.spark
@pytest.mark.parametrize("entity", list(HLL_CASES), ids=lambda e: f"{e[1:]} distinct ids over {HLL_CASES[e][1]} hours")
def test_entity_windows_merged_distinct_counts_stay_within_two_percent_of_exact(hll_windows, entity):
    rows = [r for r in hll_windows if r["entity_value"] == entity and r["window"] in ("day", "7d")]
    assert rows, f"no day/7d windows for {entity}"
    checked = 0
    for r in rows:
        for approx, exact in ((r["distinct_ids"], r["exact_ids"]), (r["distinct_names"], r["exact_names"])):
            if exact >= 100:
                checked += 1
                assert abs(approx - exact) <= 0.02 * exact, (
                    f"{r['window']} from {r['window_start']}: {approx} vs {exact}"
                )
    assert checked, f"no window of {entity} reached 100 distinct values"
    whole = max(rows, key=lambda r: r["exact_ids"])
    assert whole["exact_ids"] == HLL_CASES[entity][0]


@pytest.mark.spark
def test_entity_windows_distinct_counts_never_exceed_lookups(hll_windows):
    over = [
        (r["entity_value"], r["window"], r["window_start"])
        for r in hll_windows
        for name in ("distinct_ids", "distinct_names", "distinct_clients", "distinct_ips")
        if r[name] > r["lookups"]
    ]
    assert not over
    assert len(hll_windows) > 100


def test_seven_day_ends_cover_the_week_after_each_date_up_to_the_last_day():
    assert seven_day_ends([date(2026, 11, 1), date(2026, 11, 3)], date(2026, 11, 4)) == [
        date(2026, 11, 1),
        date(2026, 11, 2),
        date(2026, 11, 3),
        date(2026, 11, 4),
    ]
    assert seven_day_ends([date(2026, 11, 1)], date(2026, 11, 30)) == [date(2026, 11, d) for d in range(1, 8)]
