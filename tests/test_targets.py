"""lookups + flags -> targets: per watchlist person and ID prefix and day, who looked them up and who is flagged."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from core.rules import RuleSet, TargetRule
from jobs.targets import targets
from schemas import FLAGGED_CLIENTS, LOOKUPS, TARGETS
from schemas.table import spark_type

DAY = date(2026, 11, 1)
WIDE = TargetRule("wide", "returned widely", "high", True, True, "watchlist", "hit_entities", 2)
RULES = RuleSet(source="test", hll_lg_config_k=14, windows={}, scoring={}, targets=[WIDE])


def lookups(spark, rows):
    """(entity_type, entity_value, watchlist_key, id_prefix_hash, status, hour) as `lookups` rows."""
    df = spark.createDataFrame(
        rows, "entity_type string, entity_value string, watchlist_key string, id_prefix_hash string, status int, h int"
    )
    filled = {
        "event_time": F.make_timestamp(F.lit(2026), F.lit(11), F.lit(1), "h", F.lit(0), F.lit(0)),
        "client_ip": F.lit("192.0.2.1"),
        "hit": F.col("status") == 200,
        "miss": F.col("status") == 404,
        "source_file": F.lit("/logs/a.jsonl"),
        "line_no": F.lit(1),
    }
    df = df.withColumns(filled).withColumn("event_hour", F.date_trunc("hour", "event_time"))
    df = df.withColumn("event_date", F.to_date("event_time"))
    rest = {c.name: F.lit(None).cast(spark_type(c.type)) for c in LOOKUPS.columns if c.name not in df.columns}
    return df.withColumns(rest).transform(LOOKUPS.conform)


def flags(spark, rows):
    """(entity_type, entity_value, members, shadow) as flagged_clients rows."""
    df = spark.createDataFrame(rows, "entity_type string, entity_value string, members array<string>, shadow boolean")
    rest = {c.name: F.lit(None).cast(spark_type(c.type)) for c in FLAGGED_CLIENTS.columns if c.name not in df.columns}
    return df.withColumns(rest)


@pytest.mark.spark
def test_targets_count_who_looked_a_person_up_who_got_data_and_who_is_flagged(spark):
    rows = [
        ("client_id", "a", "wl-star", "p-star", 200, 3),
        ("client_id", "a", "wl-star", "p-star", 200, 4),  # again: one entity
        ("client_id", "b", "wl-star", "p-star", 200, 5),  # a member of a flagged campaign
        ("client_ip", "192.0.2.9", "wl-star", "p-star", 404, 6),  # flagged, but got nothing
        ("client_id", "c", "wl-star", "p-star", 200, 7),  # flagged in shadow only: not counted
        ("client_id", "d", None, "p-other", 404, 8),
    ]
    flagged = [
        ("campaign", "185.51.43.0/24", ["b", "x"], False),
        ("client_ip", "192.0.2.9", None, False),
        ("client_id", "c", None, True),
    ]
    got = targets(lookups(spark, rows), flags(spark, flagged), RULES, "detect-1")
    result = {
        (r["target_type"], r["target"]): (
            r["lookups"],
            r["hits"],
            r["distinct_entities"],
            r["hit_entities"],
            r["flagged_entities"],
            r["rules"],
        )
        for r in got.collect()
    }
    assert result == {
        ("watchlist", "wl-star"): (5, 4, 4, 3, 2, ["wide"]),
        ("id_prefix", "p-star"): (5, 4, 4, 3, 2, []),  # the rule reads watchlist rows only
        ("id_prefix", "p-other"): (1, 0, 1, 0, 0, []),
    }
    assert {r["event_date"] for r in got.collect()} == {DAY} and got.first()["detect_run_id"] == "detect-1"
    assert got.columns == [c.name for c in TARGETS.columns]


@pytest.mark.spark
def test_targets_rule_below_its_minimum_does_not_fire(spark):
    rows = [("client_id", "a", "wl-fan", None, 200, 3)]
    (row,) = targets(lookups(spark, rows), flags(spark, []), RULES, "detect-1").collect()
    assert row["hit_entities"] == 1 and row["rules"] == []
