"""An incremental run recomputes the windows of the entities its new ingest runs touched and carries
the others' published windows over; which partitions it rewrites follows from its scope."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from jobs.detect import Scope, carried_windows, touched_entities
from schemas import ENTITY_WINDOWS, REQUESTS

pytestmark = pytest.mark.spark

DAY = date(2026, 11, 3)
EARLIER = date(2026, 11, 2)


def published_windows(spark, rows):
    """entity_windows rows (client, window kind, window_date, lookups); every other column a default."""
    df = spark.createDataFrame(rows, "entity_value string, window string, window_date date, lookups bigint")
    start = F.col("window_date").cast("timestamp")
    defaults = {c.name: F.lit(0) for c in ENTITY_WINDOWS.columns if c.name not in df.columns}
    defaults |= {"entity_type": F.lit("client_id"), "window_start": start, "window_end": start, "first_seen": start}
    defaults |= {"last_seen": start, "watchlist_keys": F.array(), "watchlist_hit_keys": F.array()}
    return df.withColumns(defaults).transform(ENTITY_WINDOWS.conform)


def requests(spark, rows):
    """requests rows (client, ingest run, is a lookup); the rest a lookup of one ID number on DAY."""
    df = spark.createDataFrame(rows, "client_id string, ingest_run_id string, is_lookup boolean")
    defaults = {c.name: F.lit(None) for c in REQUESTS.columns if c.name not in df.columns}
    defaults |= {"event_time": F.lit(datetime(2026, 11, 3, 21, 5)), "event_date": F.lit(DAY)}
    defaults |= {"id_hash": F.lit("h1"), "client_ip": F.lit("203.0.113.7"), "status": F.lit(404)}
    return df.withColumns(defaults).transform(REQUESTS.conform)


def test_touched_entities_are_the_lookup_clients_of_the_new_ingest_runs_only(spark):
    rows = [("new-client", "ingest-2", True), ("page-viewer", "ingest-2", False), ("old-client", "ingest-1", True)]
    scope = Scope("incremental", [DAY], [DAY], new_runs=["ingest-2"])
    touched = touched_entities(requests(spark, rows), scope)
    assert [tuple(r) for r in touched.collect()] == [("client_id", "new-client")]


def test_a_run_without_new_runs_recomputes_every_entity(spark):
    scope = Scope("full", [DAY], [DAY])
    assert touched_entities(requests(spark, [("a", "ingest-1", True)]), scope) is None


def test_carried_windows_keep_untouched_entities_rows_of_the_rewritten_partitions_as_published(spark):
    published = published_windows(
        spark,
        [
            ("touched", "hour", DAY, 5),  # recomputed by the run: not carried
            ("untouched", "hour", DAY, 7),
            ("untouched", "7d", date(2026, 10, 28), 40),  # the 7-day window ending on DAY
            ("untouched", "day", DAY, 9),  # a kind the rules no longer compute: dropped, not carried
            ("untouched", "hour", EARLIER, 3),  # a partition the run does not rewrite
        ],
    )
    touched = spark.createDataFrame([("client_id", "touched")], "entity_type string, entity_value string")
    scope = Scope("incremental", [DAY], [DAY], new_runs=["ingest-2"])
    carried = carried_windows(published, scope, ["hour", "7d"], touched)
    got = sorted((r.entity_value, r.window, r.window_date, r.lookups) for r in carried.collect())
    assert got == [("untouched", "7d", date(2026, 10, 28), 40), ("untouched", "hour", DAY, 7)]


def test_scope_rewrites_the_window_partitions_of_its_dates_and_seven_day_ends():
    scope = Scope("incremental", [DAY], [DAY, date(2026, 11, 4)])
    assert scope.window_partitions(["hour", "7d"]) == {
        "window=hour/window_date=2026-11-03",
        "window=7d/window_date=2026-10-28",
        "window=7d/window_date=2026-10-29",
    }
    assert scope.dropped_partitions("entity_windows") == scope.window_partitions(["hour", "day", "7d"])
