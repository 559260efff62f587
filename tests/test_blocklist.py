"""export-blocklist: the latest run's non-shadow flags as nginx deny/map, plain lists and WAF JSON (pyarrow, no Spark)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import analyst_lake as tiny
import httpx
import pytest

from analyst.blocklist import build_blocklist, render
from cli.main import main
from core.allowlist import AllowEntry
from core.lake import Lake

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lake:
    for name in ("ENUMWATCH_LAKE", "ENUMWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tiny.build(tmp_path)


def export(lake: Lake, capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["export-blocklist", "--lake", str(lake.root), *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_export_blocklist_nginx_denies_flagged_ips_and_maps_client_ids(lake, capsys, tmp_path):
    target = tmp_path / "nginx" / "enumwatch-blocklist.conf"
    rc, out, err = export(lake, capsys, "--format", "nginx", "--out", str(target))
    assert rc == 0 and out == ""
    text = target.read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]
    assert lines == [
        "deny 203.0.113.7;",
        "deny 2001:db8::7;",
        "map $http_x_client_id $enumwatch_blocked {",
        "default 0;",
        '"acct-bad" 1;',  # critical 90, then the campaign's members
        '"acct-sib" 1;',
        '"partner-1" 1;',
        "}",
    ]
    assert "if ($enumwatch_blocked) { return 403; }" in text  # how to use it, as a comment
    assert tiny.RUN in text and "severity >= high" in text
    assert "2 IPs, 3 client ids, 0 devices" in err and tiny.RUN in err
    assert "1 values left out" in err  # the client id that is not a plain token


def test_export_blocklist_never_writes_a_header_value_that_could_break_out_of_nginx_syntax(lake, capsys):
    rc, out, _ = export(lake, capsys, "--format", "nginx", "--min-severity", "low")
    assert rc == 0
    assert "evil" not in out and "deny all" not in out


def test_export_blocklist_min_severity_adds_devices_but_never_shadow_or_older_runs(lake, capsys):
    rc, out, _ = export(lake, capsys, "--format", "nginx", "--min-severity", "low")
    assert rc == 0
    assert "map $http_x_device_id $enumwatch_blocked_device {" in out and '"dev-x" 1;' in out
    assert '"acct-low" 1;' in out
    assert "acct-shadow" not in out  # only a shadow rule fired: recorded, never acted on
    assert "acct-old" not in out  # flagged only in an older detection run


def test_export_blocklist_plain_lists_each_kind_and_only_gives_one_bare_list(lake, capsys):
    rc, out, _ = export(lake, capsys, "--format", "plain", "--min-severity", "medium")
    assert rc == 0
    body = [line for line in out.splitlines() if line]
    assert body[2:] == [
        "# ip",
        "203.0.113.7",
        "2001:db8::7",
        "# client_id",
        "acct-bad",
        "acct-sib",
        "partner-1",
        "# device_id",
        "dev-x",
    ]
    rc, out, _ = export(lake, capsys, "--format", "plain", "--only", "ip")
    assert (rc, out) == (0, "203.0.113.7\n2001:db8::7\n")


def test_export_blocklist_json_is_a_waf_ip_set_plus_client_ids(lake, capsys):
    rc, out, _ = export(lake, capsys, "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["Name"] == "enumwatch-blocklist" and doc["IPAddressVersion"] == "IPV4"
    assert doc["Addresses"] == ["203.0.113.7/32"]
    assert doc["IPv6Addresses"] == ["2001:db8::7/128"]
    assert doc["ClientIds"] == ["acct-bad", "acct-sib", "partner-1"]
    assert doc["DetectRunId"] == tiny.RUN
    assert {
        "kind": "ip",
        "value": "203.0.113.7",
        "severity": "high",
        "score": 60,
        "rules": ["high_miss_share"],
        "flag": "client_ip 203.0.113.7",
    } in doc["Entities"]


def test_export_blocklist_leaves_out_allowlisted_entities_and_campaign_members(lake, capsys, tmp_path):
    allowlist = tmp_path / "allowlist.csv"
    allowlist.write_text(
        "entity_type,entity_value,reason,expires\n"
        "client_id,partner-1,verification partner,\n"
        "client_ip,203.0.113.0/24,office NAT,\n"
        "client_id,acct-sib,expired partner,2020-01-01\n",  # expired: no longer protects
        encoding="utf-8",
    )
    rc, out, err = export(lake, capsys, "--format", "json", "--allowlist", str(allowlist))
    assert rc == 0
    doc = json.loads(out)
    assert doc["Addresses"] == [] and doc["IPv6Addresses"] == ["2001:db8::7/128"]
    assert doc["ClientIds"] == ["acct-bad", "acct-sib"]
    assert "2 allowlisted entities left out" in err


def test_export_blocklist_without_detection_results_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "lake").mkdir()
    rc = main(["export-blocklist", "--format", "nginx", "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "no detection results" in err


def test_build_blocklist_orders_by_severity_and_keeps_the_strongest_reason_per_value():
    rows = [
        {
            "entity_type": "campaign",
            "entity_value": "10.0.0.0/24",
            "members": ["a"],
            "severity": "high",
            "score": 50,
            "rules": ["subnet_campaign"],
            "shadow": False,
        },
        {
            "entity_type": "client_id",
            "entity_value": "a",
            "members": None,
            "severity": "critical",
            "score": 99,
            "rules": ["many_distinct_ids"],
            "shadow": False,
        },
        {
            "entity_type": "client_ip",
            "entity_value": "not-an-ip",
            "members": None,
            "severity": "high",
            "score": 60,
            "rules": ["x"],
            "shadow": False,
        },
    ]
    blocklist = build_blocklist("run", rows, "high", [AllowEntry("client_id", "zzz", "unrelated", None)])
    assert blocklist.client_ids == {
        "a": {"severity": "critical", "score": 99, "rules": ["many_distinct_ids"], "flag": "client_id a"}
    }
    assert blocklist.ips == {} and blocklist.unsafe == ["client_ip"]
    assert render(blocklist, "plain", now=NOW, only="client_id") == "a\n"


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def nginx_conf(root: Path, port: int, backend: int, include: Path) -> Path:
    """An nginx that includes the blocklist in http {} and checks both maps in the lookup location, as documented.

    The location proxies to a second server, as a real one proxies to the API: `deny` is checked in
    the access phase, which a location that answers with `return` never reaches.
    """
    temp = "\n".join(f"  {k}_temp_path {root}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = root / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\nhttp {{\n{temp}\n"
        f"  access_log off;\n  include {include};\n"
        f"  server {{\n    listen 127.0.0.1:{backend};\n    allow all;\n    location / {{ return 200 'ok'; }}\n  }}\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n"
        "    location = /api/v1/healthkit/lookup {\n"
        "      if ($enumwatch_blocked) { return 403; }\n      if ($enumwatch_blocked_device) { return 403; }\n"
        f"      proxy_pass http://127.0.0.1:{backend};\n    }}\n  }}\n}}\n"
    )
    return conf


def test_export_blocklist_nginx_include_blocks_flagged_clients_devices_and_ips_in_a_real_nginx(lake, capsys, tmp_path):
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs it)")
    # Loopback is 127.0.0.0/8: flag 127.0.0.2 and send from it, to see a deny line work.
    tiny.publish(
        lake,
        {
            "flagged_clients": tiny.FLAGS
            + [tiny.flag(tiny.RUN, "client_ip", "127.0.0.2", "critical", 95, ["many_distinct_ids"])]
        },
    )
    include = tmp_path / "enumwatch-blocklist.conf"
    assert export(lake, capsys, "--format", "nginx", "--min-severity", "medium", "--out", str(include))[0] == 0
    root = tmp_path / "nginx"
    root.mkdir()
    with socket.socket() as one, socket.socket() as two:
        one.bind(("127.0.0.1", 0))
        two.bind(("127.0.0.1", 0))
        port, backend = one.getsockname()[1], two.getsockname()[1]
    conf = nginx_conf(root, port, backend, include)
    checked = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(root)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(root)], stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/healthkit/lookup"

        def status(headers=None, source="127.0.0.1"):
            with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=5) as client:
                return client.get(url, headers=headers or {}).status_code

        deadline = time.monotonic() + 20
        while True:
            try:
                status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "nginx did not start"
                time.sleep(0.1)
        assert status() == 200
        assert status({"X-Client-Id": "acct-bad"}) == 403
        assert status({"X-Client-Id": "acct-sib"}) == 403  # a flagged campaign's member
        assert status({"X-Client-Id": "acct-shadow"}) == 200  # shadow flags are never acted on
        assert status({"X-Device-Id": "dev-x"}) == 403
        assert status(source="127.0.0.2") == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)
