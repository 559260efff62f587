"""`enumwatch watch`: one process runs ingest + detect at once, then whenever the source changes.

The loop's timing is checked with a scripted state and clock; the command itself runs for real: an
`enumwatch watch` process against a Prefect API, fed files and a broken watchlist while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pyarrow.dataset as ds
import pytest
from background import VENV_BIN
from conftest import TEST_KEY, write_config

from cli.watch import source_state, watch
from core.idnumber import make_id


def scripted(states: list[str], clock_values: list[float] | None = None):
    """A state() and a clock() that return the given values in turn (the last one for ever)."""
    states, clocks = list(states), list(clock_values or [0.0])

    def state() -> str:
        return states.pop(0) if len(states) > 1 else states[0]

    def clock() -> float:
        return clocks.pop(0) if len(clocks) > 1 else clocks[0]

    return state, clock


def test_watch_runs_at_once_then_only_when_the_source_changes():
    ran: list[int] = []
    state, clock = scripted(["a", "a", "a", "b", "b", "c"])
    done = watch(ran.append, state, threading.Event(), poll=0, every=300, runs=3, clock=clock)
    assert done == 3 and ran == [1, 2, 3]


def test_watch_runs_again_after_every_seconds_without_a_change():
    ran: list[int] = []
    # clock reads per check: the first run's due time, then "not yet" (299 s), then "due" (300 s)
    state, clock = scripted(["a"], [0.0, 0.0, 299.0, 300.0, 300.0])
    assert watch(ran.append, state, threading.Event(), poll=0, every=300, runs=2, clock=clock) == 2


def test_watch_stops_after_the_run_under_way_when_told_to_stop():
    stop = threading.Event()
    ran: list[int] = []

    def run_once(n: int) -> None:
        ran.append(n)
        stop.set()  # SIGTERM arrives during the first run

    state, clock = scripted(["a", "b", "c"])
    assert watch(run_once, state, stop, poll=0, every=300, clock=clock) == 1
    assert ran == [1]


def test_source_state_changes_when_a_file_lands_or_grows_and_not_for_the_lake_inside(tmp_path):
    source, lake = tmp_path / "in", tmp_path / "in" / "lake"
    (lake / "requests").mkdir(parents=True)
    (source / "a.jsonl").write_text("{}\n")
    before = source_state(source, "jsonl", lake)
    (lake / "requests" / "x.jsonl").write_text("{}\n")
    (source / "notes.txt").write_text("not a log\n")
    assert source_state(source, "jsonl", lake) == before
    (source / "b.jsonl").write_text("{}\n")
    landed = source_state(source, "jsonl", lake)
    with (source / "a.jsonl").open("a") as fh:
        fh.write("{}\n")
    grown = source_state(source, "jsonl", lake)
    assert len({before, landed, grown}) == 3


def _lines(client: str) -> str:
    lookups = [f"/api/v1/healthkit/lookup?id={make_id('110105', _birth(i), i)}" for i in range(3)]
    rows = [{"ts": f"2026-11-01T10:0{i}:00Z", "client_ip": "198.51.100.7", "client_id": client, "path": p}
            for i, p in enumerate(lookups)]  # fmt: skip
    return "".join(json.dumps(dict(r, status=200)) + "\n" for r in rows)


def _birth(i: int):
    from datetime import date

    return date(1980, 1, 1 + i)


@pytest.mark.flow
@pytest.mark.spark
def test_watch_reports_a_failed_run_goes_on_and_ingests_what_landed_in_one_process(prefect_harness, tmp_path):
    from prefect.settings import PREFECT_API_URL

    source, lake, watchlist = tmp_path / "incoming", tmp_path / "lake", tmp_path / "watchlist.csv"
    source.mkdir()
    watchlist.write_text("name\n张三\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENUMWATCH_")}
    env.update(ENUMWATCH_PSEUDONYM_KEY=TEST_KEY, PREFECT_API_URL=PREFECT_API_URL.value(), SPARK_LOCAL_IP="127.0.0.1")
    config = write_config(tmp_path / "cfg", lake)
    cmd = [str(VENV_BIN / "enumwatch"), "--config", str(config), "watch", "--source", str(source), "--format", "jsonl",
           "--watchlist", str(watchlist), "--poll", "0.2", "--every", "1", "--runs", "3"]  # fmt: skip
    said: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            said.append(line)
            if line.startswith("watch: run 1 done"):  # an empty source: nothing to do
                watchlist.rename(watchlist.with_suffix(".away"))
                (source / "a.jsonl").write_text(_lines("scraper-1"), encoding="utf-8")
            elif line.startswith("enumwatch watch: run 2 failed"):
                watchlist.with_suffix(".away").rename(watchlist)
        code = proc.wait(timeout=60)
    text = "".join(said)
    assert code == 0, text
    assert "no new files" in text
    assert "run 2 failed: " in text and str(watchlist) in text.split("run 2 failed: ")[1].splitlines()[0]
    assert "watch: run 3 done" in text and "watch: stopped after 3 runs" in text
    requests = ds.dataset(lake / "requests", format="parquet", partitioning="hive").to_table()
    assert requests.num_rows == 3
    assert "张三" not in text  # the watchlist name never reaches the console
