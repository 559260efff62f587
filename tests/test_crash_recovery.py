"""Crash anywhere, recover exactly: real `enumwatch` runs killed with SIGKILL of their whole process tree.

One lake goes through a chain of runs, each killed at another point (while Spark reads the source,
while it writes staging, mid-publish, between detection's tables, between a detection publish and its
alerts, between a webhook's answer and the outbox update); the next run recovers what the previous
one left. A named point is armed through ENUMWATCH_FAULT (core/faults); the points inside Spark's
work are hit by watching the staging directory and killing the process group from here. After every
kill each published table stays readable by DuckDB, Spark and pyarrow, and at the end the tables equal
those of a clean run over the same files, with no (source_file, line_no) twice and every alert
delivered, at most once more than needed (the documented at-least-once window).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from background import VENV_BIN
from conftest import TEST_KEY, flow_env, write_config
from test_webhook import webhook_server

from core.idnumber import make_id
from core.lake import Lake
from core.versions import depth
from pipelines.detect import detect_flow
from pipelines.ingest import ingest_flow

pytestmark = [pytest.mark.flow, pytest.mark.spark, pytest.mark.slow]

LOOKUP = "/api/v1/healthkit/lookup"
RUN_COLUMNS = {"ingest_run_id", "ingested_at", "ingest_date", "detect_run_id", "detected_at", "detect_date"}
COMPARED = ("requests", "quarantine", "ingest_manifest", "lookups", "entity_windows", "flagged_clients")
RUN_LIMIT_S = 420
WAITING = "for the lake lock, held by run ingest-overlap"  # what a run says while the other writer holds it


def _line(ts: str, client: str, path: str, status: int = 200) -> str:
    return json.dumps({"ts": ts, "client_ip": "198.51.100.7", "client_id": client, "path": path, "status": status})


def write_source(folder: Path) -> Path:
    """Two days of traffic: a client enumerating 60 ID numbers in one hour (flagged), ordinary clients, bad lines."""
    folder.mkdir(parents=True)
    scan = [
        _line(f"2026-11-01T10:{i:02d}:00Z", "scraper-1", f"{LOOKUP}?id={make_id('110105', _birth(i), i)}")
        for i in range(60)
    ]
    calm = [
        _line(f"2026-11-01T1{h}:00:00Z", "alice", f"{LOOKUP}?id={make_id('310101', _birth(h), 7)}") for h in range(3)
    ]
    (folder / "day1.jsonl").write_text("\n".join(scan + calm) + "\n")
    day2 = [_line(f"2026-11-02T0{h}:15:00Z", "bob", "/api/v1/healthkit/me") for h in range(5)]
    (folder / "day2.jsonl").write_text("\n".join(day2 + ["{not json", "[1, 2]"]) + "\n")
    return folder


def _birth(i: int):
    from datetime import date, timedelta

    return date(1980, 1, 1) + timedelta(days=37 * i)


def table_rows(lake: Path, table: str) -> list[tuple]:
    """A table's rows without the columns that name a run or its time, sorted: comparable across lakes."""
    if not (lake / table).is_symlink():
        return []
    data = ds.dataset(lake / table, format="parquet", partitioning="hive").to_table()
    keep = [c for c in data.column_names if c not in RUN_COLUMNS and c != "evidence"]
    return sorted(tuple(repr(v) for v in row.values()) for row in data.select(keep).to_pylist())


def readable_everywhere(spark, lake: Path) -> dict[str, int]:
    """Row count of every published table, read by DuckDB, Spark and pyarrow alike (each must agree)."""
    counts = {}
    for link in sorted(p for p in lake.iterdir() if p.is_symlink() and not p.name.startswith(".")):
        arrow = ds.dataset(link, format="parquet", partitioning="hive").count_rows()
        by_spark = spark.read.parquet(str(link)).count() if arrow else 0
        glob = f"{link}/{'*/' * depth(link.name)}*.parquet"
        by_duck = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0] if arrow else 0
        assert arrow == by_spark == by_duck, (link.name, arrow, by_spark, by_duck)
        counts[link.name] = arrow
    return counts


class Runner:
    """Runs `enumwatch` commands in their own process group against one lake, killing them on cue."""

    def __init__(self, config: Path, lake: Path, api_url: str, log: Path):
        self.config, self.lake, self.log = config, lake, log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ENUMWATCH_")}
        self.env.update(ENUMWATCH_PSEUDONYM_KEY=TEST_KEY, PREFECT_API_URL=api_url, SPARK_LOCAL_IP="127.0.0.1")

    def __call__(self, *args: str, fault: str | None = None, kill_when=None, overlap: bool = False) -> int:
        """Run one command; `fault` arms a named point, `kill_when(lake)` triggers a kill -9 of the group from here.

        `overlap`: another writer (run id ingest-overlap) holds the lake lock as the command starts, until the
        command says that it waits for it (no fixed sleep that a slow start-up could outlast).
        """
        env = dict(self.env, **({"ENUMWATCH_FAULT": fault} if fault else {}))
        held = threading.Event()
        if overlap:
            log_from = self.log.stat().st_size if self.log.exists() else 0
            threading.Thread(target=self._hold, args=(log_from, held), daemon=True).start()
            held.wait(10)
        with self.log.open("ab") as out:
            out.write(f"\n=== enumwatch {' '.join(args)} (fault {fault}) ===\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [str(VENV_BIN / "enumwatch"), "--config", str(self.config), *args],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + RUN_LIMIT_S
            killed = False
            while proc.poll() is None:
                if time.monotonic() > deadline or (kill_when is not None and kill_when(self.lake)):
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.05)
            code = proc.wait(timeout=60)
        if killed or code == -signal.SIGKILL:
            _gone(proc.pid)
        return code

    def _hold(self, log_from: int, held: threading.Event) -> None:
        deadline = time.monotonic() + RUN_LIMIT_S
        with Lake(self.lake).lock(run_id="ingest-overlap"):
            held.set()
            while WAITING.encode() not in self.log.read_bytes()[log_from:] and time.monotonic() < deadline:
                time.sleep(0.1)


def _gone(group: int) -> None:
    """Nothing of a killed run's process tree survives it (no stray JVM or server holding files)."""
    for _ in range(100):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process group {group} outlived its kill -9")


def _spark_writing(files: bool):
    """A trigger: Spark's staging write job has begun (its first stage is reading the source), or its
    tasks are writing Parquet files not yet committed. Spark sets up `.spark-staging-*` (dynamic
    partition overwrite) or `_temporary` when the job starts, and its tasks write into it."""

    def check(lake: Path) -> bool:
        for folder, _dirs, names in os.walk(lake / "_staging"):
            uncommitted = ".spark-staging" in folder or "_temporary" in folder
            if uncommitted and (not files or any(n.startswith("part-") for n in names)):
                return True
        return False

    return check


@pytest.fixture(scope="module")
def crashes(prefect_harness, spark, tmp_path_factory):
    """A clean reference lake, and a lake built by a chain of killed runs; what each kill left behind."""
    from prefect.settings import PREFECT_API_URL

    root = tmp_path_factory.mktemp("crash")
    source = write_source(root / "src")
    ref = root / "ref-lake"
    ref_config = write_config(root / "ref", ref)
    with flow_env():
        ingest_flow(source=str(source), fmt="jsonl", config=str(ref_config))
        detect_flow(config=str(ref_config))

    lake = root / "lake"
    seen: dict[str, dict] = {}
    with webhook_server() as hook:
        config = write_config(root / "crash", lake)
        with config.open("a") as fh:
            fh.write(f'webhook_url = "{hook.url}"\nwebhook_format = "json"\nbackoff_seconds = 0.01\n')
        run = Runner(config, lake, PREFECT_API_URL.value(), root / "runs.log")
        ingest = ("ingest", "--source", str(source), "--format", "jsonl")

        def note(step: str, code: int) -> None:
            links = {p.name: os.readlink(p) for p in lake.iterdir() if p.is_symlink()} if lake.exists() else {}
            seen[step] = {"code": code, "links": links, "journal": (lake / "_journal.json").exists(),
                          "staging": sorted(p.name for p in (lake / "_staging").glob("*")) if lake.exists() else [],
                          "counts": readable_everywhere(spark, lake) if lake.exists() else {}}  # fmt: skip

        note("reading", run(*ingest, kill_when=_spark_writing(files=False)))
        note("writing staging", run(*ingest, kill_when=_spark_writing(files=True)))
        note("publish", run(*ingest, fault="publish.swapped.requests"))
        note("ingest recovery", run(*ingest))
        seen["after ingest"] = {t: table_rows(lake, t) for t in ("requests", "quarantine", "ingest_manifest")}
        extra = root / "later"
        extra.mkdir()
        (extra / "day3.jsonl").write_text(_line("2026-11-03T01:00:00Z", "carol", "/api/v1/healthkit/me") + "\n")
        note("staged, not published", run("ingest", "--source", str(extra), "--format", "jsonl", fault="ingest.staged"))
        note("between detection tables", run("detect", fault="publish.swapped.lookups"))
        note("before alerts", run("detect", fault="detect.published"))
        hook.status = 500  # the webhook is down: the alerts stay owed
        log_from = (root / "runs.log").stat().st_size
        note("detect recovery", run("detect", overlap=True))
        seen["overlap log"] = (root / "runs.log").read_bytes()[log_from:].decode("utf-8", errors="replace")
        seen["owed"] = [a["alert_id"] for a in _outbox(lake) if a["status"] != "delivered"]
        hook.status = 200
        note("sent, not marked", run("deliver", fault="alerts.sent"))
        note("deliver recovery", run("deliver"))
        received = [body for status, body in hook.received if status == 200]
    seen["received"] = Counter(a["alert_id"] for body in received for a in body.get("alerts", []))
    return ref, lake, seen, root / "runs.log"


def _outbox(lake: Path) -> list[dict]:
    return ds.dataset(lake / "alerts", format="parquet").to_table().to_pylist() if (lake / "alerts").exists() else []


def test_a_run_killed_while_reading_or_writing_staging_publishes_nothing(crashes):
    _, _, seen, log = crashes
    for step in ("reading", "writing staging"):
        assert seen[step]["code"] == -signal.SIGKILL, log.read_text()[-3000:]
        assert seen[step]["links"] == {} and not seen[step]["journal"]
    assert len(seen["writing staging"]["staging"]) == 1  # the first crash's staging was removed by the second run


def test_a_run_killed_mid_publish_leaves_readable_tables_and_the_next_run_rolls_it_forward(crashes):
    ref, lake, seen, _ = crashes
    cut = seen["publish"]
    assert cut["code"] == -signal.SIGKILL and cut["journal"]
    assert {"requests", "ingest_manifest"} <= set(cut["links"]) and "quarantine" not in cut["links"]
    assert cut["counts"]["requests"] == 68  # read alike by DuckDB, Spark and pyarrow
    assert seen["ingest recovery"]["code"] == 0 and not seen["ingest recovery"]["journal"]
    for table in ("requests", "quarantine", "ingest_manifest"):
        assert seen["after ingest"][table] == table_rows(ref, table), table


def test_a_run_killed_after_staging_leaves_the_published_tables_as_they_were(crashes):
    _, _, seen, _ = crashes
    assert seen["staged, not published"]["code"] == -signal.SIGKILL
    assert seen["staged, not published"]["links"] == seen["ingest recovery"]["links"]
    assert seen["staged, not published"]["counts"] == seen["ingest recovery"]["counts"]


def test_detection_killed_between_its_tables_and_before_its_alerts_ends_equal_to_a_clean_run(crashes):
    ref, lake, seen, _ = crashes
    between = seen["between detection tables"]
    assert between["code"] == -signal.SIGKILL and between["journal"] and "lookups" in between["links"]
    assert "flagged_clients" not in between["links"]  # swapped after lookups: not yet, but readable as it is
    assert seen["before alerts"]["code"] == -signal.SIGKILL and "alerts" not in seen["before alerts"]["links"]
    assert seen["detect recovery"]["code"] == 0
    for table in COMPARED:
        assert table_rows(lake, table) == table_rows(ref, table), table
    requests = ds.dataset(lake / "requests", partitioning="hive").to_table(["source_file", "line_no"]).to_pylist()
    assert len({(r["source_file"], r["line_no"]) for r in requests}) == len(requests) == 68


def test_every_alert_is_raised_once_and_delivered_at_least_once_and_at_most_twice(crashes):
    ref, lake, seen, _ = crashes
    alerts = _outbox(lake)
    flags = ds.dataset(ref / "flagged_clients", partitioning="hive").to_table().to_pylist()
    flagged = {(r["entity_type"], r["entity_value"]) for r in flags if not r["shadow"]}
    assert flagged and {(a["entity_type"], a["entity_value"]) for a in alerts} == flagged  # none lost, none twice
    assert sorted(seen["owed"]) == sorted(a["alert_id"] for a in alerts)
    assert all(a["status"] == "delivered" for a in alerts)
    assert seen["sent, not marked"]["code"] == -signal.SIGKILL
    assert seen["received"] == {a["alert_id"]: 2 for a in alerts}  # the one documented resend: sent, killed, resent


def test_after_the_chain_of_crashes_no_staging_journal_orphan_version_or_part_is_left(crashes):
    _, lake, _, _ = crashes
    store = Lake(lake)
    assert not (lake / "_staging").exists() and not (lake / "_journal.json").exists()
    assert store.collect_garbage() == []  # the runs already cleaned what the crashes left
    for table in (p.name for p in (lake / ".tables").iterdir()):
        assert len(list((lake / ".tables" / table).iterdir())) <= store.keep_versions + 1


def test_a_run_that_meets_another_writer_waits_says_for_whom_and_raises_no_failure_alert(crashes):
    _, lake, seen, _ = crashes
    assert seen["detect recovery"]["code"] == 0
    assert f"waiting up to 1800 s {WAITING}" in seen["overlap log"]
    assert not list((lake.parent / "crash" / "alerts-out").glob("failure-*"))  # no run paged on-call
