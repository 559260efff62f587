"""Shared fixtures: one SparkSession for the whole test session, settings pointing at tmp dirs."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import Settings, load_settings
from jobs import class_archive

TEST_KEY = "test-pseudonym-key-0123456789abcdef"
# Real-world input kept in the repository (gzip; source and licence in tests/data/README.md).
TEST_DATA = Path(__file__).resolve().parent / "data"
APACHE_SAMPLE = TEST_DATA / "apache_combined_2015-05.log.gz"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Every JVM the tests start through spark-submit (this session's, each `enumwatch` subprocess's, Prefect flow
# runs') runs many short Spark jobs on tiny frames: most of its CPU went to the C2 compiler and
# G1's threads. The client compiler alone and the serial collector: one CLI ingest 56 -> 38 CPU-seconds at
# half the resident memory, tests/test_incremental.py 326 -> 255. Adaptive query execution off: on frames of a
# few rows its re-planning only adds Spark jobs (a tiny detect 172 -> 77 jobs); tests/test_detect_flow.py
# 150 -> 142 s wall, 2 pairs. No generated code (whole-stage off, expressions interpreted): each new plan
# otherwise compiles Java source (Janino) that then runs on a few rows; ingest + 3 detects of a small lake
# in one process 110.3 -> 96.7 s wall (3 pairs, A/B 0.885). Test-only tuning: plans differ, results do not.
# They map the class archive (jobs/class_archive.py, which `make test` builds) as get_spark's JVMs do: this
# session's is not get_spark's.
TEST_JVM_OPTS = " ".join(
    [
        "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dspark.sql.adaptive.enabled=false",
        "-Dspark.sql.codegen.wholeStage=false -Dspark.sql.codegen.factoryMode=NO_CODEGEN",
        class_archive.java_options(),
    ]
).strip()
if TEST_JVM_OPTS not in os.environ.get("SPARK_SUBMIT_OPTS", ""):
    os.environ["SPARK_SUBMIT_OPTS"] = f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} {TEST_JVM_OPTS}".strip()


@pytest.fixture(scope="session")
def spark():
    """The one local SparkSession: local[1], one shuffle partition, UI off."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", __import__("sys").executable)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("enumwatch-tests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.default.parallelism", "1")
        .config("spark.python.sql.dataFrameDebugging.enabled", "false")  # as get_spark: no call-site round trips
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session", autouse=True)
def error_files_in_tmp(tmp_path_factory):
    """The CLI's error files (cli/errorlog.py) go under tmp, never into the home directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the lake in tmp, a fixed test key and local[1] Spark."""
    env = {"ENUMWATCH_PSEUDONYM_KEY": TEST_KEY, "ENUMWATCH_LAKE": str(tmp_path / "lake"), "SPARK_MASTER": "local[1]"}
    return load_settings(env=env).with_overrides(shuffle_partitions=1, key_file=tmp_path / "unused.key")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API (temporary local server with its own database) for flow tests.

    Flow-run heartbeats off, as `enumwatch` has them under a temporary server (cli/main.py): nothing
    reads them, and each flow run would wait up to a second for their thread at its end.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@contextmanager
def flow_env():
    """The key from the environment (never a key file in the home dir); nothing else leaks in from outside."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
        for name in (
            "ENUMWATCH_LAKE",
            "SPARK_MASTER",
            "ENUMWATCH_CONFIG",
            "ENUMWATCH_KEY_FILE",
            "ENUMWATCH_WEBHOOK_URL",
        ):
            mp.delenv(name, raising=False)
        yield mp


def write_config(folder: Path, lake: Path, *, warn: float = 0.01, fail: float = 1.0) -> Path:
    """A small TOML config: lake in tmp, one local core, key file in tmp, quarantine thresholds."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "enumwatch.toml"
    path.write_text(
        f'[lake]\npath = "{lake}"\n'
        '[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n'
        f'[pseudonym]\nkey_file = "{folder / "pseudonym.key"}"\n'
        f"[ingest]\nquarantine_warn_share = {warn}\nquarantine_fail_share = {fail}\n"
        f'[alerts]\nout_dir = "{folder / "alerts-out"}"\n'
    )
    return path


# Modules whose one shared setup takes minutes (real CLI runs, servers, end-to-end flows), longest first.
LONGEST_FIRST = (
    "test_crash_recovery.py",
    "test_deployments.py",
    "test_incremental.py",
    "test_cluster.py",
    "test_quality_bar.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long modules first, pure-Python ones last: `make test` hands whole modules to xdist workers in this
    order (--dist loadfile --no-loadscope-reorder), so a long module never starts near the end while the
    other workers have run dry, and the many short modules fill the gaps."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        if name in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(name))
        marks = {mark.name for mark in item.iter_markers()}
        return (1 if "slow" in marks else 2 if marks & {"spark", "flow"} else 3, 0)

    module_rank: dict[Path, tuple[int, int]] = {}
    for item in items:
        module_rank[item.path] = min(module_rank.get(item.path, (9, 0)), rank(item))
    items.sort(key=lambda item: module_rank[item.path])  # stable: the order inside a module is kept
