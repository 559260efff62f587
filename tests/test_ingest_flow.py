"""The ingest flow end to end under a real (temporary) Prefect API: bad input, accounting, re-ingest, atomic publish.

Flow runs are expensive, so each module fixture runs one scenario once and several tests look at it.
Lake tables are read back with pyarrow (no Spark needed to look), except where a whole-table Spark
comparison says more.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import shutil
import zlib
from collections import Counter
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from conftest import flow_env, write_config
from ingest_runs import TABLES, counts, links, rows, run_ingest
from pyspark.testing import assertDataFrameEqual

from core.discovery import SourceError
from core.lake import Lake
from jobs.ingest import QUARANTINE_LINE_CHARS
from jobs.quality import QualityGateError, load_suite

pytestmark = [pytest.mark.flow, pytest.mark.spark]

LOOKUP = "/api/v1/healthkit/lookup"
DROP = object()
GOOD = {"ts": "2026-11-01T10:00:00Z", "client_ip": "198.51.100.7", "path": "/api/v1/healthkit/me", "status": 200}


# --- helpers ------------------------------------------------------------------------------------
def jline(**changes) -> bytes:
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not DROP}, ensure_ascii=False).encode()


def physical_lines(data: bytes) -> int:
    return 0 if not data else data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


# --- scenario 1: every kind of bad input in one run ---------------------------------------------
BAD_LINES = [
    (
        "truncated-json",
        b'{"ts":"2026-11-01T10:00:00Z","client_ip":"198.51.100.7","path":"'
        + LOOKUP.encode()
        + b"?id=11010519491231002",
        "invalid_json",
    ),
    ("binary-junk", b"\x00\x01\x02\x1b[0m\x7f\x03\x04 junk \x05", "invalid_json"),
    ("json-that-is-not-an-object", b'["2026-11-01T10:00:00Z","198.51.100.7","/x",200]', "not_an_object"),
    ("missing-ts", jline(ts=DROP), "missing_field:ts"),
    ("missing-client-ip", jline(client_ip=DROP), "missing_field:client_ip"),
    ("missing-path", jline(path=DROP), "missing_field:path"),
    ("missing-status", jline(status=DROP), "missing_field:status"),
    ("unparseable-timestamp", jline(ts="31/11/2026 25:61"), "bad_timestamp"),
    ("status-not-a-number", jline(status="abc"), "bad_status"),
    ("non-utf8-bytes", jline(path="/caf_").replace(b"caf_", b"caf\xe9"), "invalid_utf8"),
    ("line-over-64-kib", jline(path="/api/v1/healthkit/me?pad=" + "a" * 70_000), "line_too_long"),
]
GZ_LINES = 600


@pytest.fixture(scope="module")
def bad_run(prefect_harness, tmp_path_factory):
    """One ingest of a directory holding every kind of bad input, published (fail share 1.0)."""
    root = tmp_path_factory.mktemp("bad")
    src = root / "src"
    src.mkdir()
    files: dict[str, Path] = {name: src / name for name in ("good.jsonl", "bad.jsonl", "empty.jsonl", "cut.jsonl.gz")}
    files["good.jsonl"].write_bytes(
        jline(path=f"{LOOKUP}?id=11010519491231002X&name=%E5%91%A8%E6%9D%B0%E4%BC%A6")
        + b"\n\n"
        + jline(ts=1761991200000)
        + b"\n\t\n"
        + jline(status="404")
    )  # no newline at the end
    files["bad.jsonl"].write_bytes(b"\n".join(line for _, line, _ in BAD_LINES) + b"\n" + jline() + b"\n")
    files["empty.jsonl"].write_bytes(b"")
    rnd = random.Random(7)
    gz_data = b"".join(
        jline(request_id=f"{rnd.getrandbits(64):016x}", ts=f"2026-11-01T{i % 24:02d}:{i % 60:02d}:00Z") + b"\n"
        for i in range(GZ_LINES)
    )
    packed = gzip.compress(gz_data)
    files["cut.jsonl.gz"].write_bytes(packed[: len(packed) * 6 // 10])
    readable = zlib.decompressobj(wbits=31).decompress(files["cut.jsonl.gz"].read_bytes())
    dangling = src / "x.jsonl"
    dangling.symlink_to(root / "missing.jsonl")
    lake = root / "lake"
    summary = run_ingest(src, write_config(root, lake))
    return {
        "summary": summary,
        "lake": lake,
        "files": files,
        "dangling": dangling,
        "gz_kept": readable.count(b"\n"),  # complete lines before the break, decoded independently
    }


def _quarantine_by_line(bad_run, name: str) -> dict[int, dict]:
    path = str(bad_run["files"][name])
    return {r["line_no"]: r for r in rows(bad_run["lake"], "quarantine") if r["source_file"] == path}


@pytest.mark.parametrize(
    ("line_no", "reason"),
    [(n, reason) for n, (_, _, reason) in enumerate(BAD_LINES, start=1)],
    ids=[case for case, _, _ in BAD_LINES],
)
def test_ingest_quarantines_the_bad_line_naming_file_line_and_reason(bad_run, line_no, reason):
    row = _quarantine_by_line(bad_run, "bad.jsonl")[line_no]
    assert (row["source_file"], row["line_no"], row["reason"]) == (str(bad_run["files"]["bad.jsonl"]), line_no, reason)
    assert row["detail"] and row["ingest_run_id"] == bad_run["summary"]["run_id"]


def test_ingest_quarantine_holds_exactly_the_bad_lines_and_the_gzip_break(bad_run, spark):
    lake = Lake(bad_run["lake"])
    result = lake.read(spark, "quarantine").select("source_file", "line_no", "reason")
    bad = str(bad_run["files"]["bad.jsonl"])
    expected = [(bad, n, reason) for n, (_, _, reason) in enumerate(BAD_LINES, start=1)]
    expected.append((str(bad_run["files"]["cut.jsonl.gz"]), bad_run["gz_kept"] + 1, "truncated_gzip"))
    assertDataFrameEqual(result, spark.createDataFrame(expected, "source_file string, line_no bigint, reason string"))


def test_ingest_keeps_a_line_over_64_kib_as_its_length_and_a_truncated_masked_sample(bad_run):
    n = [case for case, _, _ in BAD_LINES].index("line-over-64-kib") + 1
    row = _quarantine_by_line(bad_run, "bad.jsonl")[n]
    assert row["line_bytes"] == len(BAD_LINES[n - 1][1])
    assert len(row["line_masked"]) == QUARANTINE_LINE_CHARS
    assert row["line_masked"].startswith('{"ts": "2026-11-01T10:00:00Z"')


def test_ingest_masks_the_id_in_a_quarantined_truncated_line(bad_run):
    row = _quarantine_by_line(bad_run, "bad.jsonl")[1]
    assert "11010519491231002" not in row["line_masked"]
    assert "id=~" in row["line_masked"]
    for r in rows(bad_run["lake"], "quarantine"):
        assert not re.search(r"[0-9]{6}", r["line_masked"] or ""), r


def test_ingest_keeps_lines_before_a_gzip_break_and_reports_the_file(bad_run):
    cut = str(bad_run["files"]["cut.jsonl.gz"])
    kept = bad_run["gz_kept"]
    assert 0 < kept < GZ_LINES
    line_nos = sorted(r["line_no"] for r in rows(bad_run["lake"], "requests") if r["source_file"] == cut)
    assert line_nos == list(range(1, kept + 1))
    assert _quarantine_by_line(bad_run, "cut.jsonl.gz")[kept + 1]["reason"] == "truncated_gzip"
    manifest = {r["source_file"]: r for r in rows(bad_run["lake"], "ingest_manifest")}
    assert manifest[cut]["read_error"] == "truncated_gzip"
    assert bad_run["summary"]["files_with_read_errors"] == [f"{cut} (truncated_gzip)"]


def test_ingest_records_an_empty_file_in_the_manifest_with_zero_lines(bad_run):
    empty = str(bad_run["files"]["empty.jsonl"])
    row = {r["source_file"]: r for r in rows(bad_run["lake"], "ingest_manifest")}[empty]
    assert (
        row["size_bytes"],
        row["lines_read"],
        row["lines_parsed"],
        row["lines_quarantined"],
        row["lines_blank"],
    ) == (
        0,
        0,
        0,
        0,
        0,
    )


def test_ingest_reports_an_unreadable_file_and_ingests_the_others(bad_run):
    summary = bad_run["summary"]
    assert summary["files_unreadable"] == [f"{bad_run['dangling']} (broken symbolic link)"]
    manifest = {r["source_file"] for r in rows(bad_run["lake"], "ingest_manifest")}
    assert manifest == {str(p) for p in bad_run["files"].values()}
    assert summary["files"] == 4


def test_ingest_accounts_for_every_physical_line_of_every_file(bad_run):
    lake = bad_run["lake"]
    requests = Counter(r["source_file"] for r in rows(lake, "requests"))
    quarantine = Counter(r["source_file"] for r in rows(lake, "quarantine"))
    manifest = {r["source_file"]: r for r in rows(lake, "ingest_manifest")}
    for name, path in bad_run["files"].items():
        m = manifest[str(path)]
        expected_lines = bad_run["gz_kept"] + 1 if name.endswith(".gz") else physical_lines(path.read_bytes())
        assert m["lines_read"] == expected_lines, name
        assert m["lines_read"] == m["lines_parsed"] + m["lines_quarantined"] + m["lines_blank"], name
        assert requests[str(path)] == m["lines_parsed"], name
        assert quarantine[str(path)] == m["lines_quarantined"], name
    good = manifest[str(bad_run["files"]["good.jsonl"])]
    assert (good["lines_parsed"], good["lines_blank"]) == (3, 2)  # the tab-only line is blank too


def test_ingest_summary_totals_match_the_manifest_and_warn_on_quarantined_share(bad_run):
    summary = bad_run["summary"]
    manifest = rows(bad_run["lake"], "ingest_manifest")
    columns = {
        "lines": "lines_read",
        "parsed": "lines_parsed",
        "quarantined": "lines_quarantined",
        "blank": "lines_blank",
    }
    for key, column in columns.items():
        assert summary[key] == sum(r[column] for r in manifest), key
    assert any("quarantine" in w and "[warning]" in w for w in summary["warnings"])
    assert summary["seconds"] > 0


def test_ingest_records_one_dq_result_per_expectation_per_validation(bad_run):
    run_id = bad_run["summary"]["run_id"]
    results = [r for r in rows(bad_run["lake"], "dq_results") if r["run_id"] == run_id]
    per_suite = Counter(r["suite"] for r in results)
    assert per_suite == {s: len(load_suite(s)["expectations"]) for s in ("requests", "quarantine")}
    for r in results:
        assert r["stage"] == "ingest" and r["severity"] in ("critical", "warning")
        assert isinstance(r["success"], bool) and r["expectation"] and r["validated_at"] is not None
    assert all(r["success"] for r in results if r["severity"] == "critical")


# --- scenario 2: re-ingesting -------------------------------------------------------------------
def _lines(*records: tuple[str, int]) -> bytes:
    return b"".join(jline(ts=ts, status=status) + b"\n" for ts, status in records)


@pytest.fixture(scope="module")
def reingest_run(prefect_harness, tmp_path_factory):
    """Ingest a, b and c; change a; try again without and then with --reingest of a and b only."""
    from cli.main import main

    root = tmp_path_factory.mktemp("reingest")
    data = root / "data"  # the lake and config live beside the source, not inside it
    a, b, c = data / "src" / "a.jsonl", data / "src" / "b.jsonl", data / "keep" / "c.jsonl"
    for path in (a, b, c):
        path.parent.mkdir(parents=True, exist_ok=True)
    a.write_bytes(_lines(("2026-11-01T10:00:00Z", 200), ("2026-11-02T10:00:00Z", 201)) + b"{bad\n")
    b.write_bytes(jline(ts="2026-11-02T11:00:00Z", status=202) + b"\n")
    c.write_bytes(jline(ts="2026-11-01T12:00:00Z", status=203) + b"\n")
    lake = root / "lake"
    config = write_config(root, lake)
    out = {"lake": lake, "a": a, "b": b, "c": c}
    out["first"] = run_ingest(data, config)
    out["before"] = {t: rows(lake, t) for t in TABLES}
    out["again"] = run_ingest(data, config)
    out["after_again"] = counts(lake)

    a.write_bytes(_lines(("2026-11-01T10:00:00Z", 500), ("2026-11-03T10:00:00Z", 501), ("2026-11-03T10:05:00Z", 502)))
    links_before_refusal = links(lake)
    with pytest.raises(SourceError) as refused:
        run_ingest(data, config)
    out["refused"] = str(refused.value)
    out["links_unchanged_after_refusal"] = links(lake) == links_before_refusal
    err = io.StringIO()
    with flow_env(), redirect_stderr(err):
        out["cli_rc"] = main(["--config", str(config), "ingest", "--source", str(data), "--format", "jsonl"])
    out["cli_err"] = err.getvalue()
    out["reingest"] = run_ingest(data / "src", config, reingest=True)
    return out


def _by_file(table_rows: list[dict], path: Path) -> list[dict]:
    return sorted((r for r in table_rows if r["source_file"] == str(path)), key=lambda r: r["line_no"])


def test_ingest_of_the_same_files_again_adds_no_rows(reingest_run):
    again = reingest_run["again"]
    assert (again["files"], again["files_already_ingested"], again["lines"]) == (0, 3, 0)
    before = {t: len(r) for t, r in reingest_run["before"].items()}
    assert {t: reingest_run["after_again"][t] for t in ("requests", "quarantine", "ingest_manifest")} == {
        t: before[t] for t in ("requests", "quarantine", "ingest_manifest")
    }


def test_ingest_refuses_a_changed_file_naming_it_and_leaves_the_lake_alone(reingest_run):
    assert str(reingest_run["a"]) in reingest_run["refused"]
    assert str(reingest_run["b"]) not in reingest_run["refused"]
    assert "--reingest" in reingest_run["refused"]
    assert reingest_run["links_unchanged_after_refusal"]


def test_cli_ingest_of_a_changed_file_exits_non_zero_naming_it(reingest_run):
    assert reingest_run["cli_rc"] != 0
    last = reingest_run["cli_err"].strip().splitlines()[-1]
    assert last.startswith("enumwatch: refused") and str(reingest_run["a"]) in last


def test_reingest_replaces_the_changed_files_rows_without_duplicates(reingest_run):
    lake = reingest_run["lake"]
    requests = rows(lake, "requests")
    a_rows = _by_file(requests, reingest_run["a"])
    assert [(r["line_no"], r["status"], str(r["event_date"])) for r in a_rows] == [
        (1, 500, "2026-11-01"),
        (2, 501, "2026-11-03"),
        (3, 502, "2026-11-03"),
    ]
    assert {r["ingest_run_id"] for r in a_rows} == {reingest_run["reingest"]["run_id"]}
    keys = [(r["source_file"], r["line_no"]) for r in requests]
    assert len(keys) == len(set(keys))
    assert _by_file(rows(lake, "quarantine"), reingest_run["a"]) == []  # the old bad line 3 is gone with its file


def test_reingest_leaves_files_outside_the_source_untouched(reingest_run):
    lake = reingest_run["lake"]
    c = reingest_run["c"]
    assert _by_file(rows(lake, "requests"), c) == _by_file(reingest_run["before"]["requests"], c)
    manifest = {r["source_file"]: r for r in rows(lake, "ingest_manifest")}
    assert manifest[str(c)] == {r["source_file"]: r for r in reingest_run["before"]["ingest_manifest"]}[str(c)]


def test_reingest_updates_the_manifest_with_the_new_content(reingest_run):
    manifest = {r["source_file"]: r for r in rows(reingest_run["lake"], "ingest_manifest")}
    before = {r["source_file"]: r for r in reingest_run["before"]["ingest_manifest"]}
    a = str(reingest_run["a"])
    assert manifest[a]["sha256"] != before[a]["sha256"]
    assert (manifest[a]["lines_read"], manifest[a]["lines_parsed"], manifest[a]["lines_quarantined"]) == (3, 3, 0)
    assert manifest[a]["ingest_run_id"] == reingest_run["reingest"]["run_id"]
    assert len(manifest) == 3
    b = str(reingest_run["b"])
    b_rows = _by_file(rows(reingest_run["lake"], "requests"), reingest_run["b"])
    assert [(r["line_no"], r["status"]) for r in b_rows] == [(1, 202)]
    assert manifest[b]["sha256"] == before[b]["sha256"]


# --- scenario 3: a failed gate and a crash leave the published tables as they were --------------
@pytest.fixture(scope="module")
def published(bad_run) -> Path:
    """A lake with every table published (the bad-input run's), copied by the tests that try to break it."""
    return bad_run["lake"]


def _copy_lake(published: Path, tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    shutil.copytree(published, lake, symlinks=True)
    return lake


def test_ingest_failing_a_critical_expectation_publishes_nothing_but_its_verdicts(published, tmp_path):
    lake = _copy_lake(published, tmp_path)
    before_links, before_counts = links(lake), counts(lake)
    src = tmp_path / "src"
    src.mkdir()
    (src / "mostly-bad.jsonl").write_bytes(b"{bad\n[1]\n{worse\n" + jline() + b"\n")
    with pytest.raises(QualityGateError, match="quarantine_fail_rows|max_value"):
        run_ingest(src, write_config(tmp_path, lake, warn=0.1, fail=0.2))
    after_links = links(lake)
    assert {t: after_links[t] for t in TABLES[:3]} == {t: before_links[t] for t in TABLES[:3]}
    assert {t: counts(lake)[t] for t in TABLES[:3]} == {t: before_counts[t] for t in TABLES[:3]}
    old_runs = {r["run_id"] for r in rows(published, "dq_results")}
    new_verdicts = [r for r in rows(lake, "dq_results") if r["run_id"] not in old_runs]
    failed = [r for r in new_verdicts if not r["success"]]
    assert [(r["suite"], r["severity"]) for r in failed if r["severity"] == "critical"] == [("quarantine", "critical")]
    assert len(new_verdicts) == len(load_suite("requests")["expectations"]) + len(
        load_suite("quarantine")["expectations"]
    )
    assert not (lake / "_journal.json").exists() and not (lake / "_staging").exists()


def test_ingest_crash_between_building_and_swapping_changes_nothing_and_next_run_rolls_forward(published, tmp_path):
    lake = _copy_lake(published, tmp_path)
    before_links, before_counts = links(lake), counts(lake)
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.jsonl").write_bytes(jline(ts="2026-11-02T09:00:00Z") + b"\n" + jline(ts="2026-11-02T09:01:00Z") + b"\n")
    config = write_config(tmp_path, lake)
    calls = []

    def crash(self, links_):
        calls.append(links_)
        raise RuntimeError("simulated crash before the swap")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Lake, "_swap", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_ingest(src, config)
    assert len(calls) == 1
    assert links(lake) == before_links
    assert counts(lake) == before_counts
    assert (lake / "_journal.json").exists()

    summary = run_ingest(src, config)  # recover() finishes the crashed publish first
    assert (summary["files"], summary["files_already_ingested"]) == (0, 1)
    assert counts(lake)["requests"] == before_counts["requests"] + 2
    assert not (lake / "_journal.json").exists()
    for table, target in calls[0].items():  # exactly the versions the crashed run had built
        assert (lake / table).resolve() == (lake / target).resolve()
