"""Real nginx output ingests cleanly: a real nginx on loopback writes its default combined log and an
`escape=json` log in the documented format for the same requests, and both go through the ingest flow
with every line accounted for and no raw ID number or name left in the lake.

.ci/run installs nginx; on a machine without it the module is skipped with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pyarrow.dataset as ds
import pytest
from conftest import flow_env, write_config

from core.idnumber import make_id
from pipelines.ingest import ingest_flow

pytestmark = [pytest.mark.flow, pytest.mark.spark, pytest.mark.slow]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
JSON_FORMAT = (
    '\'{"ts":"$time_iso8601","client_ip":"$remote_addr","path":"$request_uri","status":$status,'
    '"request_id":"$request_id","client_id":"$http_x_client_id","device_id":"$http_x_device_id",'
    '"user_agent":"$http_user_agent","method":"$request_method","bytes_sent":$bytes_sent,'
    '"latency_ms":$request_time}\''
)
NAMES = ["张三", "李 四", "欧阳娜娜"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root: Path, port: int) -> Path:
    temp = "\n".join(f"  {k}_temp_path {root}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = root / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
{temp}
  log_format enumwatch escape=json {JSON_FORMAT};
  server {{
    listen 127.0.0.1:{port};
    access_log {root}/access.json.log enumwatch;
    access_log {root}/access.log combined;
    location = /api/v1/healthkit/lookup {{ return 404 '{{}}'; }}
    location / {{ return 200 'ok'; }}
  }}
}}
"""
    )
    return conf


@pytest.fixture(scope="module")
def nginx_logs(tmp_path_factory):
    """Requests through a real nginx; returns its two log files and the raw values sent."""
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs it)")
    root = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    proc = subprocess.Popen([NGINX, "-c", str(_config(root, port)), "-p", str(root)], stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(
                        f"nginx did not start: {proc.stderr.read().decode() if proc.poll() else ''}"
                    ) from None
                time.sleep(0.2)
        ids = [make_id("110105", date(1980, 1, 1 + i), 100 + i) for i in range(6)]
        with httpx.Client(base_url=base, timeout=5) as client:
            for i, (id_number, name) in enumerate(zip(ids, NAMES * 2, strict=False)):
                encoded = quote_plus(name) if i % 2 else quote(name)
                headers = {"User-Agent": 'Mozilla/5.0 "quoted" agent', "X-Client-Id": f"acct-{i}"} if i % 3 else {}
                client.get(f"/api/v1/healthkit/lookup?id={id_number}&name={encoded}", headers=headers)
            client.get("/api/v1/healthkit/me")
        with socket.create_connection(("127.0.0.1", port)) as raw:  # what a TLS client or scanner sends
            raw.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")
            raw.recv(1024)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {"json": root / "access.json.log", "combined": root / "access.log", "ids": ids, "names": NAMES}


@pytest.fixture(scope="module")
def ingested(nginx_logs, tmp_path_factory, prefect_harness):
    """Each nginx log ingested into its own lake."""
    out = {}
    for fmt, key in (("jsonl", "json"), ("combined", "combined")):
        root = tmp_path_factory.mktemp(f"lake-{fmt}")
        config = write_config(root / "cfg", root / "lake")
        with flow_env():
            summary = ingest_flow(source=str(nginx_logs[key]), fmt=fmt, config=str(config))
        out[fmt] = (summary, root / "lake")
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "combined"], ids=["escape=json log_format", "default combined format"])
def test_nginx_log_every_line_accounted_for_and_all_requests_parsed(nginx_logs, ingested, fmt):
    summary, _ = ingested[fmt]
    physical = len(nginx_logs["json" if fmt == "jsonl" else "combined"].read_bytes().splitlines())
    assert summary["lines"] == physical >= 8
    assert summary["parsed"] + summary["quarantined"] + summary["blank"] == physical
    assert summary["quarantined"] == 1, "only the TLS junk is quarantined; every real request parses"


@pytest.mark.parametrize("fmt", ["jsonl", "combined"], ids=["escape=json log_format", "default combined format"])
def test_nginx_lookups_are_hashed_and_unset_headers_are_no_client(ingested, fmt):
    _, lake = ingested[fmt]
    rows = ds.dataset(lake / "requests", partitioning="hive").to_table().to_pylist()
    lookups = [r for r in rows if r["is_lookup"]]
    assert len(lookups) == 6
    assert all(r["id_hash"] and r["name_hash"] and r["id_valid"] for r in lookups)
    assert len({r["name_hash"] for r in lookups}) == 3, "percent-encoded and '+' forms of one name hash alike"
    if fmt == "jsonl":
        assert sorted(r["client_id"] or "" for r in lookups) == ["", "", "acct-1", "acct-2", "acct-4", "acct-5"]


@pytest.mark.parametrize("fmt", ["jsonl", "combined"], ids=["escape=json log_format", "default combined format"])
def test_nginx_lake_holds_no_raw_id_or_name(nginx_logs, ingested, fmt):
    _, lake = ingested[fmt]
    needles = [i.encode() for i in nginx_logs["ids"]]
    needles += [n.encode() for n in nginx_logs["names"]] + [quote(n).encode() for n in nginx_logs["names"]]
    for path in lake.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [n for n in needles if n in data], f"raw value found in {path}"
