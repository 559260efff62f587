"""Retention: expired partitions and rows leave the lake, undelivered alerts stay, the removal is logged and checked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lake_files import T0, day, parquet_files, publish_rows, read_rows, row

from core import retention
from core.lake import Lake
from core.settings import ConfigError, MaintenanceSettings, load_settings

POLICY = MaintenanceSettings(
    retention_days=(("requests", 10), ("entity_windows", 10), ("dq_results", 10), ("alerts", 10))
)
TODAY = day(30)  # cutoff day(20): data dated before it has outlived 10 days


def _apply(lake: Lake, table: str, keep=None):
    found = retention.expired(lake, table, POLICY, TODAY, keep)
    version, written = retention.remove(lake, "retention-1", found, keep)
    if version is not None:
        lake.publish("retention-1", {table: version})
    lake.recover()
    return retention.log_row("retention-1", found, written, T0)


def test_retention_removes_whole_partitions_older_than_the_period_and_logs_them(tmp_path):
    lake = Lake(tmp_path / "lake")
    for d in (18, 19, 20, 25):
        publish_rows(lake, "requests", [row("requests", line_no=i, event_date=day(d)) for i in range(3)], files=2)
    kept = [r for r in read_rows(lake, "requests") if r["event_date"] >= day(20)]

    log = _apply(lake, "requests")

    assert read_rows(lake, "requests") == kept and len(kept) == 6
    assert log["partitions"] == [f"event_date={day(18)}", f"event_date={day(19)}"]
    assert (log["rows_removed"], log["files_removed"]) == (6, 4)
    assert (log["first_date"], log["last_date"], log["cutoff_date"]) == (day(18), day(19), day(20))
    assert log["bytes_removed"] > 0


def test_retention_reads_the_date_of_a_second_level_partition(tmp_path):
    lake = Lake(tmp_path / "lake")
    rows = [row("entity_windows", window=w, window_date=day(d)) for w in ("hour", "day") for d in (5, 25)]
    publish_rows(lake, "entity_windows", rows)
    log = _apply(lake, "entity_windows")
    assert sorted(log["partitions"]) == [f"window=day/window_date={day(5)}", f"window=hour/window_date={day(5)}"]
    assert {r["window_date"] for r in read_rows(lake, "entity_windows")} == {day(25)}


def test_retention_rewrites_an_unpartitioned_table_without_its_old_rows(tmp_path):
    lake = Lake(tmp_path / "lake")
    for d in (1, 19, 21, 29):
        at = T0 + timedelta(days=d)
        publish_rows(lake, "dq_results", [row("dq_results", run_id=f"r{d}", validated_at=at)])
    log = _apply(lake, "dq_results")
    assert [r["run_id"] for r in read_rows(lake, "dq_results")] == ["r21", "r29"]
    assert parquet_files(lake, "dq_results") == 1
    assert (log["rows_removed"], log["first_date"], log["last_date"]) == (2, day(1), day(19))
    assert log["partitions"] == [] and log["files_removed"] == 4


def test_retention_keeps_old_undelivered_alerts(tmp_path):
    from pipelines.maintenance import keep_rows

    lake = Lake(tmp_path / "lake")
    old = T0 + timedelta(days=2)
    rows = [row("alerts", alert_id=f"al-{s}", status=s, created_at=old) for s in ("delivered", "pending", "failed")]
    publish_rows(
        lake,
        "alerts",
        rows + [row("alerts", alert_id="al-new", status="delivered", created_at=T0 + timedelta(days=25))],
    )
    log = _apply(lake, "alerts", keep_rows()["alerts"])
    assert sorted(r["alert_id"] for r in read_rows(lake, "alerts")) == ["al-failed", "al-new", "al-pending"]
    assert log["rows_removed"] == 1
    # What stays past its period shows as overdue: the retention check and `status` tell a person.
    overdue = [a for a in retention.ages(lake, POLICY, TODAY) if a["overdue_days"]]
    assert [(a["table_name"], a["oldest_date"], a["overdue_days"]) for a in overdue] == [("alerts", day(2), 18)]


def test_retention_leaves_a_table_kept_forever_or_within_its_period_alone(tmp_path):
    lake = Lake(tmp_path / "lake")
    publish_rows(lake, "requests", [row("requests", event_date=day(25))])
    publish_rows(lake, "quarantine", [row("quarantine", ingest_date=day(1))])
    current = lake.current("requests")
    assert retention.expired(lake, "quarantine", POLICY, TODAY) is None  # not in POLICY: kept forever
    log = _apply(lake, "requests")
    assert lake.current("requests") == current and log["rows_removed"] == 0 and log["first_date"] is None


def test_ages_lists_each_partition_with_its_days_overdue(tmp_path):
    lake = Lake(tmp_path / "lake")
    publish_rows(lake, "requests", [row("requests", event_date=day(d)) for d in (17, 25)])
    found = {(a["partition"], a["overdue_days"]) for a in retention.ages(lake, POLICY, TODAY)}
    assert found == {(f"event_date={day(17)}", 3), (f"event_date={day(25)}", 0)}


def test_retention_settings_default_raw_tables_to_180_days_and_flags_longer():
    policy = load_settings(env={}).maintenance
    assert {t: policy.retention_for(t) for t in ("requests", "lookups", "quarantine")} == dict.fromkeys(
        ("requests", "lookups", "quarantine"), 180
    )
    assert policy.retention_for("entity_windows") > 180 and policy.retention_for("flagged_clients") > 365
    assert policy.retention_for("ingest_manifest") == 0  # forgetting a file would make ingest read it again


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retention]\nrequestz = 10\n", "names no lake table: requestz"),
        ("[retention]\nrequests = 3\n", "at least 8|>= 8"),
        ("[retention]\nrequests = 500\n", "detect_runs' must keep at least as long"),
    ],
)
def test_retention_settings_refuse_what_would_break_the_lake(tmp_path, text, message):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})
