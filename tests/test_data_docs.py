"""GX Data Docs: one site per run that validated something, naming its suites and never a raw value."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import TEST_KEY

from cli.output import format_summary
from jobs.quality import build_data_docs, prune_data_docs, validate
from schemas import REQUESTS

UTC = dt.timezone.utc
H = "ab" * 32
RAW_IDS = ("110105194912310021", "11010519491231002X")  # valid-looking ID numbers that must never be rendered
LOOKUP = "/api/v1/healthkit/lookup"


def _site_text(site: Path) -> str:
    """Every text file of a docs site (HTML, JS, JSON), concatenated; fonts and images skipped."""
    parts = []
    for path in sorted(site.rglob("*")):
        if path.is_file() and path.suffix in (".html", ".js", ".json", ".css", ".txt"):
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def _artifacts(flow_run_id) -> list[str]:
    """The data of every artifact of one flow run (a link artifact holds markdown naming its URL)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return [str(a.data) for a in found]


def _request_row(**changes) -> tuple:
    row = dict(
        event_time=dt.datetime(2026, 11, 1, 10, tzinfo=UTC),
        client_ip="203.0.113.7",
        client_id="u42",
        device_id=None,
        request_id=None,
        method="GET",
        path=LOOKUP,
        query_redacted="id=~",
        status=200,
        bytes_sent=10,
        latency_ms=1.0,
        user_agent="okhttp",
        is_lookup=True,
        id_hash=H,
        id_prefix_hash=H,
        id_seq=2,
        id_valid=True,
        id_masked="110105************",
        name_hash=None,
        watchlist_key=None,
        source_file="/src/a.jsonl",
        line_no=1,
        ingest_run_id="run-docs",
        event_date=dt.date(2026, 11, 1),
    )
    row.update(changes)
    return tuple(row[c] for c in REQUESTS.names)


@pytest.mark.spark
def test_data_docs_of_a_failed_validation_count_the_leaked_ids_without_showing_them(spark, tmp_path):
    # A raw ID number that slipped into two columns: GX's default result lists such values and the
    # docs would render them. The verdict keeps the count; the site shows neither number.
    rows = [
        _request_row(line_no=1, client_id=RAW_IDS[0]),
        _request_row(line_no=2, path=f"{LOOKUP}/{RAW_IDS[1]}"),
        _request_row(line_no=3),
    ]
    df = spark.createDataFrame(rows, REQUESTS.spark_schema())
    params = {
        "min_event_time": dt.datetime(2000, 1, 1, tzinfo=UTC),
        "max_event_time": dt.datetime(2030, 1, 1, tzinfo=UTC),
        "expected_requests": 3,
    }
    verdicts = validate(df, "requests", run_id="run-docs-leak", stage="ingest", parameters=params)
    failed = {v.expectation: v for v in verdicts if not v.success}
    assert failed["expect_column_values_to_not_match_regex(client_id, regex=[0-9]{17}[0-9Xx])"].unexpected_count == 1
    assert failed["expect_column_values_to_not_match_regex(path, regex=[0-9]{17}[0-9Xx])"].unexpected_count == 1

    index = build_data_docs("run-docs-leak", tmp_path / "docs" / "run-docs-leak")

    assert index is not None and index.is_file()
    text = _site_text(index.parent)
    assert "requests" in index.read_text(encoding="utf-8")
    assert "expect_column_values_to_not_match_regex" in text or "not match" in text  # the failure is rendered
    assert [raw for raw in RAW_IDS if raw in text] == []
    assert [v for v in verdicts if v.observed_value and any(raw in v.observed_value for raw in RAW_IDS)] == []


@pytest.mark.spark
def test_data_docs_site_holds_every_suite_of_its_run_and_shares_one_static_copy(spark, tmp_path):
    df = spark.createDataFrame([_request_row()], REQUESTS.spark_schema())
    params = {
        "min_event_time": dt.datetime(2000, 1, 1, tzinfo=UTC),
        "max_event_time": dt.datetime(2030, 1, 1, tzinfo=UTC),
        "expected_requests": 1,
    }
    root = tmp_path / "docs"
    for run in ("run-a", "run-b"):
        validate(df, "requests", run_id=run, stage="ingest", parameters=params)
        validate(df.limit(0), "requests", run_id=run, stage="ingest", parameters={**params, "expected_requests": 0})
        build_data_docs(run, root / run)

    for run in ("run-a", "run-b"):
        site = root / run
        assert (site / "static").is_symlink()
        assert (site / "static" / "styles").is_dir()  # the link resolves
        assert len(list((site / "validations").rglob("*.html"))) == 2  # both validations of the run
    assert len([p for p in root.iterdir() if p.name.startswith("_static-")]) == 1
    assert build_data_docs("run-a", root / "run-a-again") is None  # built once; nothing left to build


def test_prune_data_docs_keeps_the_newest_sites_and_the_shared_static(tmp_path):
    (tmp_path / "_static-1.0").mkdir()
    for n in range(5):
        site = tmp_path / f"ingest-{n}"
        site.mkdir()
        (site / "index.html").write_text("<html/>")
        os.utime(site / "index.html", (time.time() - 100 + n, time.time() - 100 + n))

    removed = prune_data_docs(tmp_path, keep=2)

    assert sorted(p.name for p in removed) == ["ingest-0", "ingest-1", "ingest-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_static-1.0", "ingest-3", "ingest-4"]


def test_ingest_summary_prints_where_the_data_docs_are():
    summary = dict(
        run_id="ingest-1",
        files=1,
        lines=2,
        parsed=2,
        quarantined=0,
        blank=0,
        seconds=1.0,
        lake="/l",
        files_already_ingested=0,
        files_unreadable=[],
        files_with_read_errors=[],
        files_skipped=0,
        warnings=[],
        data_docs="file:///l/_docs/ingest-1/index.html",
    )
    assert "  data docs: file:///l/_docs/ingest-1/index.html" in format_summary(summary).splitlines()


@pytest.mark.flow
@pytest.mark.spark
def test_ingest_run_builds_a_data_docs_site_naming_its_suites_and_no_raw_id(
    spark, prefect_harness, tmp_path, monkeypatch
):
    from pipelines.ingest import ingest_flow

    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
    for name in ("ENUMWATCH_LAKE", "SPARK_MASTER", "ENUMWATCH_CONFIG", "ENUMWATCH_KEY_FILE", "ENUMWATCH_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "src"
    src.mkdir()
    lines = [
        {"ts": f"2026-11-01T10:{i:02d}:00Z", "client_ip": "198.51.100.7", "path": f"{LOOKUP}?id={raw}", "status": 200}
        for i, raw in enumerate(RAW_IDS * 3)
    ]
    (src / "a.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json " + RAW_IDS[0] + "\n")
    lake = tmp_path / "lake"
    config = tmp_path / "enumwatch.toml"
    config.write_text(
        f'[lake]\npath = "{lake}"\n[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n'
        f'[pseudonym]\nkey_file = "{tmp_path / "unused.key"}"\n'
        "[ingest]\nquarantine_warn_share = 0.5\nquarantine_fail_share = 1.0\n"
        f'[alerts]\nout_dir = "{tmp_path / "alerts-out"}"\n'
    )

    state = ingest_flow(source=str(src), fmt="jsonl", config=str(config), return_state=True)
    summary = state.result()

    url = summary["data_docs"]
    assert url.startswith("file:///") and url.endswith("/index.html")
    index = Path(unquote(urlparse(url).path))
    assert index.is_file() and index.parent.parent == lake / "_docs"
    assert index.parent.name == summary["run_id"]
    html = index.read_text(encoding="utf-8")
    assert "requests" in html and "quarantine" in html
    text = _site_text(index.parent)
    assert [raw for raw in RAW_IDS if raw in text] == []
    assert not re.search(r"[0-9]{17}[0-9Xx]", text)  # nor anything else shaped like an ID number
    assert TEST_KEY not in text
    assert [a for a in _artifacts(state.state_details.flow_run_id) if url in a]  # shown in the Prefect UI too
