"""SQL for analysts: the `enumwatch sql` prompt, the Thrift JDBC server with the wheel's beeline, and DuckDB over the same Parquet."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import analyst_lake as tiny
import pyspark
import pytest

from analyst.sqlserver import view_sql
from cli.main import main

BEELINE = Path(pyspark.__file__).parent / "bin" / "beeline"


@pytest.fixture
def lake(tmp_path, monkeypatch):
    for name in ("ENUMWATCH_LAKE", "ENUMWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    lake = tiny.build(tmp_path)
    tiny.publish(lake, {"requests": tiny.requests(3)})
    return lake


def write_config(lake) -> str:
    path = lake.root.parent / "enumwatch.toml"
    path.write_text(f'[lake]\npath = "{lake.root}"\n[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n')
    return str(path)


class Typist(io.StringIO):
    """Standard input that runs `between(n)` before handing out line n (0-based), as if typed later."""

    def __init__(self, lines: list[str], between=lambda n: None):
        super().__init__()
        self.lines, self.between, self.n = lines, between, 0

    def readline(self, *_):
        if self.n >= len(self.lines):
            return ""
        self.between(self.n)
        self.n += 1
        return self.lines[self.n - 1] + "\n"

    def isatty(self):
        return False


@pytest.mark.spark
def test_sql_prompt_runs_statements_prints_errors_and_goes_on_until_exit(spark, lake, capsys, monkeypatch):
    monkeypatch.setattr(
        "sys.stdin",
        Typist(
            [
                "SELECT count(*) AS n FROM requests;",
                "SELECT no_such_column FROM requests;",
                "SELECT entity_type, count(*) AS n",  # a statement over two lines, ended by a blank line
                "FROM flagged_clients WHERE detect_run_id = 'detect-20261102T000000Z-bbbbbb' GROUP BY entity_type ORDER BY n DESC, entity_type",
                "",
                "exit",
                "SELECT 'after exit' AS never;",
            ]
        ),
    )
    assert main(["--config", write_config(lake), "sql"]) == 0
    out, err = capsys.readouterr()
    assert "|n  |\n+---+\n|3  |" in out
    assert "error: [UNRESOLVED_COLUMN" in err and "no_such_column" in err and "Traceback" not in err
    assert "|client_id  |4  |" in out and "|client_ip  |2  |" in out and "|campaign   |1  |" in out
    assert "after exit" not in out


@pytest.mark.spark
def test_sql_prompt_sees_a_version_published_while_it_is_open(spark, lake, capsys, monkeypatch):
    def publish_more(n):
        if n == 1:
            tiny.publish(lake, {"requests": tiny.requests(5)})

    query = "SELECT count(*) AS n FROM requests;"
    monkeypatch.setattr("sys.stdin", Typist([query, query], publish_more))
    assert main(["--config", write_config(lake), "sql"]) == 0
    out = capsys.readouterr().out
    assert out.index("|3  |") < out.index("|5  |")


def test_view_sql_reads_the_version_directory_or_declares_an_empty_typed_view(lake):
    version = lake.current("flagged_clients")
    assert view_sql("flagged_clients", version).startswith(
        "CREATE OR REPLACE VIEW `flagged_clients` COMMENT 'One row per flagged"
    )
    assert f"AS SELECT * FROM parquet.`{version}`" in view_sql("flagged_clients", version)
    empty = view_sql("alerts", None)
    assert "CAST(NULL AS string) AS `alert_id`" in empty and empty.endswith(" WHERE false")


def test_duckdb_reads_the_same_parquet_tables_as_documented(lake, monkeypatch):
    duckdb = pytest.importorskip("duckdb")
    monkeypatch.chdir(lake.root.parent)  # the docs' queries use paths relative to where the lake is
    rows = duckdb.sql(
        "SELECT detect_run_id, entity_type, count(*) AS n "
        "FROM read_parquet('lake/flagged_clients/*/*.parquet', hive_partitioning=true) "
        "WHERE NOT shadow GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [
        (tiny.OLD_RUN, "client_id", 2),
        (tiny.RUN, "campaign", 1),
        (tiny.RUN, "client_id", 3),
        (tiny.RUN, "client_ip", 2),
        (tiny.RUN, "device_id", 1),
    ]
    dates = duckdb.sql(
        "SELECT DISTINCT event_date FROM read_parquet('lake/requests/*/*.parquet', hive_partitioning=true) ORDER BY 1"
    ).fetchall()
    assert [str(d) for (d,) in dates] == ["2026-11-01", "2026-11-02", "2026-11-03"]  # the partition column


# --- the JDBC server ---------------------------------------------------------------------------
START_TIMEOUT_S = 420  # Derby creates its metastore schema on first start: slow on a busy 2-core box
QUERY_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`enumwatch serve-sql` as a child process in its own session, its stdout lines collected."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        tail = "\n".join(self.lines[-40:])
        pytest.fail(f"serve-sql never printed {text!r} (exit {self.proc.poll()}):\n{tail}")

    def stop(self) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL to the whole group whatever happened: no JVM outlives the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        return self.proc.returncode


def beeline(url: str, query: str) -> list[str]:
    done = subprocess.run(
        [str(BEELINE), "-u", url, "--silent=true", "--outputformat=csv2", "-e", query],
        capture_output=True,
        text=True,
        timeout=QUERY_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [re.sub(r"^\d+: jdbc:\S*> ", "", line) for line in done.stdout.splitlines()]  # its prompt, without a tty
    return [line for line in lines if line and not line.startswith("WARNING")]


@pytest.fixture
def sql_server(lake, tmp_path):
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp_path), SPARK_LOCAL_IP="127.0.0.1", PYTHONPATH=str(Path(__file__).parents[1]))
    server = Server(
        ["--config", write_config(lake), "serve-sql", "--port", str(port), "--lake", str(lake.root), "--poll", "0.5"],
        env,
    )
    server.port = port
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.spark
def test_serve_sql_answers_beeline_on_loopback_and_follows_new_versions(sql_server, lake, tmp_path):
    sql_server.wait_for("serving", START_TIMEOUT_S)
    url = f"jdbc:hive2://127.0.0.1:{sql_server.port}/default"
    assert any(url in line for line in sql_server.lines)
    assert beeline(url, "SELECT count(*) AS n FROM requests") == ["n", "3"]

    tiny.publish(lake, {"requests": tiny.requests(5)})
    sql_server.wait_for("new versions now served: requests", 60)
    assert beeline(url, "SELECT count(*) AS n FROM requests; SHOW TABLES")[:2] == ["n", "5"]

    listening = subprocess.run(["ss", "-ltnH", f"sport = :{sql_server.port}"], capture_output=True, text=True)
    if listening.returncode == 0:  # only on loopback unless told otherwise
        local = [line.split()[3] for line in listening.stdout.splitlines()]
        assert local and all("127.0.0.1" in address for address in local), local
    assert sql_server.stop() == 0
    assert not list(tmp_path.glob("enumwatch-sql-*"))  # the temporary metastore is gone
