"""The latest detection run's flagged entities as a blocklist: nginx include, plain lists, WAF IP-set JSON.

Read with pyarrow (the flags table is small), so an export after each detection run takes a second.
Only non-shadow flags at or above the asked severity go in; allowlisted entities never do, even if an
older flag or a campaign's member list names them. Values come from request headers an attacker
controls, so only values that are plain tokens are written into nginx syntax; the rest are counted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyspark.sql.pandas.types import to_arrow_schema

from core.allowlist import AllowEntry
from core.errors import UserError
from core.lake import Lake
from core.rules import SEVERITIES
from schemas import LAKE_TABLES

FORMATS = ("nginx", "plain", "json")
IP_SET_NAME = "enumwatch-blocklist"
# Characters that need no quoting or escaping anywhere in nginx syntax (and cannot start a regex).
SAFE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,255}")


def latest_flag_rows(lake: Lake) -> tuple[str, list[dict]]:
    """(latest detection run id, its flagged_clients rows); a lake never detected is an error, not an empty list."""
    current = lake.current("flagged_clients")
    if current is None:
        raise UserError(f"no detection results in {lake.root} (run 'enumwatch detect' first)")
    schema = to_arrow_schema(LAKE_TABLES["flagged_clients"].spark_schema())
    part = ds.partitioning(pa.schema([schema.field("detect_date")]), flavor="hive")
    data = ds.dataset(current, format="parquet", partitioning=part, schema=schema)
    columns = ["detect_run_id", "entity_type", "entity_value", "members", "severity", "score", "rules", "shadow"]
    runs = data.to_table(columns=["detect_run_id"]).column("detect_run_id")
    if len(runs) == 0:
        raise UserError(f"no detection results in {lake.root} (run 'enumwatch detect' first)")
    run_id = pc.max(runs).as_py()
    return run_id, data.to_table(columns=columns, filter=ds.field("detect_run_id") == run_id).to_pylist()


@dataclass
class Blocklist:
    """What to block, by kind, with the flags behind it."""

    run_id: str
    min_severity: str
    ips: dict[str, dict] = field(default_factory=dict)  # address -> the flag behind it
    client_ids: dict[str, dict] = field(default_factory=dict)
    device_ids: dict[str, dict] = field(default_factory=dict)
    allowlisted: int = 0
    unsafe: list[str] = field(default_factory=list)  # kinds of values left out for their characters

    def notes(self) -> list[str]:
        """Lines for stderr about what was left out and why."""
        notes = []
        if self.allowlisted:
            notes.append(f"{self.allowlisted} allowlisted entities left out")
        if self.unsafe:
            notes.append(
                f"{len(self.unsafe)} values left out: not a valid IP or not a plain token ({', '.join(sorted(set(self.unsafe)))})"
            )
        return notes


def _allowed(entries: list[AllowEntry]):
    exact = {(e.entity_type, e.entity_value) for e in entries}
    networks = []
    for e in entries:
        if e.entity_type == "client_ip":
            try:
                networks.append(ipaddress.ip_network(e.entity_value, strict=False))
            except ValueError:
                pass

    def is_allowed(kind: str, value: str) -> bool:
        if (kind, value) in exact:
            return True
        if kind == "client_ip" and networks:
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                return False
            return any(address.version == n.version and address in n for n in networks)
        return False

    return is_allowed


def build_blocklist(run_id: str, rows: list[dict], min_severity: str, allow: list[AllowEntry]) -> Blocklist:
    """Non-shadow flags at or above `min_severity`, minus allowlisted entities, grouped by what can be blocked."""
    if min_severity not in SEVERITIES:
        raise UserError(f"severity must be one of {', '.join(SEVERITIES)}, not {min_severity!r}")
    floor = SEVERITIES.index(min_severity)
    is_allowed = _allowed(allow)
    out = Blocklist(run_id, min_severity)
    rows = sorted(
        rows, key=lambda r: (-SEVERITIES.index(r["severity"]), -r["score"], r["entity_type"], r["entity_value"])
    )
    for row in rows:
        if row["shadow"] or SEVERITIES.index(row["severity"]) < floor:
            continue
        kind, value = row["entity_type"], row["entity_value"]
        if is_allowed(kind, value):
            out.allowlisted += 1
            continue
        why = {
            "severity": row["severity"],
            "score": row["score"],
            "rules": list(row["rules"]),
            "flag": f"{kind} {value}",
        }
        if kind == "client_ip":
            try:
                out.ips.setdefault(str(ipaddress.ip_address(value)), why)
            except ValueError:
                out.unsafe.append(kind)
        elif kind in ("client_id", "device_id"):
            _add_token(out, kind, value, why)
        elif kind == "campaign":
            for member in row["members"] or []:
                if is_allowed("client_id", member):
                    out.allowlisted += 1
                else:
                    _add_token(out, "client_id", member, why)
    return out


def _add_token(out: Blocklist, kind: str, value: str, why: dict) -> None:
    if not SAFE_TOKEN.fullmatch(value):
        out.unsafe.append(kind)
        return
    (out.client_ids if kind == "client_id" else out.device_ids).setdefault(value, why)


def _header(b: Blocklist, now: datetime) -> list[str]:
    return [
        f"# enumwatch blocklist: detection run {b.run_id}, severity >= {b.min_severity}, generated {now:%Y-%m-%dT%H:%M:%SZ}",
        f"# {len(b.ips)} IPs, {len(b.client_ids)} client ids, {len(b.device_ids)} devices",
    ]


def _why(why: dict) -> str:
    # A campaign's name is a device id from a request header: no newline may end the comment early.
    via = f" (campaign {why['flag'].split(' ', 1)[1]})" if why["flag"].startswith("campaign ") else ""
    text = f"{why['severity']} {why['score']} {','.join(why['rules'])}{via}"
    return re.sub(r"[^\x20-\x7e]", "?", text)


def render_nginx(b: Blocklist, now: datetime) -> str:
    """An include for nginx's http {} block: deny lines, and maps that flag blocked client ids and devices."""
    lines = _header(b, now) + [
        "# include inside http { }; in the lookup location add:",
        "#     if ($enumwatch_blocked) { return 403; }",
    ]
    if b.device_ids:
        lines.append("#     if ($enumwatch_blocked_device) { return 403; }")
    lines.append("")
    lines += [f"deny {ip};  # {_why(why)}" for ip, why in b.ips.items()]
    lines += ["", "map $http_x_client_id $enumwatch_blocked {", "    default 0;"]
    lines += [f'    "{value}" 1;  # {_why(why)}' for value, why in b.client_ids.items()]
    lines.append("}")
    if b.device_ids:
        lines += ["", "map $http_x_device_id $enumwatch_blocked_device {", "    default 0;"]
        lines += [f'    "{value}" 1;  # {_why(why)}' for value, why in b.device_ids.items()]
        lines.append("}")
    return "\n".join(lines) + "\n"


def render_plain(b: Blocklist, now: datetime, only: str | None = None) -> str:
    """One value per line: all kinds under comment headers, or one bare list with `only`."""
    kinds = {"ip": b.ips, "client_id": b.client_ids, "device_id": b.device_ids}
    if only:
        values = list(kinds[only])
        return "".join(v + "\n" for v in values)
    lines = _header(b, now)
    for kind, values in kinds.items():
        lines += ["", f"# {kind}"] + list(values)
    return "\n".join(lines) + "\n"


def render_json(b: Blocklist, now: datetime) -> str:
    """A WAF IP set (Name, Scope, IPAddressVersion, Addresses as CIDRs) plus client ids and devices."""
    v4 = [f"{ip}/32" for ip in b.ips if ipaddress.ip_address(ip).version == 4]
    v6 = [f"{ip}/128" for ip in b.ips if ipaddress.ip_address(ip).version == 6]
    doc = {
        "Name": IP_SET_NAME,
        "Description": f"enumwatch detection run {b.run_id}, severity >= {b.min_severity}",
        "Scope": "REGIONAL",
        "IPAddressVersion": "IPV4",
        "Addresses": v4,
        "IPv6Addresses": v6,
        "ClientIds": list(b.client_ids),
        "DeviceIds": list(b.device_ids),
        "GeneratedAt": f"{now:%Y-%m-%dT%H:%M:%SZ}",
        "DetectRunId": b.run_id,
        "MinSeverity": b.min_severity,
        "Entities": [
            {"kind": kind, "value": value, **why}
            for kind, values in (("ip", b.ips), ("client_id", b.client_ids), ("device_id", b.device_ids))
            for value, why in values.items()
        ],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def render(b: Blocklist, fmt: str, *, now: datetime, only: str | None = None) -> str:
    """The blocklist in one of FORMATS."""
    if fmt == "nginx":
        return render_nginx(b, now)
    if fmt == "plain":
        return render_plain(b, now, only)
    if fmt == "json":
        return render_json(b, now)
    raise UserError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` in one rename, so nginx or a WAF sync never reads half a list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
