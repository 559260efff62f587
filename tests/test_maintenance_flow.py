"""The compact and retention flows through the CLI: published atomically with their logs, checked, one line on failure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import flow_env, write_config
from lake_files import parquet_files, publish_rows, read_rows, row

import pipelines.maintenance  # noqa: F401  Prefect sets up its log handlers now, not inside a test's capsys
from cli.main import main
from core.lake import Lake

pytestmark = pytest.mark.flow
TODAY = datetime.now(timezone.utc).date()


@pytest.fixture
def lake_and_config(tmp_path):
    lake = Lake(tmp_path / "lake")
    return lake, write_config(tmp_path / "cfg", lake.root)


def test_compact_command_bounds_files_per_partition_and_logs_it(prefect_harness, lake_and_config, capsys):
    lake, config = lake_and_config
    for run in range(20):
        publish_rows(lake, "requests", [row("requests", line_no=run, event_date=TODAY)])
    before = read_rows(lake, "requests")
    with flow_env():
        assert main(["--config", str(config), "compact"]) == 0
    out = capsys.readouterr().out
    assert "20 -> 1 files" in out and "requests: event_date=" in out
    assert read_rows(lake, "requests") == before and parquet_files(lake, "requests", f"event_date={TODAY}") == 1
    (log,) = [r for r in read_rows(lake, "compaction_log") if r["table_name"] == "requests"]
    assert (log["files_before"], log["files_after"], log["rows"]) == (20, 1, 20)
    assert not lake.staging_root.exists() and not lake.journal.exists()


def test_retention_command_removes_old_partitions_records_them_and_passes_its_check(
    prefect_harness, lake_and_config, capsys
):
    lake, config = lake_and_config
    dates = [TODAY - timedelta(days=n) for n in (200, 181, 179, 1)]
    publish_rows(lake, "requests", [row("requests", line_no=i, event_date=d) for i, d in enumerate(dates)])
    with flow_env():
        assert main(["--config", str(config), "retention", "--dry-run"]) == 0
        assert "requests: keeps 180 days" in capsys.readouterr().out and len(read_rows(lake, "requests")) == 4
        assert main(["--config", str(config), "retention"]) == 0
    assert "2 rows removed (requests 2)" in capsys.readouterr().out
    assert sorted(r["event_date"] for r in read_rows(lake, "requests")) == dates[2:]
    (log,) = [r for r in read_rows(lake, "retention_log") if r["table_name"] == "requests"]
    assert (log["rows_removed"], log["first_date"], log["last_date"]) == (2, dates[0], dates[1])
    verdicts = [r for r in read_rows(lake, "dq_results") if r["suite"] == "retention"]
    assert verdicts and all(v["success"] for v in verdicts)


def test_retention_command_fails_in_one_line_when_an_undelivered_alert_outlives_its_period(
    prefect_harness, lake_and_config, capsys
):
    lake, config = lake_and_config
    old = datetime.now(timezone.utc) - timedelta(days=800)
    publish_rows(
        lake, "alerts", [row("alerts", alert_id=f"al-{s}", status=s, created_at=old) for s in ("delivered", "failed")]
    )
    with flow_env():
        assert main(["--config", str(config), "retention"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("enumwatch: retention: data past its retention period remains") and "overdue_days" in err
    # What could go went, and the failed verdict is on record.
    assert [r["alert_id"] for r in read_rows(lake, "alerts")] == ["al-failed"]
    assert any(not r["success"] for r in read_rows(lake, "dq_results") if r["suite"] == "retention")
