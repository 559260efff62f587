"""No raw ID number or name anywhere: generated traffic through the ingest flow, then every place it could leak.

The needles are the raw values the generator wrote (IDs, names, their percent-encodings); each test
searches one place for them: Parquet values, file bytes and names, quarantined lines, Prefect's
logs, parameters and artifacts.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import pytest
from conftest import TEST_KEY, flow_env, write_config
from ingest_runs import TABLES, counts, rows, run_ingest

from pipelines.ingest import ingest_flow

pytestmark = [pytest.mark.flow, pytest.mark.spark]

LOOKUP = "/api/v1/healthkit/lookup"


def _raw_lookup_values(logs: Path) -> tuple[set[str], set[str], set[str]]:
    """Every ID number, name and percent-encoded name the input carries, read from the query strings."""
    ids: set[str] = set()
    names: set[str] = set()
    encoded: set[str] = set()
    for path in sorted(logs.rglob("*.gz")):
        for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
            for query in re.findall(r"\?([^\"\s]*)", line):  # malformed lines too: any query string in the text
                for key, value in parse_qsl(query):
                    if key == "id" and len(value.strip()) >= 15:  # shorter cut-off values are not an ID
                        ids.add(value.strip().upper())
                    elif key == "name" and "\ufffd" not in value:  # a cut escape decodes to U+FFFD
                        for form in (value.strip(), unicodedata.normalize("NFKC", value).strip()):
                            if len(form) >= 2:
                                names.add(form)
                for raw in re.findall(r"(?:^|&)name=([^&#]*)", query):
                    encoded.update(run.upper() for run in re.findall(r"(?:%[0-9A-Fa-f]{2}){2,}", raw))
    return ids, names, encoded


class Needles:
    """Finds any of a (large) set of raw values in text or bytes by checking only plausible runs."""

    def __init__(self, ids: set[str], names: set[str], encoded: set[str]) -> None:
        self.text_sets = [
            (re.compile(r"[0-9Xx]{15,}"), str.upper, ids),
            (re.compile(r"[^\x00-\x1f\x21-\x7f]+"), lambda s: s, names),
            (re.compile(r"(?:%[0-9A-Fa-f]{2})+"), str.upper, encoded),
        ]
        name_bytes = {n.encode("utf-8") for n in names}
        self.byte_sets = [
            (re.compile(rb"[0-9Xx]{15,}"), bytes.upper, {i.encode() for i in ids}),
            (re.compile(rb"[\x20\x80-\xff]+"), lambda b: b, name_bytes),
            (re.compile(rb"(?:%[0-9A-Fa-f]{2})+"), bytes.upper, {e.encode() for e in encoded}),
        ]

    @staticmethod
    def _scan(data, sets) -> set:
        found = set()
        for pattern, fold, needles in sets:
            lengths = {len(n) for n in needles}
            for run in pattern.findall(data):
                run = fold(run)
                for size in lengths:
                    found.update(run[i : i + size] for i in range(len(run) - size + 1) if run[i : i + size] in needles)
        return found

    def in_text(self, text: str) -> set:
        return self._scan(text, self.text_sets)

    def in_bytes(self, data: bytes) -> set:
        return self._scan(data, self.byte_sets)


def _parquet_strings(path: Path) -> str:
    """Every string value of a Parquet file (dictionary-encoded or plain), one per line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = []
    for column in pq.read_table(path).columns:
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values += [v for v in column.to_pylist() if v is not None]
    return "\n".join(values)


def _prefect_texts(flow_run_id) -> list[str]:
    """Log messages, parameters and artifacts the Prefect API holds for one flow run and its tasks."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        flow_run = client.read_flow_run(flow_run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return (
        [log.message for log in logs]
        + [json.dumps(flow_run.parameters, default=str)]
        + [t.model_dump_json() for t in tasks]
        + [a.model_dump_json() for a in artifacts]
    )


@pytest.fixture(scope="module")
def generated_run(prefect_harness, tmp_path_factory):
    """One day of generated traffic (gzip hourly files, malformed and blank lines) ingested with its watchlist."""
    from generator.generate import generate

    root = tmp_path_factory.mktemp("generated")
    truth = generate(root / "gen", days=1, scale=0.05)
    logs = root / "gen" / "logs"
    lake = root / "lake"
    config = write_config(root, lake, warn=0.05)
    with flow_env():
        state = ingest_flow(
            source=str(logs),
            fmt="jsonl",
            config=str(config),
            watchlist=str(root / "gen" / "watchlist.csv"),
            return_state=True,
        )
    summary = state.result()
    prefect_texts = _prefect_texts(state.state_details.flow_run_id)
    before = counts(lake)
    again = run_ingest(logs, config)
    return {
        "truth": truth,
        "logs": logs,
        "lake": lake,
        "summary": summary,
        "prefect": prefect_texts,
        "before_again": before,
        "again": again,
        "watchlist": root / "gen" / "watchlist.csv",
    }


@pytest.fixture(scope="module")
def needles(generated_run) -> Needles:
    ids, names, encoded = _raw_lookup_values(generated_run["logs"])
    assert len(ids) > 1000 and len(names) > 100 and len(encoded) > 100  # the input really is full of them
    return Needles(ids, names, encoded)


@pytest.mark.slow
def test_generated_ingest_accounts_for_every_line_the_generator_wrote(generated_run):
    truth, summary = generated_run["truth"], generated_run["summary"]
    assert summary["lines"] == truth["total_lines"]
    assert summary["blank"] == truth["blank_lines"]
    assert summary["quarantined"] == sum(truth["malformed_lines"].values())
    assert summary["parsed"] == truth["event_lines"]
    lake = generated_run["lake"]
    assert len(rows(lake, "requests")) + len(rows(lake, "quarantine")) + summary["blank"] == truth["total_lines"]
    assert summary["files"] == truth["files"]


@pytest.mark.slow
def test_generated_ingest_again_adds_no_rows(generated_run):
    again = generated_run["again"]
    assert (again["files"], again["files_already_ingested"]) == (0, generated_run["truth"]["files"])
    after = counts(generated_run["lake"])
    assert {t: after[t] for t in TABLES[:3]} == {t: generated_run["before_again"][t] for t in TABLES[:3]}


@pytest.mark.slow
def test_generated_ingest_marks_lookups_of_watchlisted_names(generated_run):
    from core.pseudonym import watchlist_key
    from core.watchlist import load_watchlist

    entries = load_watchlist(generated_run["watchlist"], TEST_KEY.encode())
    handles = {watchlist_key(TEST_KEY.encode(), e.name) for e in entries}
    hits = [r["watchlist_key"] for r in rows(generated_run["lake"], "requests") if r["watchlist_key"]]
    assert hits and set(hits) <= handles


@pytest.mark.slow
def test_needles_find_raw_values_in_the_input_itself(generated_run, needles):
    # The scanner must be able to fail: the raw input is full of what it looks for.
    some = sorted(generated_run["logs"].rglob("*.gz"))[10]
    data = gzip.decompress(some.read_bytes())
    assert len(needles.in_bytes(data)) > 10
    assert len(needles.in_text(unquote(data.decode("utf-8")))) > 10


@pytest.mark.slow
def test_no_raw_id_or_name_in_any_string_value_of_any_parquet_file_in_the_lake(generated_run, needles):
    found = {}
    parquet_files = sorted(p for p in Path(generated_run["lake"]).rglob("*.parquet") if p.is_file())
    assert len(parquet_files) >= 4
    for path in parquet_files:
        hits = needles.in_text(_parquet_strings(path))
        if hits:
            found[str(path)] = sorted(hits)[:5]
    assert found == {}


@pytest.mark.slow
def test_no_raw_id_or_name_in_the_bytes_or_names_of_any_file_under_the_lake(generated_run, needles):
    found = {}
    for folder, dirs, files in os.walk(generated_run["lake"]):
        for name in dirs + files:
            path = Path(folder) / name
            hits = needles.in_text(str(path))
            if path.is_file() and not path.is_symlink():
                hits |= needles.in_bytes(path.read_bytes())
            if hits:
                found[str(path)] = sorted(hits)[:5]
    assert found == {}


@pytest.mark.slow
def test_no_raw_id_or_name_in_quarantined_lines(generated_run, needles):
    masked = [r["line_masked"] for r in rows(generated_run["lake"], "quarantine")]
    assert len(masked) == sum(generated_run["truth"]["malformed_lines"].values())
    assert [m for m in masked if needles.in_text(m) or re.search(r"[0-9]{6}", m)] == []


@pytest.mark.slow
def test_no_raw_id_or_name_in_prefect_logs_parameters_or_artifacts(generated_run, needles):
    texts = generated_run["prefect"]
    assert any("Finished in state" in t or "found 24 files" in t for t in texts)  # the logs were really read
    assert [t[:200] for t in texts if needles.in_text(t) or needles.in_text(unquote(t))] == []
    assert not [t for t in texts if TEST_KEY in t]
