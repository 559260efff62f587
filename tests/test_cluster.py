"""A Spark standalone cluster from the pyspark wheel (`spark-class`, loopback only) gives exactly the local flags.

The test process already holds a local SparkSession (conftest), and `getOrCreate` would hand it back
whatever the master, so both sides run as `enumwatch run` subprocesses: one with
SPARK_MASTER=spark://127.0.0.1:<port>, one with SPARK_MASTER=local[1], same data, same key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from background import VENV_BIN, Background, free_port, get_json, wait_for
from conftest import TEST_JVM_OPTS, TEST_KEY

RUNS_BUDGET_S = 600  # both `enumwatch run`s, side by side; generous because CI machines are shared


@pytest.fixture
def spark_cluster(tmp_path):
    """A standalone master and one worker (1 core, 1 GiB) on 127.0.0.1; yields (master URL, master UI URL)."""
    import pyspark

    spark_home = Path(pyspark.__file__).resolve().parent
    spark_class = str(spark_home / "bin" / "spark-class")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        # The master, the worker and the executors it starts (which inherit its environment) get the tests'
        # JVM tuning too (conftest); only JVMs started through spark-submit read SPARK_SUBMIT_OPTS.
        "JAVA_TOOL_OPTIONS": TEST_JVM_OPTS,
    }
    url, ui_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}"
    master = Background(
        "spark-master",
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--webui-port",
            ui,
        ],
        env=env,
        log_dir=tmp_path,
    )
    worker = None
    try:
        worker = Background(
            "spark-worker",
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                worker_ui,
                "--work-dir",
                str(tmp_path / "spark-work"),
            ],
            env=env,
            log_dir=tmp_path,
        )
        wait_for(
            lambda: get_json(f"{ui_url}/json/")["aliveworkers"] >= 1,
            timeout=120,
            what="the Spark worker to register with the master",
            watch=[master, worker],
        )
        yield url, ui_url
    finally:
        if worker is not None:
            worker.stop()
        master.stop()


def _run_env(tmp: Path, name: str, master: str, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ENUMWATCH_")) and k != "SPARK_MASTER"}
    env.update(
        SPARK_MASTER=master,
        SPARK_LOCAL_IP="127.0.0.1",  # the driver must be reachable by the executors, on loopback
        PYSPARK_PYTHON=sys.executable,
        ENUMWATCH_PSEUDONYM_KEY=TEST_KEY,
        ENUMWATCH_KEY_FILE=str(tmp / "unused.key"),
        PREFECT_HOME=str(tmp / f"prefect-{name}"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # The session's test server: a temporary server per run cost each run about 10 CPU-seconds more.
        PREFECT_API_URL=api_url,
        GX_ANALYTICS_ENABLED="false",
    )
    return env


def _ingest_counts(log: str) -> tuple[int, ...]:
    found = re.search(r"(\d+) files, (\d+) lines, (\d+) parsed, (\d+) quarantined, (\d+) blank", log)
    assert found, log[-3000:]
    return tuple(int(n) for n in found.groups())


def _flags(lake: Path) -> list[tuple]:
    table = ds.dataset(lake / "flagged_clients", format="parquet", partitioning="hive").to_table()
    return sorted(
        (r["entity_type"], r["entity_value"], r["severity"], r["score"], tuple(sorted(r["rules"])))
        for r in table.to_pylist()
        if not r["shadow"]
    )


@pytest.mark.slow
@pytest.mark.spark
def test_standalone_cluster_run_flags_exactly_what_local_mode_flags(spark_cluster, prefect_harness, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from generator.generate import generate

    master_url, master_ui = spark_cluster
    src = tmp_path / "src"
    generate(src, days=2, scale=0.05)
    config = tmp_path / "enumwatch.toml"
    config.write_text(
        f'[spark]\nshuffle_partitions = 2\ndriver_memory = "1g"\n[alerts]\nout_dir = "{tmp_path / "alerts-out"}"\n'
    )
    runs: dict[str, Background] = {}
    for name, master in (("cluster", master_url), ("local", "local[1]")):
        argv = [
            str(VENV_BIN / "enumwatch"), "--config", str(config), "run",
            "--source", str(src / "logs"), "--format", "jsonl", "--lake", str(tmp_path / f"lake-{name}"),
            "--watchlist", str(src / "watchlist.csv"), "--allowlist", str(src / "allowlist.csv"),
        ]  # fmt: skip
        runs[name] = Background(
            f"enumwatch-{name}",
            argv,
            env=_run_env(tmp_path, name, master, PREFECT_API_URL.value()),
            log_dir=tmp_path,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + RUNS_BUDGET_S
        for name, bg in runs.items():
            try:
                code = bg.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"enumwatch run ({name}) still running after {RUNS_BUDGET_S} s:\n{bg.tail()}")
            assert code == 0, f"enumwatch run ({name}) exited {code}:\n{bg.tail()}"
        logs = {name: bg.tail(1_000_000) for name, bg in runs.items()}
    finally:
        for bg in runs.values():
            bg.stop()

    state = get_json(f"{master_ui}/json/")
    apps = [app for app in state["completedapps"] + state["activeapps"] if app["name"] == "enumwatch"]
    assert apps and apps[0]["cores"] >= 1, "the cluster run never reached the standalone master"
    assert _ingest_counts(logs["cluster"]) == _ingest_counts(logs["local"])
    cluster, local = _flags(tmp_path / "lake-cluster"), _flags(tmp_path / "lake-local")
    assert len(local) >= 10 and any(severity in ("high", "critical") for _, _, severity, _, _ in local)
    assert cluster == local
