"""Runs nobody watches: an empty incoming directory is a quiet success, a human-edited list that is
merely untidy warns and goes on, and an error a person can fix is one line on stderr from the CLI,
with its traceback in a file, never Prefect's traceback above it.
"""

from __future__ import annotations

import re

import pytest
from conftest import TEST_KEY, write_config

import pipelines.ingest  # noqa: F401  Prefect sets up its log handlers now, not inside a test's capture
from cli.main import main
from core.watchlist import WatchlistError

pytestmark = pytest.mark.flow


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The key from the environment, error files under tmp, a config with its lake in tmp, an empty source."""
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("ENUMWATCH_LAKE", "SPARK_MASTER", "ENUMWATCH_CONFIG", "ENUMWATCH_KEY_FILE", "ENUMWATCH_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    source = tmp_path / "incoming"
    source.mkdir()
    return tmp_path, write_config(tmp_path / "cfg", tmp_path / "lake", fail=0.5), source


def _one_line(err: str) -> str:
    # Spark's progress bar redraws itself with carriage returns; on a terminal it leaves nothing behind.
    lines = [line for line in err.splitlines() if line.strip() and not re.match(r"\s*\[Stage \d+", line)]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_scheduled_ingest_and_detect_over_an_empty_incoming_dir_succeed_and_say_so(prefect_harness, env):
    from pipelines.detect import detect_flow
    from pipelines.ingest import ingest_flow

    tmp_path, config, source = env
    (source / "again").symlink_to(source, target_is_directory=True)  # a loop: must neither hang nor be silent
    (source / "gone.jsonl").symlink_to(tmp_path / "rotated-away.jsonl")
    ingested = ingest_flow(source=str(source), config=str(config))  # what ingest-incremental runs
    assert (ingested["files"], ingested["lines"]) == (0, 0)
    assert ingested["files_unreadable"] == [f"{source / 'gone.jsonl'} (broken symbolic link)"]
    assert [w for w in ingested["warnings"] if "walked once" in w] == [
        f"{source / 'again'} leads back to {source} (a symbolic link loop or a second link): walked once"
    ]
    detected = detect_flow(config=str(config))  # what detect-hourly runs: no requests table yet
    assert (detected["tables"], detected["dates"]) == ({}, [])


def test_cli_run_with_no_new_files_exits_zero_saying_so_plainly(prefect_harness, env, capsys):
    tmp_path, config, source = env
    assert main(["--config", str(config), "run", "--source", str(source), "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert f": no new files in {source}, " in out.splitlines()[0]
    assert ": nothing new to detect (incremental)" in out


def test_ingest_warns_about_a_repeated_watchlist_name_and_goes_on(prefect_harness, env):
    from pipelines.ingest import ingest_flow

    tmp_path, config, source = env
    watchlist = tmp_path / "watchlist.csv"
    watchlist.write_text("name\n王菲\n李娜\n王菲\n", encoding="utf-8")
    summary = ingest_flow(source=str(source), config=str(config), watchlist=str(watchlist))
    assert summary["warnings"] == [
        f"{watchlist}:4: repeats a name listed above (compared after NFKC and trimming); watched once"
    ]


def test_an_unusable_watchlist_stops_ingest_before_any_log_line_is_read(prefect_harness, env):
    from pipelines.ingest import ingest_flow

    tmp_path, config, source = env
    (source / "a.jsonl").write_text('{"ts":"2026-11-01T10:00:00Z","client_ip":"1.2.3.4","path":"/x","status":200}\n')
    watchlist = tmp_path / "watchlist.csv"
    watchlist.write_text("person\nx\n", encoding="utf-8")
    with pytest.raises(WatchlistError, match="needs the column"):
        ingest_flow(source=str(source), config=str(config), watchlist=str(watchlist))
    assert not (tmp_path / "lake").exists()  # nothing read, nothing written: the next run takes the file


def test_cli_unusable_watchlist_is_one_line_on_stderr_with_the_traceback_in_a_file(prefect_harness, env, capfd):
    tmp_path, config, source = env
    watchlist = tmp_path / "watchlist.csv"
    watchlist.write_text("person\nx\n", encoding="utf-8")
    argv = ["--config", str(config), "ingest", "--source", str(source), "--format", "jsonl"]
    assert main([*argv, "--watchlist", str(watchlist)]) == 1
    line = _one_line(capfd.readouterr().err)
    assert line.startswith(f"enumwatch: {watchlist}:1: watchlist needs the column(s) name in its header line")
    [kept] = (tmp_path / "cache" / "enumwatch" / "errors").glob("*-ingest.log")
    assert line.endswith(f" (traceback: {kept})")
    assert "Traceback (most recent call last)" in kept.read_text()


@pytest.mark.spark
def test_cli_changed_file_and_failed_gate_each_end_in_one_line_on_stderr(prefect_harness, env, capfd):
    tmp_path, config, source = env
    log = source / "a.jsonl"
    log.write_text('{"ts":"2026-11-01T10:00:00Z","client_ip":"1.2.3.4","path":"/x","status":200}\n')
    argv = ["--config", str(config), "ingest", "--format", "jsonl", "--source"]
    assert main([*argv, str(source)]) == 0
    capfd.readouterr()

    log.write_text(log.read_text() + '{"ts":"2026-11-01T10:00:01Z","client_ip":"1.2.3.4","path":"/y","status":200}\n')
    assert main([*argv, str(source)]) == 1
    line = _one_line(capfd.readouterr().err)
    assert line.startswith(
        f"enumwatch: refused: content changed since ingested (use --reingest to replace their rows): {log}"
    )

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "b.jsonl").write_text("{broken\nnot json\n")  # all quarantined: above the 50% fail share
    assert main([*argv, str(bad)]) == 1
    line = _one_line(capfd.readouterr().err)
    assert line.startswith("enumwatch: ingest not published; critical expectations failed: quarantine: ")
    assert "(traceback: " in line
