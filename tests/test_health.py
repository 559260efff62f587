"""`enumwatch status`: every fact on-call needs, from files alone, and exit 1 exactly when a person is needed."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import namedtuple
from datetime import datetime, timedelta, timezone

import pytest
from conftest import write_config
from lake_files import publish_rows, row

from cli.main import main
from core.lake import Lake
from delivery import health

NOW = datetime.now(timezone.utc)


@pytest.fixture
def lake(settings) -> Lake:
    """A lake whose flows all ran a minute ago: requests, detect_runs, a delivered alert and a fresh heartbeat."""
    lake = Lake(settings.lake)
    recent = NOW - timedelta(minutes=1)
    publish_rows(lake, "requests", [row("requests", event_date=NOW.date())], files=3)
    publish_rows(lake, "ingest_manifest", [row("ingest_manifest", ingested_at=recent)])
    publish_rows(lake, "detect_runs", [row("detect_runs", detected_at=recent)])
    publish_rows(lake, "alerts", [row("alerts", status="delivered", severity="high", created_at=recent)])
    _heartbeat(settings, recent)
    return lake


def _heartbeat(settings, when: datetime) -> None:
    out = settings.alerts.directory(settings.lake)
    out.mkdir(parents=True, exist_ok=True)
    (out / "heartbeat.json").write_text(
        json.dumps({"run_id": "alerts-1", "ran_at": when.isoformat(), "heartbeat": "ok"})
    )


def _age(path, minutes: float) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


def test_status_of_a_healthy_lake_has_no_problems_and_every_fact(settings, lake):
    report = health.gather(settings, NOW)
    assert report["problems"] == []
    assert report["lock"]["held"] is False and report["journal"] == {"pending": False} and report["staging"] == []
    assert report["tables"]["requests"]["files"] == 3 and report["tables"]["requests"]["bytes"] > 0
    assert (
        report["tables"]["requests"]["max_files_per_partition"] == 3 and report["tables"]["requests"]["versions"] == 1
    )
    assert report["last_runs"]["detect"] == NOW - timedelta(minutes=1)
    assert report["last_runs"]["ingest"] == NOW - timedelta(minutes=1)
    assert report["heartbeat"]["minutes"] == 1.0 and report["alerts"] == {
        "total": 1,
        "undelivered": 0,
        "oldest_undelivered": None,
    }
    assert "all well" in health.render(report)


def test_status_shows_the_lock_holder_from_the_lock_file_and_pages_when_held_too_long(settings, lake):
    started = NOW - timedelta(hours=3)
    with lake.lock():
        note = {"run_id": "ingest-1", "pid": 4242, "host": "worker-1", "since": started.isoformat()}
        (lake.root / ".lock").write_text(json.dumps(note))
        report = health.gather(settings, NOW)
    assert report["lock"] == {"held": True, "holder": note, "since": started, "minutes": 180.0}
    assert report["problems"] == ["ingest-1 has held the lake lock for 180 min (limit 120)"]
    assert health.gather(settings, NOW)["lock"]["held"] is False  # released


def test_status_tells_a_plain_flock_from_a_free_lock_file(settings, lake):
    (lake.root / ".lock").write_text("")
    assert health.gather(settings, NOW)["lock"]["held"] is False
    with open(lake.root / ".lock") as fh:  # a writer that holds the flock but wrote no note
        fcntl.flock(fh, fcntl.LOCK_EX)
        lock = health.gather(settings, NOW)["lock"]
    assert lock["held"] is True and lock["holder"] is None and lock["minutes"] is not None


def test_status_pages_on_a_half_done_publish_and_old_staging_only_when_no_run_holds_the_lock(settings, lake):
    lake.journal.write_text(json.dumps({"run_id": "detect-9", "links": {}}))
    leftover = lake.staging("ingest-8")
    _age(leftover, 90)
    found = health.gather(settings, NOW)["problems"]
    assert [p.split(" ")[:4] for p in found] == [
        ["a", "publish", "by", "detect-9"],
        ["1", "staging", "leftovers", "of"],
    ]
    with lake.lock():  # a run is under way: its journal and staging are its own business
        assert health.gather(settings, NOW)["problems"] == []


def test_status_pages_on_a_stale_heartbeat_and_undelivered_alerts(settings, lake):
    _heartbeat(settings, NOW - timedelta(hours=5))
    publish_rows(lake, "alerts", [row("alerts", status="failed", severity="high", created_at=NOW - timedelta(hours=2))])
    found = health.gather(settings, NOW)["problems"]
    assert found[0].startswith("the alerts heartbeat is 300 min old (limit 130)")
    assert found[1].startswith("1 alerts undelivered since") and len(found) == 2


def test_status_pages_when_the_disk_is_nearly_full(settings, lake, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(health.shutil, "disk_usage", lambda path: usage(100, 95, 5))
    assert health.gather(settings, NOW)["problems"] == ["the lake's disk is 5% free (limit 10%)"]


def test_status_pages_when_a_partition_outlived_its_retention_beyond_the_grace(settings, lake):
    publish_rows(lake, "requests", [row("requests", event_date=NOW.date() - timedelta(days=d)) for d in (181, 185)])
    (found,) = health.gather(settings, NOW)["problems"]
    assert found.startswith("1 partitions past their retention period, worst requests event_date=")
    assert "by 5 days" in found


def test_status_command_prints_json_and_exits_1_when_a_person_is_needed(settings, lake, tmp_path, capsys):
    config = write_config(tmp_path / "cfg", settings.lake)
    (tmp_path / "cfg" / "alerts-out").mkdir()
    os.replace(settings.alerts.directory(settings.lake) / "heartbeat.json", tmp_path / "cfg/alerts-out/heartbeat.json")
    assert main(["--config", str(config), "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["tables"]["requests"]["files"] == 3 and doc["last_runs"]["alerts"]
    lake.journal.write_text("{}")
    assert main(["--config", str(config), "status"]) == 1
    out = capsys.readouterr().out
    assert "1 need a person" in out and "  ! a publish by None was left half done" in out


def test_status_command_without_a_lake_says_so_in_one_line(tmp_path, capsys):
    assert main(["status", "--lake", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.strip().startswith("enumwatch: no lake at")
