"""Flags -> alerts for on-call: the dedup policy, the alert text, and the `alerts` outbox in the lake.

An alert is recorded in the outbox (status pending) before anyone is told, and marked delivered only
after the webhook answered 2xx, so an alert can be late but never lost. The outbox is small, so it is
read with pyarrow and rewritten whole, through the lake's versioned publish under the lake lock.
Watchlist people are handles (wl-...) here; names appear only in rendered messages (`render`).
"""

from __future__ import annotations

import fcntl
import hashlib
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyspark.sql.pandas.types import to_arrow_schema

from core.lake import Lake, LakeError
from core.rules import SEVERITIES
from core.settings import AlertSettings
from delivery.webhook import Webhook, WebhookError, payload, post
from schemas import LAKE_TABLES

RANK = {s: i for i, s in enumerate(SEVERITIES)}
ALERTS_SCHEMA = to_arrow_schema(LAKE_TABLES["alerts"].spark_schema())
FLAGS_SCHEMA = to_arrow_schema(LAKE_TABLES["flagged_clients"].spark_schema())
UNDELIVERED = ("pending", "failed")


# --- policy ------------------------------------------------------------------------------------
def decide(
    flags: list[dict], sent: list[dict], now: datetime, policy: AlertSettings
) -> tuple[list[tuple[dict, str, str | None]], list[dict]]:
    """(flags to alert with their reason and previous severity, flags suppressed); shadow and minor flags are neither.

    The last alert per entity is the reference: a higher severity re-alerts at once, anything else only
    after the suppression window of the flag's current severity has passed since that alert.
    """
    last: dict[tuple[str, str], dict] = {}
    for alert in sent:
        key = (alert["entity_type"], alert["entity_value"])
        if key not in last or alert["created_at"] > last[key]["created_at"]:
            last[key] = alert
    raise_, suppressed = [], []
    for flag in flags:
        if flag["shadow"] or RANK[flag["severity"]] < RANK[policy.min_severity]:
            continue
        prev = last.get((flag["entity_type"], flag["entity_value"]))
        if prev is None:
            raise_.append((flag, "new", None))
        elif RANK[flag["severity"]] > RANK[prev["severity"]]:
            raise_.append((flag, "severity_rose", prev["severity"]))
        elif now - prev["created_at"] >= policy.suppress_for(flag["severity"]):
            raise_.append((flag, "repeat", prev["severity"]))
        else:
            suppressed.append(flag)
    return raise_, suppressed


def alert_id(detect_run_id: str, entity_type: str, entity_value: str) -> str:
    """A stable id, so raising the same detection run's alerts twice finds them already there."""
    return "al-" + hashlib.sha256(f"{detect_run_id}\x1f{entity_type}\x1f{entity_value}".encode()).hexdigest()[:16]


def investigate_command(entity_type: str, entity_value: str) -> str:
    """The shell command that shows the entity in full."""
    return f"enumwatch investigate {entity_type} {shlex.quote(entity_value)}"


def build_alert(flag: dict, reason: str, previous: str | None, now: datetime) -> dict:
    """An `alerts` row (status pending) for one flag."""
    row = {name: flag.get(name) for name in ALERTS_SCHEMA.names if name in flag}
    row.update(
        alert_id=alert_id(flag["detect_run_id"], flag["entity_type"], flag["entity_value"]),
        created_at=now,
        reason=reason,
        previous_severity=previous,
        investigate=investigate_command(flag["entity_type"], flag["entity_value"]),
        status="pending",
        channel=None,
        attempts=0,
        last_error=None,
        last_attempt_at=None,
        delivered_at=None,
    )
    row["summary"] = summary(row)
    return row


# --- text --------------------------------------------------------------------------------------
def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _who(alert: dict) -> str:
    who = f"{alert['entity_type']} {alert['entity_value']}"
    members = alert.get("members") or []
    if members:
        who += f" ({len(members)} accounts: {', '.join(members[:5])}{' ...' if len(members) > 5 else ''})"
    return who


def _why(alert: dict) -> str:
    if alert["reason"] == "severity_rose":
        return f"severity rose from {alert['previous_severity']}"
    return "still flagged after the suppression window" if alert["reason"] == "repeat" else "new"


def summary(alert: dict) -> str:
    """One line with counts and handles only: safe to store in the lake."""
    exposed = len(alert.get("watchlist_hit_keys") or [])
    return (
        f"{alert['severity']} (score {alert['score']}) {alert['entity_type']} {alert['entity_value']}: "
        f"{', '.join(alert['rules'])}; {alert['lookups']} lookups, {alert['distinct_ids']} distinct IDs, "
        f"{alert['hits']} returned data, {exposed} watchlist people exposed ({_why(alert)})"
    )


def evidence_lines(alert: dict) -> list[str]:
    """Each rule that fired, in its window, with every observed value against its threshold."""
    lines = []
    for ev in alert.get("evidence") or []:
        limits = dict(ev.get("threshold") or {})
        observed = ", ".join(
            f"{k} {_num(v)}" + (f" vs threshold {_num(limits[k])}" if k in limits else "")
            for k, v in sorted(dict(ev.get("observed") or {}).items())
        )
        shadow = " (shadow rule, context only)" if ev.get("shadow") else ""
        lines.append(
            f"- {ev['rule']}{shadow} [{ev['window']} from {ev['window_start']:%Y-%m-%d %H:%M} UTC]: {observed}"
        )
    return lines


def render(alert: dict, names: dict[str, str]) -> str:
    """The message on-call reads: who, how bad, why, what was exposed, and how to dig in."""

    def named(keys):
        return [names.get(k, k) for k in keys or []]

    exposed = named(alert.get("watchlist_hit_keys"))
    targeted = [n for n in named(alert.get("watchlist_keys")) if n not in exposed]
    lines = [
        f"[{alert['severity'].upper()} {alert['score']}] {_who(alert)} - {_why(alert)}",
        f"seen {alert['first_seen']:%Y-%m-%d %H:%M} .. {alert['last_seen']:%Y-%m-%d %H:%M} UTC: "
        f"{alert['lookups']} lookups, {alert['distinct_ids']} distinct ID numbers",
        "rules:",
        *evidence_lines(alert),
        f"exposed: {alert['hits']} lookups returned data"
        + (
            f"; watchlist people whose data was returned: {', '.join(exposed)}"
            if exposed
            else "; no watchlist person's data"
        ),
    ]
    if targeted:
        lines.append(f"also looked up (no data returned): {', '.join(targeted)}")
    lines.append(f"investigate: {alert['investigate']}")
    return "\n".join(lines)


# --- the lake ----------------------------------------------------------------------------------
def _rows(table: pa.Table) -> list[dict]:
    rows = table.to_pylist()
    for row in rows:  # pyarrow gives maps as (key, value) pairs
        for ev in row.get("evidence") or []:
            ev["observed"] = dict(ev["observed"] or [])
            ev["threshold"] = dict(ev["threshold"]) if ev["threshold"] is not None else None
    return rows


def read_outbox(lake: Lake) -> list[dict]:
    """Every alert ever raised, oldest first (empty before the first)."""
    current = lake.current("alerts")
    if current is None or not any(current.glob("*.parquet")):
        return []
    return sorted(_rows(pq.read_table(current, schema=ALERTS_SCHEMA)), key=lambda r: r["created_at"])


def read_flags(lake: Lake, detect_run_id: str | None = None, since: datetime | None = None) -> list[dict]:
    """flagged_clients rows of one detection run (default: the latest), or of every run since `since`."""
    if lake.current("flagged_clients") is None:
        return []
    part = ds.partitioning(pa.schema([FLAGS_SCHEMA.field("detect_date")]), flavor="hive")
    data = ds.dataset(lake.path("flagged_clients"), format="parquet", partitioning=part, schema=FLAGS_SCHEMA)
    if since is not None:
        where = (ds.field("detect_date") >= since.date()) & (
            ds.field("detected_at") >= pa.scalar(since, FLAGS_SCHEMA.field("detected_at").type)
        )
        return _rows(data.to_table(filter=where))
    if detect_run_id is None:
        runs = data.to_table(columns=["detect_run_id"]).column("detect_run_id")
        if len(runs) == 0:
            return []
        detect_run_id = pc.max(runs).as_py()
    return _rows(data.to_table(filter=ds.field("detect_run_id") == detect_run_id))


def owe_alerts(lake: Lake, detect_run_id: str) -> None:
    """Note, before a detection run publishes, that its flags are owed an alerts pass (see `owed_runs`)."""
    owed = lake.root / "_alerts_owed"
    owed.mkdir(parents=True, exist_ok=True)
    (owed / detect_run_id).touch()


def owed_runs(lake: Lake) -> list[str]:
    """Detection runs whose alerts pass has not finished, oldest first: a run killed between its
    publish and its alerts is taken up by the next alerts run (a run killed before its publish has
    no flags, and costs nothing)."""
    owed = lake.root / "_alerts_owed"
    return sorted(p.name for p in owed.iterdir()) if owed.is_dir() else []


def settle(lake: Lake, detect_runs: list[str]) -> None:
    """The alerts of these detection runs are in the outbox: they are owed nothing more."""
    for run in detect_runs:
        (lake.root / "_alerts_owed" / run).unlink(missing_ok=True)


@contextmanager
def outbox_lock(lake: Lake, wait_s: float = 600) -> Iterator[None]:
    """One alerts run at a time per lake (so an alert is never sent twice), waiting for the other."""
    lake.root.mkdir(parents=True, exist_ok=True)
    with open(lake.root / ".alerts.lock", "w") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LakeError(f"{lake.root}: another alerts run has held the outbox for {wait_s:g} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_outbox(lake: Lake, rows: list[dict], run_id: str, wait_s: float = 1800) -> None:
    """Publish `rows` as the whole `alerts` table: a new version, swapped in under the lake lock (waiting for it)."""
    table = pa.Table.from_pylist(sorted(rows, key=lambda r: r["created_at"]), schema=ALERTS_SCHEMA)
    with lake.lock(wait_s, run_id):
        lake.recover()
        staged = lake.staging(run_id) / "alerts"
        staged.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, staged / "part-00000.parquet")
        lake.publish(run_id, {"alerts": lake.build_version("alerts", run_id, add=[staged], keep_current=False)})
        lake.recover()  # drops this run's staging


def undelivered(rows: list[dict]) -> list[dict]:
    """Alerts still owed to on-call, most severe first, then oldest."""
    todo = [r for r in rows if r["status"] in UNDELIVERED]
    return sorted(todo, key=lambda r: (-RANK[r["severity"]], -r["score"], r["created_at"]))


BATCH = 20  # alerts per webhook message: one message per run, not fifty pages


def jsonable(value):
    """`value` with datetimes as ISO 8601 text, ready for json.dumps."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def as_message(alert: dict, names: dict[str, str]) -> dict:
    """An alert as a JSON document for people and tools: its columns, the names and the rendered text."""
    doc = jsonable(alert)
    doc["watchlist_names"] = [names.get(k, k) for k in alert.get("watchlist_keys") or []]
    doc["exposed_names"] = [names.get(k, k) for k in alert.get("watchlist_hit_keys") or []]
    doc["message"] = render(alert, names)
    return doc


def alerts_payload(fmt: str, batch: list[dict], names: dict[str, str]) -> dict:
    """One webhook body for a batch of alerts (Slack blocks or generic JSON)."""
    counts = {s: sum(a["severity"] == s for a in batch) for s in reversed(SEVERITIES)}
    title = (
        f"enumwatch: {len(batch)} alert{'s' * (len(batch) != 1)} ("
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + ")"
    )
    return payload(
        fmt, "alerts", title, [render(a, names) for a in batch], {"alerts": [as_message(a, names) for a in batch]}
    )


def deliver(todo: list[dict], hook: Webhook | None, names: dict[str, str], now: datetime, send=post) -> str | None:
    """Send `todo` in batches and update each row's delivery state in place; the first failure stops and is returned.

    Without a webhook the per-run file is the channel, so the alerts count as delivered there.
    """
    if hook is None:
        for row in todo:
            row.update(status="delivered", channel="file", delivered_at=now, last_attempt_at=now)
        return None
    for i in range(0, len(todo), BATCH):
        batch = todo[i : i + BATCH]
        try:
            used = send(hook, alerts_payload(hook.fmt, batch, names))
        except WebhookError as exc:
            left = len(todo) - i
            for row in batch:
                row.update(
                    status="failed", attempts=row["attempts"] + exc.attempts, last_error=str(exc), last_attempt_at=now
                )
            return f"{exc}; {left} alert{'s' * (left != 1)} still undelivered, retried on the next run"
        for row in batch:
            row.update(
                status="delivered",
                channel="webhook",
                attempts=row["attempts"] + used,
                last_attempt_at=now,
                delivered_at=now,
            )
    return None
