"""`enumwatch status`: the state of a lake at a glance, and whether a person is needed now.

It reads files only (the lock, the journal, staging, table versions, a few small tables and the
alerts heartbeat) with pyarrow and os, starts neither Spark nor Prefect, and takes no lock, so it
answers in about a second even while a run holds the lake. The lock holder is read defensively: a
lock file holding JSON (run_id, pid, host, since: what `Lake.lock` writes) is shown as is; a writer
that wrote no note is still seen through a non-blocking shared flock, since the file's modification time.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

from core.lake import Lake
from core.partitions import partitions
from core.retention import ages
from core.settings import Settings
from delivery import outbox


def _minutes(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round((now - since).total_seconds() / 60, 1)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def _parse_time(value) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def lock_state(lake: Lake, now: datetime) -> dict:
    """Whether a writer holds the lake lock, who (when the lock file says), and since when."""
    state = {"held": False, "holder": None, "since": None, "minutes": None}
    note = lake.lock_holder()  # None: free; {}: held by a writer that wrote no note
    if note is None:
        return state
    holder = {k: note.get(k) for k in ("run_id", "pid", "host", "since")} if note else None
    since = (_parse_time(holder["since"]) if holder and holder.get("since") else None) or _mtime(lake.lock_file)
    state.update(held=True, holder=holder, since=since, minutes=_minutes(since, now))
    return state


def journal_state(lake: Lake, now: datetime) -> dict:
    """A publish's journal left in the lake root: a switch of table links not finished yet."""
    if not lake.journal.exists():
        return {"pending": False}
    try:
        run_id = json.loads(lake.journal.read_text()).get("run_id")
    except (OSError, ValueError):
        run_id = None
    return {"pending": True, "run_id": run_id, "minutes": _minutes(_mtime(lake.journal), now)}


def staging_state(lake: Lake, now: datetime) -> list[dict]:
    """Each run's staging directory, with its age."""
    if not lake.staging_root.is_dir():
        return []
    found = [{"name": p.name, "minutes": _minutes(_mtime(p), now)} for p in lake.staging_root.iterdir()]
    return sorted(found, key=lambda s: -(s["minutes"] or 0))


def table_state(lake: Lake) -> dict[str, dict]:
    """Per table: versions kept, and the current version's files, bytes, partitions and most files in one."""
    tables = {}
    for folder in sorted(lake.versions.iterdir()) if lake.versions.is_dir() else []:
        current = lake.current(folder.name)
        parts = partitions(current)
        tables[folder.name] = {
            "versions": sum(1 for p in folder.iterdir() if p.is_dir()),
            "current": current.name if current else None,
            "files": sum(len(p.files) for p in parts),
            "bytes": sum(p.bytes for p in parts),
            "partitions": len(parts),
            "max_files_per_partition": max((len(p.files) for p in parts), default=0),
        }
    return tables


def _latest(lake: Lake, table: str, column: str, stage: str | None = None) -> datetime | None:
    current = lake.current(table)
    if current is None or not any(current.glob("*.parquet")):
        return None
    where = ds.field("stage") == stage if stage else None
    values = ds.dataset(str(current), format="parquet").to_table(columns=[column], filter=where).column(0)
    return pc.max(values).as_py() if len(values) else None


def heartbeat_state(settings: Settings, now: datetime) -> dict:
    """The alerts flow's heartbeat.json: when it last ran and what it said."""
    path = settings.alerts.directory(settings.lake) / "heartbeat.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"path": str(path), "ran_at": None, "minutes": None, "line": None}
    ran_at = _parse_time(doc.get("ran_at")) or _mtime(path)
    return {"path": str(path), "ran_at": ran_at, "minutes": _minutes(ran_at, now), "line": doc.get("heartbeat")}


def last_runs(lake: Lake, beat: dict) -> dict[str, datetime | None]:
    """When each flow last did its work: ingest published, detection ran, alerts ran, maintenance ran."""
    ingested = [t for t in (_latest(lake, "ingest_manifest", "ingested_at"),) if t]
    ingested += [t for t in (_latest(lake, "dq_results", "validated_at", stage="ingest"),) if t]
    return {
        "ingest": max(ingested, default=None),
        "detect": _latest(lake, "detect_runs", "detected_at"),
        "alerts": beat["ran_at"],
        "retention": _latest(lake, "retention_log", "removed_at"),
        "compaction": _latest(lake, "compaction_log", "compacted_at"),
    }


def gather(settings: Settings, now: datetime | None = None) -> dict:
    """The whole report: every fact, and `problems` (one line each) that need a person."""
    now = now or datetime.now(timezone.utc)
    policy = settings.maintenance
    lake = Lake(settings.lake, settings.keep_versions)
    usage = shutil.disk_usage(lake.root)
    beat = heartbeat_state(settings, now)
    alerts = outbox.read_outbox(lake)
    owed = outbox.undelivered(alerts)
    report = {
        "lake": str(lake.root),
        "checked_at": now,
        "lock": lock_state(lake, now),
        "journal": journal_state(lake, now),
        "staging": staging_state(lake, now),
        "tables": table_state(lake),
        "disk": {"total": usage.total, "free": usage.free, "free_share": round(usage.free / usage.total, 4)},
        "last_runs": last_runs(lake, beat),
        "heartbeat": beat,
        "alerts": {
            "total": len(alerts),
            "undelivered": len(owed),
            "oldest_undelivered": min((a["created_at"] for a in owed), default=None),
        },
        "retention_overdue": [
            a for a in ages(lake, policy, now.date()) if a["overdue_days"] > policy.retention_grace_days
        ],
    }
    report["problems"] = problems(report, settings)
    return report


def problems(report: dict, settings: Settings) -> list[str]:
    """What needs a person, one line each with what to do; empty when all is well."""
    policy, found = settings.maintenance, []
    lock, journal = report["lock"], report["journal"]
    if lock["held"] and lock["minutes"] is not None and lock["minutes"] > policy.lock_max_minutes:
        who = (lock["holder"] or {}).get("run_id") or "a run"
        found.append(f"{who} has held the lake lock for {lock['minutes']:g} min (limit {policy.lock_max_minutes:g})")
    if journal["pending"] and not lock["held"]:
        found.append(
            f"a publish by {journal['run_id']} was left half done ({journal['minutes']:g} min ago); "
            "the next ingest or detect run finishes it"
        )
    stale = [s for s in report["staging"] if not lock["held"] and (s["minutes"] or 0) > policy.staging_max_minutes]
    if stale:
        found.append(
            f"{len(stale)} staging leftovers of crashed runs, oldest {stale[0]['minutes']:g} min "
            f"(limit {policy.staging_max_minutes:g}); the next run removes them"
        )
    if report["disk"]["free_share"] < policy.min_free_share:
        found.append(f"the lake's disk is {report['disk']['free_share']:.0%} free (limit {policy.min_free_share:.0%})")
    beat = report["heartbeat"]
    if beat["ran_at"] is None and report["last_runs"]["detect"] is not None:
        found.append(f"no alerts heartbeat at {beat['path']}: alerts have never run after detection")
    elif beat["minutes"] is not None and beat["minutes"] > policy.heartbeat_max_minutes:
        found.append(
            f"the alerts heartbeat is {beat['minutes']:g} min old (limit {policy.heartbeat_max_minutes:g}): "
            "detection or alerting has stopped"
        )
    owed = report["alerts"]
    if owed["undelivered"]:
        found.append(
            f"{owed['undelivered']} alerts undelivered since {owed['oldest_undelivered']:%Y-%m-%d %H:%M} UTC "
            "(enumwatch alerts --pending; enumwatch deliver)"
        )
    overdue = report["retention_overdue"]
    if overdue:
        worst = max(overdue, key=lambda a: a["overdue_days"])
        found.append(
            f"{len(overdue)} partitions past their retention period, worst {worst['table_name']} "
            f"{worst['partition'] or '(rows)'} by {worst['overdue_days']} days (enumwatch retention)"
        )
    return found


def _ago(when: datetime | None, now: datetime) -> str:
    return "never" if when is None else f"{when:%Y-%m-%d %H:%M} UTC ({_minutes(when, now):g} min ago)"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render(report: dict) -> str:
    """The report for people: problems first, then the facts."""
    now, problems_ = report["checked_at"], report["problems"]
    lock, journal, staging, disk = report["lock"], report["journal"], report["staging"], report["disk"]
    head = f"enumwatch status of {report['lake']} at {now:%Y-%m-%d %H:%M} UTC: "
    lines = [head + (f"{len(problems_)} need a person" if problems_ else "all well")]
    lines += [f"  ! {p}" for p in problems_]
    holder = lock["holder"] or {}
    who = ", ".join(f"{k} {holder[k]}" for k in ("run_id", "pid", "host") if holder.get(k)) or "a writer"
    lines.append(f"lock: held by {who} for {lock['minutes']:g} min" if lock["held"] else "lock: free")
    lines.append(
        f"journal: publish of {journal['run_id']} pending ({journal['minutes']:g} min)"
        if journal["pending"]
        else "journal: none"
    )
    lines.append(
        f"staging: {len(staging)} run directories, oldest {staging[0]['minutes']:g} min"
        if staging
        else "staging: empty"
    )
    lines.append(f"disk: {_size(disk['free'])} free of {_size(disk['total'])} ({disk['free_share']:.0%})")
    beat = report["heartbeat"]
    lines.append(f"heartbeat: {_ago(beat['ran_at'], now)}" + (f": {beat['line']}" if beat["line"] else ""))
    alerts = report["alerts"]
    lines.append(f"alerts: {alerts['total']} in the outbox, {alerts['undelivered']} undelivered")
    lines.append("last runs:")
    lines += [f"  {flow:<10} {_ago(when, now)}" for flow, when in report["last_runs"].items()]
    lines.append("tables (current version; versions kept):")
    for name, t in report["tables"].items():
        lines.append(
            f"  {name:<20} {t['files']:>7} files {_size(t['bytes']):>10}  {t['partitions']:>5} partitions, "
            f"at most {t['max_files_per_partition']} files in one; {t['versions']} versions"
        )
    return "\n".join(lines)
