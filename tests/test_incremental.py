"""Incremental detection: a run recomputes only the dates new data touched, late events included,
and ends with exactly the tables a full recomputation gives; backfill is idempotent."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from conftest import flow_env, write_config

from generator.generate import generate
from jobs.detect import DAY_TABLES
from pipelines.detect import detect_flow
from pipelines.ingest import ingest_flow

pytestmark = [pytest.mark.flow, pytest.mark.spark, pytest.mark.slow]

WINDOW_KEY = ["entity_type", "entity_value", "window", "window_start"]
WINDOW_VALUES = ["lookups", "distinct_ids", "distinct_names", "max_seqs_per_prefix", "consecutive_share", "active_days"]


def windows(lake: Path):
    table = ds.dataset(lake / "entity_windows", partitioning="hive").to_table(columns=WINDOW_KEY + WINDOW_VALUES)
    return table.to_pandas().sort_values(WINDOW_KEY).reset_index(drop=True)


def campaigns(lake: Path, run_id: str) -> list[dict]:
    """One detection run's campaigns, without its run columns, in a stable order."""
    table = ds.dataset(lake / "campaigns", partitioning="hive").to_table(filter=ds.field("detect_run_id") == run_id)
    rows = table.drop(["detect_run_id", "detect_date"]).to_pylist()
    return sorted(rows, key=lambda r: (r["rule"], r["link_value"], r["user_agent"] or ""))


def lookups_count(lake: Path) -> int:
    return ds.dataset(lake / "lookups", partitioning="hive").count_rows()


def event_dates(lake: Path, table: str) -> list[str]:
    dates = ds.dataset(lake / table, partitioning="hive").to_table(columns=["event_date"]).column("event_date")
    return sorted({str(d) for d in dates.to_pylist()})


@pytest.fixture(scope="module")
def staged_arrivals(tmp_path_factory, prefect_harness):
    """Days 1-2 arrive first; day 3 and a late file of day 1 arrive later; each arrival then detects.
    Last, day 3's final hour arrives with another late file of day 1: every window the run rewrites is
    published, so only the entities in the new files get their windows recomputed and the others'
    are carried over; and it covers the same days as the run before, so it also carries over the
    campaign groups no account in the new files belongs to.

    Between the first two, the lake loses its day tables, as a lake written before they existed: the
    second run merges day 2's rows from its hours (day 2 is not recomputed) and publishes them.
    """
    root = tmp_path_factory.mktemp("incremental")
    data = root / "data"
    generate(data, days=3, scale=0.02)
    first, second, third = root / "first", root / "second", root / "third"
    for day in ("2026-11-01", "2026-11-02"):
        shutil.copytree(data / "logs" / day, first / day)
    shutil.copytree(data / "logs" / "2026-11-03", second / "2026-11-03")
    third.mkdir()
    for held, arrival in (
        ("2026-11-01/access-2026-11-01T05.jsonl.gz", second / "late-access-2026-11-01T05.jsonl.gz"),
        ("2026-11-01/access-2026-11-01T06.jsonl.gz", third / "late-access-2026-11-01T06.jsonl.gz"),
        ("2026-11-03/access-2026-11-03T23.jsonl.gz", third / "access-2026-11-03T23.jsonl.gz"),
    ):
        shutil.move((first if held.startswith("2026-11-01") else second) / held, arrival)
    lake = root / "lake"
    config = str(write_config(root / "cfg", lake))
    kwargs = dict(watchlist=str(data / "watchlist.csv"), allowlist=str(data / "allowlist.csv"), config=config)
    with flow_env():
        ingest_flow(source=str(first), fmt="jsonl", watchlist=kwargs["watchlist"], config=config)
        before = detect_flow(**kwargs)
        for table in DAY_TABLES:
            (lake / table).unlink()
        ingest_flow(source=str(second), fmt="jsonl", watchlist=kwargs["watchlist"], config=config)
        after = detect_flow(**kwargs)
        day_dates = {table: event_dates(lake, table) for table in DAY_TABLES}
        ingest_flow(source=str(third), fmt="jsonl", watchlist=kwargs["watchlist"], config=config)
        last_hour = detect_flow(**kwargs)
        incremental_campaigns = campaigns(lake, last_hour["run_id"])
        again = detect_flow(**kwargs)
        incremental = windows(lake)
        incremental_lookups = lookups_count(lake)
        full = detect_flow(full=True, **kwargs)
        full_windows = windows(lake)
        full_campaigns = campaigns(lake, full["run_id"])
        backfill_kwargs = dict(backfill_from=date(2026, 11, 2), backfill_to=date(2026, 11, 3), **kwargs)
        detect_flow(**backfill_kwargs)
        first_backfill = windows(lake)
        detect_flow(**backfill_kwargs)
        second_backfill = windows(lake)
    return {
        "before": before,
        "after": after,
        "last_hour": last_hour,
        "incremental_campaigns": incremental_campaigns,
        "full_campaigns": full_campaigns,
        "day_dates": day_dates,
        "again": again,
        "full": full,
        "incremental": incremental,
        "incremental_lookups": incremental_lookups,
        "full_windows": full_windows,
        "full_lookups": lookups_count(lake),
        "first_backfill": first_backfill,
        "second_backfill": second_backfill,
    }


def test_detect_recomputes_only_dates_touched_by_new_data_including_late_events(staged_arrivals):
    assert staged_arrivals["before"]["dates"] == ["2026-11-01", "2026-11-02"]
    assert staged_arrivals["after"]["dates"] == ["2026-11-01", "2026-11-03"]


def test_detect_recomputes_only_new_entities_windows_where_every_rewritten_window_is_published(staged_arrivals):
    assert staged_arrivals["before"]["windows_for"] == "every entity"  # an empty lake
    assert staged_arrivals["after"]["windows_for"] == "every entity"  # day 3 is new to the lake
    assert staged_arrivals["last_hour"]["dates"] == ["2026-11-01", "2026-11-03"]
    assert staged_arrivals["last_hour"]["windows_for"] == "new entities"


def test_detect_carries_campaigns_over_only_from_a_run_over_the_same_days(staged_arrivals):
    # `after` also builds the day tables the lake lost, and `before` grouped 11-01..11-02 only.
    assert staged_arrivals["after"]["campaigns_carried_from"] is None
    assert staged_arrivals["last_hour"]["campaigns_carried_from"] == staged_arrivals["after"]["run_id"]
    assert staged_arrivals["full"]["campaigns_carried_from"] is None


def test_incremental_campaigns_equal_a_full_recomputation(staged_arrivals):
    assert staged_arrivals["full_campaigns"]  # the generated traffic plants campaigns: the comparison is not empty
    assert staged_arrivals["incremental_campaigns"] == staged_arrivals["full_campaigns"]


def test_detect_merges_the_days_an_older_lake_holds_only_as_hours(staged_arrivals):
    every_day = ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert staged_arrivals["day_dates"] == {table: every_day for table in DAY_TABLES}


def test_detect_without_new_data_adds_nothing(staged_arrivals):
    assert staged_arrivals["again"]["tables"] == {}
    assert staged_arrivals["again"]["dates"] == []


def test_incremental_windows_equal_a_full_recomputation(staged_arrivals):
    assert staged_arrivals["incremental_lookups"] == staged_arrivals["full_lookups"]
    incremental, full = staged_arrivals["incremental"], staged_arrivals["full_windows"]
    assert len(incremental) == len(full)
    assert incremental.equals(full)


def test_backfill_is_idempotent(staged_arrivals):
    assert staged_arrivals["first_backfill"].equals(staged_arrivals["second_backfill"])
    assert staged_arrivals["first_backfill"].equals(staged_arrivals["full_windows"])
