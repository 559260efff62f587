"""The alerts and report flows, the failure hooks and the on-call CLI, on small inline flags and a real local webhook."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import TEST_KEY
from test_alerts import make_flag, publish_flags
from test_webhook import closed_port_url, webhook_server

from cli.main import main
from core.lake import Lake
from core.pseudonym import fingerprint
from delivery import outbox

pytestmark = pytest.mark.flow
RUN_1, RUN_2, RUN_3 = (f"detect-2026112{d}T100000Z-aaaaaa" for d in (7, 8, 9))


@pytest.fixture
def oncall(tmp_path, monkeypatch):
    """A tmp lake that knows its watchlist, and a writer for a config naming a webhook URL."""
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
    for name in ("ENUMWATCH_LAKE", "ENUMWATCH_CONFIG", "ENUMWATCH_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    lake = Lake(tmp_path / "lake")
    lake.open(fingerprint(TEST_KEY.encode()))
    watchlist = tmp_path / "watchlist.csv"
    watchlist.write_text("name\n王菲\n李娜\n", encoding="utf-8")
    lake.remember_watchlist(watchlist)

    def config(url: str | None, fmt: str = "slack") -> str:
        path = tmp_path / "enumwatch.toml"
        path.write_text(
            f'[lake]\npath = "{lake.root}"\n[alerts]\nwebhook_url = "{url or ""}"\n'
            f'webhook_format = "{fmt}"\nbackoff_seconds = 0.01\nout_dir = "{tmp_path / "out"}"\n'
        )
        return str(path)

    return lake, config, tmp_path / "out"


def _alerts(lake: Lake, value: str = "acct-1") -> list[dict]:
    return [a for a in outbox.read_outbox(lake) if a["entity_value"] == value]


def _delivered_bodies(server) -> list[dict]:
    return [body for status, body in server.received if status == 200]


def test_alerts_flow_delivers_new_flags_once_and_never_shadow_flags(prefect_harness, oncall):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from pipelines.alerts import alerts_flow

    lake, config, out = oncall
    publish_flags(
        lake, [make_flag(run=RUN_1), make_flag("lurker", run=RUN_1, shadow=True, rules=["population_outlier"])]
    )
    with webhook_server() as server:
        summary = alerts_flow(detect_run_id=RUN_1, config=config(server.url))
    assert (summary["flags"], summary["new"], summary["delivered"], summary["error"]) == (2, 1, 1, None)
    [body] = _delivered_bodies(server)
    assert "[HIGH 60] client_id acct-1 - new" in body["text"] and "lurker" not in body["text"]
    assert "watchlist people whose data was returned: 王菲" in body["text"]
    [row] = outbox.read_outbox(lake)
    assert (row["entity_value"], row["status"], row["channel"], row["attempts"]) == (
        "acct-1",
        "delivered",
        "webhook",
        1,
    )
    # the run's files: the alert with its message, and the heartbeat line
    doc = json.loads(Path(summary["files"][0]).read_text())
    assert [a["entity_value"] for a in doc["alerts"]] == ["acct-1"] and doc["alerts"][0]["exposed_names"] == ["王菲"]
    assert (
        doc["heartbeat"].startswith(f"enumwatch alerts run {summary['run_id']}")
        and "1 new alerts, 0 suppressed" in doc["heartbeat"]
    )
    lines = Path(summary["files"][1]).read_text(encoding="utf-8").splitlines()
    assert (
        lines[0].startswith("kind,run_id,alert_id")
        and lines[1].startswith("alert,")
        and lines[-1].startswith("heartbeat,")
    )
    assert json.loads((out / "heartbeat.json").read_text())["run_id"] == summary["run_id"]
    # the Prefect table artifact shows the alert, by handle and never by name
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["enumwatch-alerts"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert [r["entity"] for r in table] == ["client_id acct-1"] and "王菲" not in json.dumps(table, ensure_ascii=False)
    # nor does a name reach the lake
    assert "王菲" not in json.dumps(outbox.jsonable(outbox.read_outbox(lake)), ensure_ascii=False)


def test_alerts_flow_suppresses_a_repeat_within_the_window_and_re_alerts_a_severity_rise(prefect_harness, oncall):
    from pipelines.alerts import alerts_flow

    lake, config, _ = oncall
    with webhook_server() as server:
        for run, severity in ((RUN_1, "high"), (RUN_2, "high"), (RUN_3, "critical")):
            publish_flags(lake, [make_flag(run=run, severity=severity)])
            alerts_flow(detect_run_id=run, config=config(server.url))
        alerts_flow(detect_run_id=RUN_3, config=config(server.url))  # the same detection run again: nothing new
    assert [(a["reason"], a["severity"], a["previous_severity"]) for a in _alerts(lake)] == [
        ("new", "high", None),
        ("severity_rose", "critical", "high"),
    ]
    assert len(_delivered_bodies(server)) == 2


def test_alerts_flow_with_a_failing_webhook_keeps_the_alert_and_delivers_it_exactly_once_on_recovery(
    prefect_harness, oncall
):
    from pipelines.alerts import alerts_flow

    lake, config, _ = oncall
    publish_flags(lake, [make_flag(run=RUN_1)])
    flags_version = lake.current("flagged_clients")
    with webhook_server(status=500) as server:
        failed = alerts_flow(detect_run_id=RUN_1, config=config(server.url, "json"))  # completes: no exception escapes
        assert "HTTP 500" in failed["error"] and failed["undelivered"] == 1
        [row] = _alerts(lake)
        assert (row["status"], row["attempts"]) == ("failed", 3) and "HTTP 500 Internal Server Error" in row[
            "last_error"
        ]
        assert lake.current("flagged_clients") == flags_version and outbox.read_flags(lake) == [make_flag(run=RUN_1)]
        server.status = 200  # the webhook recovers; the next detection sees the same flag (suppressed)
        publish_flags(lake, [make_flag(run=RUN_2)])
        recovered = alerts_flow(detect_run_id=RUN_2, config=config(server.url, "json"))
        alerts_flow(detect_run_id=RUN_2, config=config(server.url, "json"))
    assert (recovered["new"], recovered["suppressed"], recovered["delivered"]) == (0, 1, 1)
    [row] = _alerts(lake)
    assert (row["status"], row["attempts"]) == ("delivered", 4)
    delivered = [a["alert_id"] for body in _delivered_bodies(server) for a in body["alerts"]]
    assert delivered == [row["alert_id"]]  # exactly once


def test_wrong_url_leaves_the_alert_pending_and_deliver_says_why_in_one_line(prefect_harness, oncall, capsys):
    from pipelines.alerts import alerts_flow

    lake, config, _ = oncall
    publish_flags(lake, [make_flag(run=RUN_1)])
    url = closed_port_url()
    summary = alerts_flow(detect_run_id=RUN_1, config=config(url))
    assert "cannot connect" in summary["error"]
    assert main(["--config", config(url), "alerts", "--pending"]) == 0
    assert "acct-1" in capsys.readouterr().out
    assert main(["--config", config(url), "deliver"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("enumwatch: webhook http://127.0.0.1:") and "cannot connect" in err[0]
    assert "s3cr3t" not in err[0]
    [row] = _alerts(lake)
    assert (row["status"], row["attempts"]) == ("failed", 6)
    with webhook_server() as server:
        assert main(["--config", config(server.url), "deliver"]) == 0
    assert len(_delivered_bodies(server)) == 1 and _alerts(lake)[0]["status"] == "delivered"
    assert "1 delivered, 0 undelivered" in capsys.readouterr().out
    assert main(["--config", config(server.url), "alerts", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["exposed_names"] == ["王菲"] and listed["status"] == "delivered"


def test_a_failed_detect_flow_pages_on_call_through_the_webhook_and_a_failure_file(prefect_harness, oncall):
    from core.rules import RulesError
    from pipelines.detect import detect_flow

    lake, config, out = oncall
    rules = lake.root.parent / "rules.yaml"
    rules.write_text("version: 2\n")  # a rules file from the future: the run stops before computing anything
    with webhook_server() as server:
        with pytest.raises(RulesError, match="version: 1"):
            detect_flow(config=config(server.url), rules=str(rules))
    [body] = _delivered_bodies(server)
    assert body["text"].startswith("enumwatch: the detect flow FAILED\n\nflow detect, run ")
    assert "version: 1" in body["text"] and "tables published before this run are unchanged" in body["text"]
    [failure] = out.glob("failure-*-detect-*.json")
    assert json.loads(failure.read_text())["delivered"] is True
    assert failure.with_suffix(".csv").read_text().splitlines()[1].startswith("failure,")


def test_a_failed_child_flow_pages_once_through_its_parent_and_an_undelivered_page_is_resent(prefect_harness, oncall):
    from core.discovery import SourceError
    from pipelines.alerts import alerts_flow
    from pipelines.run import run_flow

    lake, config, out = oncall
    with webhook_server(status=500) as server:
        with pytest.raises(SourceError):
            run_flow(source=str(out / "missing"), config=config(server.url))
        assert len(server.received) == 3  # one page (the run flow's), tried three times
        server.status = 200
        alerts_flow(config=config(server.url))  # the next alerts run resends it
    [body] = _delivered_bodies(server)
    assert body["text"].startswith("enumwatch: the run flow FAILED (delivered late)")
    assert "source path does not exist" in body["text"]  # the child's error, in the parent's page
    [failure] = out.glob("failure-*.json")
    assert json.loads(failure.read_text())["delivered"] is True


def test_report_flow_writes_the_days_flags_and_alerts_as_markdown_with_names_only_in_the_file(prefect_harness, oncall):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from pipelines.alerts import alerts_flow, report_flow

    lake, config, _ = oncall
    now = datetime.now(timezone.utc)
    publish_flags(lake, [make_flag(run=RUN_1, at=now), make_flag("acct-2", "critical", 90, run=RUN_1, at=now)])
    alerts_flow(detect_run_id=RUN_1, config=config(None))
    path = Path(report_flow(config=config(None)))
    text = path.read_text(encoding="utf-8")
    assert "- flagged entities: 2 (1 critical, 1 high, 0 medium, 0 low)" in text
    assert "- alerts raised: 2; delivered 2, undelivered 0" in text
    assert (
        "| critical | 90 | client_id acct-2 | many_distinct_ids | 420 | 391 | 37 | 王菲 | `enumwatch investigate client_id acct-2` |"
        in text
    )
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["enumwatch-daily-report"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert "client_id acct-2" in artifact.data and "王菲" not in artifact.data
    assert pq.read_table(lake.current("alerts")).num_rows == 2
