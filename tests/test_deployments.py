"""prefect.yaml for real: a Prefect server on 127.0.0.1, `prefect deploy --all`, a process worker, two flow runs.

The server runs with its scheduler off, so deploying creates no scheduled runs of the checkout's own
`./incoming`; the test triggers each deployment by hand with parameters pointing into tmp. The
pseudonym key reaches the flow runs only through the worker's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from background import VENV_BIN, Background, free_port, get_json, send_json, wait_for
from conftest import TEST_KEY

from core.lake import parquet_files

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(VENV_BIN / "prefect")
FLOW_RUNS_BUDGET_S = 480  # both flow runs together, Spark start-ups included (about 2 min on an idle 2-core box)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _deployments() -> list[dict]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]


def test_prefect_yaml_lets_each_deployment_run_once_at_a_time_on_the_process_pool():
    deployments = {d["name"]: d for d in _deployments()}
    assert {"ingest-incremental", "detect-hourly"} <= set(deployments)
    for name, spec in deployments.items():
        limit = spec.get("concurrency_limit")
        limit = limit if isinstance(limit, dict) else {"limit": limit}  # Prefect takes a number or a mapping
        assert limit["limit"] == 1, name
        assert limit.get("collision_strategy", "ENQUEUE") in ("ENQUEUE", "CANCEL_NEW"), name
        assert spec["work_pool"]["name"] == "enumwatch", name
    assert deployments["ingest-incremental"]["schedules"] == [{"interval": 300}]
    assert deployments["detect-hourly"]["schedules"]


def test_prefect_yaml_parameters_are_paths_and_switches_never_a_key():
    for spec in _deployments():
        for key, value in (spec.get("parameters") or {}).items():
            assert "key" not in key.lower() and "secret" not in key.lower(), (spec["name"], key)
            assert not isinstance(value, str) or "KEY" not in value, (spec["name"], key)


def _clean_env(tmp: Path, api: str) -> dict[str, str]:
    """This process's environment without any Prefect, enumwatch or Spark master setting, pointed at `api`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ENUMWATCH_")) and k != "SPARK_MASTER"}
    env.update(
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GX_ANALYTICS_ENABLED="false",
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


def _prefect(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [PREFECT, "--no-prompt", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def prefect_server(tmp_path):
    """A real `prefect server start` on a free loopback port with its own SQLite database; yields (api, env)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = _clean_env(tmp_path, api)
    server_env = {
        **env,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    server = Background(
        "prefect-server",
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port],
        env=server_env,
        log_dir=tmp_path,
    )
    try:
        wait_for(lambda: get_json(f"{api}/health") is True, timeout=150, what="GET /api/health", watch=[server])
        yield api, env
    finally:
        server.stop()


def _trigger(api: str, deployment: str, **params: str) -> str:
    """A flow run of the deployment, as `prefect deployment run` makes it (through the API: one CLI start less)."""
    found = get_json(f"{api}/deployments/name/{deployment}")
    run = send_json(f"{api}/deployments/{found['id']}/create_flow_run", "POST", {"parameters": params})
    return run["id"]


def _wait_final(api: str, run_id: str, deadline: float, worker: Background) -> dict:
    def final():
        run = get_json(f"{api}/flow_runs/{run_id}")
        return run if run["state"]["type"] in FINAL else None

    run = wait_for(
        final, timeout=max(1.0, deadline - time.monotonic()), what=f"flow run {run_id}", watch=[worker], every=2
    )
    assert run["state"]["type"] == "COMPLETED", f"{run['name']}: {run['state']['message']}\n{worker.tail(6000)}"
    return run


def _has_parquet(path: Path) -> bool:
    return path.is_symlink() and any(parquet_files(path))


@pytest.mark.slow
def test_deployments_from_prefect_yaml_run_ingest_then_detect_on_a_process_worker(prefect_server, tmp_path):
    from generator.generate import generate

    api, env = prefect_server
    src, lake = tmp_path / "src", tmp_path / "lake"
    generate(src, days=1, scale=0.02)
    config = tmp_path / "enumwatch.toml"
    config.write_text(
        f'[spark]\nshuffle_partitions = 1\ndriver_memory = "1g"\n[alerts]\nout_dir = "{tmp_path / "alerts-out"}"\n'
    )
    deploy_env = {**env, "ENUMWATCH_HOME": str(REPO)}

    _prefect(deploy_env, "work-pool", "create", "enumwatch", "--type", "process")
    send_json(f"{api}/work_pools/enumwatch", "PATCH", {"concurrency_limit": 1})  # as set-concurrency-limit does
    _prefect(deploy_env, "deploy", "--all")
    worker_env = {
        **deploy_env,
        "ENUMWATCH_PSEUDONYM_KEY": TEST_KEY,
        "ENUMWATCH_KEY_FILE": str(tmp_path / "unused.key"),
        "SPARK_MASTER": "local[1]",
        "PYSPARK_PYTHON": sys.executable,
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    worker = Background(
        "prefect-worker",
        [PREFECT, "worker", "start", "--pool", "enumwatch"],
        env=worker_env,
        log_dir=tmp_path,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + FLOW_RUNS_BUDGET_S
        ingest_id = _trigger(
            api,
            "ingest/ingest-incremental",
            source=str(src / "logs"),
            lake=str(lake),
            config=str(config),
            watchlist=str(src / "watchlist.csv"),
        )
        ingest = _wait_final(api, ingest_id, deadline, worker)
        detect_id = _trigger(
            api,
            "detect/detect-hourly",
            lake=str(lake),
            config=str(config),
            watchlist=str(src / "watchlist.csv"),
            allowlist=str(src / "allowlist.csv"),
        )
        detect = _wait_final(api, detect_id, deadline, worker)
        worker_log = worker.tail(200_000)
    finally:
        worker.stop()

    assert _has_parquet(lake / "requests") and _has_parquet(lake / "ingest_manifest")
    assert _has_parquet(lake / "flagged_clients") and _has_parquet(lake / "entity_windows")
    assert list((lake / "_docs").glob("ingest-*/index.html")) and list((lake / "_docs").glob("detect-*/index.html"))
    # Each deployment carries the limit prefect.yaml gives it; the pool runs one flow at a time.
    specs = {d["name"]: d for d in _deployments()}
    for flow_name, name in (("ingest", "ingest-incremental"), ("detect", "detect-hourly")):
        deployment = get_json(f"{api}/deployments/name/{flow_name}/{name}")
        assert deployment["global_concurrency_limit"]["limit"] == 1, name
        strategy = (deployment.get("concurrency_options") or {}).get("collision_strategy", "ENQUEUE")
        declared = specs[name]["concurrency_limit"]
        assert strategy == (declared.get("collision_strategy", "ENQUEUE") if isinstance(declared, dict) else "ENQUEUE")
    assert get_json(f"{api}/work_pools/enumwatch")["concurrency_limit"] == 1
    # The key travelled in the worker's environment only.
    for run in (ingest, detect):
        assert TEST_KEY not in json.dumps(run["parameters"]) and str(tmp_path) in json.dumps(run["parameters"])
    assert TEST_KEY not in worker_log
