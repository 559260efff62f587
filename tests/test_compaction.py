"""Compaction: crowded partitions become few files, every row stays, nothing is published on a mismatch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lake_files import T0, day, parquet_files, publish_rows, read_rows, row

from core import compaction
from core.compaction import CompactionError, compact_table
from core.lake import Lake
from core.lake import parquet_files as published_files


def _requests(n: int, event_date, first: int = 0) -> list[dict]:
    return [
        row("requests", line_no=first + i, source_file=f"/logs/{event_date}.log", event_time=T0, event_date=event_date)
        for i in range(n)
    ]


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    for run in range(20):  # twenty incremental runs add a file each to day 0, three to day 1
        publish_rows(lake, "requests", _requests(5, day(0), first=run * 5))
        if run < 3:
            publish_rows(lake, "requests", _requests(1, day(1), first=run))
    return lake


def _compact(lake: Lake, table: str, max_files: int = 16, rows_per_file: int = 1_000_000):
    version, log = compact_table(lake, table, "compact-1", max_files, rows_per_file, T0)
    if version is not None:
        lake.publish("compact-1", {table: version})
    lake.recover()
    return log


def test_compact_table_rewrites_a_crowded_partition_into_one_file_keeping_every_row(lake):
    before = read_rows(lake, "requests")
    untouched = sorted(p.stat().st_ino for p in (lake.current("requests") / f"event_date={day(1)}").glob("*.parquet"))
    assert parquet_files(lake, "requests", f"event_date={day(0)}") == 20

    log = _compact(lake, "requests")

    assert read_rows(lake, "requests") == before and len(before) == 103
    assert parquet_files(lake, "requests", f"event_date={day(0)}") == 1
    # A partition within the bound keeps its very files.
    kept = sorted(p.stat().st_ino for p in (lake.current("requests") / f"event_date={day(1)}").glob("*.parquet"))
    assert kept == untouched
    assert log["partitions"] == [f"event_date={day(0)}"]
    assert (log["files_before"], log["files_after"], log["rows"]) == (20, 1, 100)


def test_compact_table_splits_a_partition_by_max_rows_per_file(lake):
    before = read_rows(lake, "requests")
    log = _compact(lake, "requests", rows_per_file=30)
    assert parquet_files(lake, "requests", f"event_date={day(0)}") == 4  # 100 rows, 30 a file
    assert read_rows(lake, "requests") == before
    assert log["files_after"] == 4


def test_compact_table_leaves_a_table_within_the_bound_unpublished(lake):
    current = lake.current("requests")
    version, log = compact_table(lake, "requests", "compact-1", 50, 1_000_000, T0)
    assert version is None and log["partitions"] == [] and lake.current("requests") == current


def test_compact_table_rewrites_an_unpartitioned_table_as_a_whole(tmp_path):
    lake = Lake(tmp_path / "lake")
    for i in range(18):
        publish_rows(lake, "dq_results", [row("dq_results", run_id=f"r{i}", validated_at=T0 + timedelta(hours=i))])
    before = read_rows(lake, "dq_results")
    log = _compact(lake, "dq_results")
    assert read_rows(lake, "dq_results") == before
    assert parquet_files(lake, "dq_results") == 1
    assert log["partitions"] == [""] and log["files_before"] == 18


def test_compact_table_refuses_files_that_lost_rows_and_builds_no_version(lake, monkeypatch):
    current, before = lake.current("requests"), read_rows(lake, "requests")
    real = compaction.ds.write_dataset
    monkeypatch.setattr(compaction.ds, "write_dataset", lambda data, *a, **k: real(data.head(3), *a, **k))
    with pytest.raises(CompactionError, match="3 rows after compaction, 100 before"):
        compact_table(lake, "requests", "compact-1", 16, 1_000_000, T0)
    lake.recover()
    assert lake.current("requests") == current and read_rows(lake, "requests") == before


@pytest.mark.spark
def test_compacted_files_of_a_spark_written_table_read_back_in_spark_as_the_same_rows(spark, tmp_path):
    from lake_files import row as make_row

    from schemas import LAKE_TABLES

    lake, decl = Lake(tmp_path / "lake"), LAKE_TABLES["flagged_clients"]
    evidence = [
        {
            "rule": "r",
            "shadow": False,
            "window": "day",
            "window_start": T0,
            "window_end": T0,
            "observed": {"lookups": 9.0},
            "threshold": {"lookups": 5.0},
            "watchlist_keys": ["wl-1"],
        }
    ]
    rows = [
        make_row("flagged_clients", entity_value=f"c{i}", evidence=evidence, members=["a"], detect_date=day(i % 2))
        for i in range(40)
    ]
    frame = spark.createDataFrame([tuple(r[c] for c in decl.names) for r in rows], decl.spark_schema())
    staged = lake.staging("detect-1") / "flagged_clients"
    frame.repartition(20).write.partitionBy("detect_date").parquet(str(staged))
    lake.publish("detect-1", {"flagged_clients": lake.build_version("flagged_clients", "detect-1", add=[staged])})
    lake.recover()
    before = sorted(spark.read.schema(decl.spark_schema()).parquet(str(lake.path("flagged_clients"))).collect())
    files = sum(1 for _ in published_files(lake.current("flagged_clients")))

    log = _compact(lake, "flagged_clients", max_files=4)

    after = spark.read.schema(decl.spark_schema()).parquet(str(lake.path("flagged_clients"))).collect()
    assert sorted(after) == before and len(before) == 40
    assert (log["files_before"], log["files_after"]) == (files, 2) and files > 8
