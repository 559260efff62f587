"""The `enumwatch` command line contract: exit codes, one-line errors, a JSON-only `sql --json`, the summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

import pytest
from background import VENV_BIN
from conftest import TEST_KEY

import pipelines.ingest  # noqa: F401  Prefect sets up its log handlers now, not inside a test's capsys
from cli.main import build_parser, main
from cli.output import format_detect_summary, format_summary
from core.lake import Lake
from schemas import REQUESTS

UTC = dt.timezone.utc


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """The key from the environment, nothing else inherited, and a config that keeps Spark small."""
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
    for name in ("ENUMWATCH_LAKE", "SPARK_MASTER", "ENUMWATCH_CONFIG", "ENUMWATCH_KEY_FILE", "ENUMWATCH_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "enumwatch.toml"
    config.write_text(
        f'[lake]\npath = "{tmp_path / "lake"}"\n[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n'
        f'[pseudonym]\nkey_file = "{tmp_path / "k.key"}"\n[alerts]\nout_dir = "{tmp_path / "alerts"}"\n'
        "[ingest]\nquarantine_warn_share = 1.0\nquarantine_fail_share = 1.0\n"  # tiny inputs are mostly bad lines
    )
    return config


def test_cli_ingest_of_a_missing_source_exits_non_zero_with_one_line_naming_it(cli_env, tmp_path, capsys):
    missing = tmp_path / "no-such-logs"
    rc = main(["--config", str(cli_env), "ingest", "--source", str(missing), "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert rc != 0
    assert err.splitlines() == [f"enumwatch: source path does not exist: {missing}"]
    assert out == ""
    assert not (tmp_path / "lake").exists()  # refused before anything was created


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "--source", "x", "--format", "csv"],
        ["ingest", "--format", "jsonl"],
        ["sql", "SELECT 1", "--lake"],
        ["generate"],
        ["no-such-command"],
    ],
    ids=["unknown-format", "ingest-without-source", "sql-lake-without-dir", "generate-without-out", "unknown-command"],
)
def test_cli_rejects_arguments_outside_the_contract_with_usage_exit(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "usage: enumwatch" in capsys.readouterr().err


def test_cli_parser_accepts_the_documented_commands():
    parser = build_parser()
    ingest = parser.parse_args(
        ["ingest", "--source", "logs", "--format", "combined", "--lake", "L", "--watchlist", "w.csv", "--reingest"]
    )
    assert (ingest.source, ingest.format, ingest.lake, ingest.watchlist, ingest.reingest) == (
        "logs",
        "combined",
        "L",
        "w.csv",
        True,
    )
    sql = parser.parse_args(["sql", "SELECT 1", "--lake", "L", "--json"])
    assert (sql.query, sql.lake, sql.json) == ("SELECT 1", "L", True)
    gen = parser.parse_args(["generate", "--out", "o", "--days", "2", "--scale", "0.5", "--seed", "7"])
    assert (str(gen.out), gen.days, gen.scale, gen.seed) == ("o", 2, 0.5, 7)
    assert parser.parse_args(["demo"]).command == "demo"


def test_format_summary_shows_files_lines_parsed_quarantined_seconds_and_problems():
    summary = {
        "run_id": "ingest-1", "lake": "/l", "files": 3, "files_already_ingested": 2,
        "files_unreadable": ["/s/x.jsonl (Permission denied)"],
        "files_skipped": 1, "files_with_read_errors": ["/s/c.gz (truncated_gzip)"], "lines": 10, "parsed": 7,
        "quarantined": 2, "blank": 1, "warnings": ["quarantine: share [warning] unexpected 2"], "seconds": 1.5,
    }  # fmt: skip
    text = format_summary(summary)
    assert text.splitlines()[0] == "ingest ingest-1: 3 files, 10 lines, 7 parsed, 2 quarantined, 1 blank, 1.5 s -> /l"
    for part in (
        "2 files already ingested",
        "unreadable, skipped: /s/x.jsonl",
        "/s/c.gz (truncated_gzip)",
        "1 files ignored",
        "warning: quarantine",
    ):
        assert part in text


def test_format_summary_of_a_run_without_new_files_says_so_in_its_first_line():
    summary = {
        "run_id": "ingest-2", "source": "/in", "lake": "/l", "files": 0, "files_already_ingested": 4,
        "files_unreadable": [], "files_skipped": 0, "files_with_read_errors": [], "lines": 0, "parsed": 0,
        "quarantined": 0, "blank": 0, "warnings": ["/w.csv:4: repeats a name"], "seconds": 0.3,
    }  # fmt: skip
    assert format_summary(summary).splitlines() == [
        "ingest ingest-2: no new files in /in, 0.3 s",
        "  4 files already ingested with the same content: skipped",
        "  warning: /w.csv:4: repeats a name",
    ]


def test_format_detect_summary_with_nothing_new_is_one_line_plus_warnings():
    summary = {"run_id": "detect-1", "mode": "incremental", "tables": {}, "dates": [], "seconds": 0.5, "lake": "/l"}
    assert format_detect_summary(summary) == "detect detect-1: nothing new to detect (incremental), 0.5 s"
    summary["warnings"] = ["/a.csv:2: expired before 2026-11-27, ignored"]
    assert format_detect_summary(summary).splitlines()[1] == "  warning: /a.csv:2: expired before 2026-11-27, ignored"


def test_cli_detect_on_a_lake_that_does_not_exist_is_one_line_before_any_flow_runs(cli_env, tmp_path, capsys):
    rc = main(["--config", str(cli_env), "detect", "--lake", str(tmp_path / "nowhere")])
    assert rc == 1
    assert capsys.readouterr().err.splitlines() == [
        f"enumwatch: no lake at {tmp_path / 'nowhere'} (run 'enumwatch ingest' first or pass --lake)"
    ]
    assert not (tmp_path / "alerts").exists()  # no failed flow run, so no page


def test_cli_sql_without_a_lake_exits_non_zero_with_one_line(cli_env, tmp_path, capsys):
    rc = main(["--config", str(cli_env), "sql", "SELECT 1", "--lake", str(tmp_path / "nowhere")])
    out, err = capsys.readouterr()
    assert rc != 0 and out == ""
    assert len(err.splitlines()) == 1 and str(tmp_path / "nowhere") in err


def _lake_with_requests(spark, root) -> None:
    lake = Lake(root)
    when = dt.datetime(2026, 11, 1, 10, tzinfo=UTC)
    base = {c: None for c in REQUESTS.names}
    rows = []
    for n, path in enumerate(["/api/v1/healthkit/me", "/健康"], start=1):
        rows.append(
            tuple(
                {**base, "event_time": when, "client_ip": "203.0.113.7", "path": path, "status": 200, "is_lookup": False,
                 "source_file": "/src/a.jsonl", "line_no": n, "ingest_run_id": "run-1", "event_date": when.date()}[c]
                for c in REQUESTS.names
            )
        )  # fmt: skip
    staging = lake.staging("run-1") / "requests"
    spark.createDataFrame(rows, REQUESTS.spark_schema()).write.partitionBy("event_date").parquet(str(staging))
    lake.publish("run-1", {"requests": lake.build_version("requests", "run-1", add=[staging])})


@pytest.mark.spark
def test_cli_sql_json_prints_only_a_json_array_of_row_objects(spark, cli_env, tmp_path, capsys):
    _lake_with_requests(spark, tmp_path / "lake")
    capsys.readouterr()
    rc = main(
        [
            "--config",
            str(cli_env),
            "sql",
            "SELECT count(*) AS n FROM requests",
            "--lake",
            str(tmp_path / "lake"),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert json.loads(out) == [{"n": 2}]

    rc = main([
        "--config", str(cli_env), "sql",
        "SELECT line_no, path, event_date, event_time, id_hash FROM requests ORDER BY line_no",
        "--lake", str(tmp_path / "lake"), "--json",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert json.loads(out) == [
        {
            "line_no": 1,
            "path": "/api/v1/healthkit/me",
            "event_date": "2026-11-01",
            "event_time": "2026-11-01T10:00:00",
            "id_hash": None,
        },
        {
            "line_no": 2,
            "path": "/健康",
            "event_date": "2026-11-01",
            "event_time": "2026-11-01T10:00:00",
            "id_hash": None,
        },
    ]


@pytest.mark.spark
def test_cli_sql_json_of_an_empty_result_is_an_empty_array(spark, cli_env, tmp_path, capsys):
    (tmp_path / "lake").mkdir()
    rc = main(["--config", str(cli_env), "sql", "SELECT * FROM quarantine", "--lake", str(tmp_path / "lake"), "--json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.flow
@pytest.mark.spark
def test_cli_ingest_prints_the_run_summary(prefect_harness, cli_env, tmp_path, capsys):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.jsonl").write_text(
        '{"ts":"2026-11-01T10:00:00Z","client_ip":"1.2.3.4","path":"/x","status":200}\n\n{broken\n'
    )
    rc = main(["--config", str(cli_env), "ingest", "--source", str(src), "--format", "jsonl"])
    out = capsys.readouterr().out
    assert rc == 0
    first = out.splitlines()[0]
    assert first.startswith("ingest ingest-")
    assert ": 1 files, 3 lines, 1 parsed, 1 quarantined, 1 blank, " in first
    assert first.endswith(f" s -> {tmp_path / 'lake'}")


def test_cli_whose_reader_left_early_ends_quietly_with_the_sigpipe_status(tmp_path):
    """`enumwatch status --json | head`: the reader went away; no traceback, the status a shell expects."""
    (tmp_path / "lake").mkdir()
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        done = subprocess.run(
            [str(VENV_BIN / "enumwatch"), "status", "--lake", str(tmp_path / "lake"), "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_flow_commands_send_heartbeats_only_to_a_real_prefect_server():
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    from cli.main import _heartbeats_only_for_a_server

    def frequency(command: str):
        with _heartbeats_only_for_a_server(command):
            return get_current_settings().flows.heartbeat_frequency

    default = 180  # Prefect's own (the test harness turns them off for the whole session)
    with temporary_settings(updates={PREFECT_API_URL: None, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: default}):
        assert frequency("run") is None  # the temporary server dies with the process: nobody reads them
        assert frequency("watch") is None
        assert frequency("flagged") == default  # no flow runs here: Prefect's settings untouched
        assert get_current_settings().flows.heartbeat_frequency == default  # back after the command
    server = {PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_FLOWS_HEARTBEAT_FREQUENCY: default}
    with temporary_settings(updates=server):
        assert frequency("run") == default  # a real server marks a run crashed when its heartbeats stop
