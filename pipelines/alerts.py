"""The `alerts` and `report` flows, and the failure hook that pages on-call when a pipeline flow fails.

`alerts_flow` runs after each detection publish (detect_flow calls it as a subflow): it raises this
run's alerts into the outbox, delivers everything still owed, and leaves a per-run CSV + JSON file and
a Prefect table artifact. Every run writes a heartbeat line, so an empty file means "ran, nothing new",
and a missing or stale `heartbeat.json` means "not running": silence is never an accidental all-clear.
"""

from __future__ import annotations

import csv
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from core import faults
from core.lake import Lake
from core.pseudonym import load_key
from core.settings import Settings, load_settings
from core.watchlist import watchlist_names as names_from
from delivery import outbox
from delivery.webhook import Webhook, WebhookError, payload, post, redact

_log = logging.getLogger("enumwatch.alerts")
CSV_COLUMNS = (
    "kind", "run_id", "alert_id", "created_at", "severity", "score", "entity_type", "entity_value", "reason",
    "rules", "hits", "exposed_names", "status", "attempts", "last_error", "investigate", "message",
)  # fmt: skip


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called from the CLI, outside a flow run
        return _log


def new_run_id(kind: str) -> str:
    """A sortable, unique run id such as alerts-20261127T093000Z-1a2b3c (as ingest and detect use)."""
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def webhook_for(settings: Settings) -> Webhook | None:
    """The configured webhook, or None when alerts go to files and the Prefect UI only."""
    a = settings.alerts
    return (
        Webhook(a.webhook_url, a.webhook_format, a.retries, a.backoff_seconds, a.timeout_seconds)
        if a.webhook_url
        else None
    )


def watchlist_names(lake: Lake, settings: Settings) -> dict[str, str]:
    """Handle -> name from the watchlist recorded in the lake; handles stay as they are if it cannot be read."""
    path = lake.watchlist_path()
    if path is None:
        return {}
    try:
        return names_from(path, load_key(settings))
    except Exception as exc:  # a missing watchlist must not stop a page; the message shows handles instead
        _logger().warning("watchlist names unavailable, showing handles: %s", exc)
        return {}


# --- failures ----------------------------------------------------------------------------------
def send_failure(
    settings: Settings, flow_name: str, flow_run: str, message: str, now: datetime, flow_run_id: str = "<id>"
) -> Path:
    """Page on-call about a failed flow run (webhook, and a failure file either way); return the file."""
    title = f"enumwatch: the {flow_name} flow FAILED"
    text = (
        f"flow {flow_name}, run {flow_run}, at {now:%Y-%m-%d %H:%M:%S} UTC\n{message}\n"
        f"lake {settings.lake}: tables published before this run are unchanged; flags from this run may be missing.\n"
        f"logs: prefect flow-run logs {flow_run_id}\n"
        f'failed quality checks: enumwatch sql "SELECT * FROM dq_results WHERE NOT success ORDER BY validated_at DESC"'
    )
    doc = {
        "kind": "failure",
        "flow": flow_name,
        "flow_run": flow_run,
        "failed_at": now.isoformat(),
        "message": text,
        "delivered": False,
    }
    out = settings.alerts.directory(settings.lake)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"failure-{now:%Y%m%dT%H%M%SZ}-{flow_name}-{uuid.uuid4().hex[:6]}.json"
    doc = _send_failure_doc(settings, doc, title)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    with path.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerow({"kind": "failure", "run_id": flow_run, "created_at": now.isoformat(), "message": text,
                         "status": "delivered" if doc["delivered"] else "failed" if doc.get("last_error") else "file",
                         "last_error": doc.get("last_error") or ""})  # fmt: skip
    return path


def _send_failure_doc(settings: Settings, doc: dict, title: str) -> dict:
    hook = webhook_for(settings)
    if hook is None:
        return doc
    try:
        post(hook, payload(hook.fmt, "failure", title, [doc["message"]], doc))
        return {**doc, "delivered": True, "last_error": None}
    except WebhookError as exc:
        _logger().error(
            "failure message not delivered (kept in the failure file, resent by the next alerts run): %s", exc
        )
        return {**doc, "last_error": str(exc)}


def resend_failures(settings: Settings) -> int:
    """Resend failure messages whose webhook delivery failed earlier; return how many went out."""
    if webhook_for(settings) is None:
        return 0
    sent = 0
    for path in sorted(settings.alerts.directory(settings.lake).glob("failure-*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # one damaged file must not stop every later alerts run
            _logger().warning("skipping unreadable failure file %s: %s", path, exc)
            continue
        if not doc.get("delivered"):
            doc = _send_failure_doc(settings, doc, f"enumwatch: the {doc['flow']} flow FAILED (delivered late)")
            path.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
            sent += doc["delivered"]
    return sent


def notify_failure(flow, flow_run, state) -> None:
    """Prefect on_failure / on_crashed hook: page on-call when a top-level flow run fails (a parent reports its children)."""
    if getattr(flow_run, "parent_task_run_id", None) is not None:
        return
    params = flow_run.parameters or {}
    try:
        try:
            settings = load_settings(Path(params["config"]) if params.get("config") else None)
        except Exception:  # a broken config must not silence the page: fall back to defaults + environment
            settings = load_settings()
        settings = settings.with_overrides(lake=Path(params["lake"]) if params.get("lake") else None)
        send_failure(
            settings,
            flow.name,
            flow_run.name,
            state.message or state.name,
            datetime.now(timezone.utc),
            str(flow_run.id),
        )
    except Exception:
        _log.exception("could not record the failure of flow run %s", flow_run.name)


@task(cache_policy=NO_CACHE)
def raise_alerts(run_id: str, settings: Settings, detect_run_id: str | None, now: datetime) -> dict:
    """Turn the detection run's new and risen flags into pending alerts in the outbox; return the counts.

    Detection runs still owed an alerts pass (killed between their publish and their alerts) go first.
    """
    lake = Lake(settings.lake, settings.keep_versions)
    owed = [run for run in outbox.owed_runs(lake) if run != detect_run_id]
    history = outbox.read_outbox(lake)
    known = {a["alert_id"] for a in history}
    new: list[dict] = []
    flags: list[dict] = []
    seen_flags = 0
    suppressed: list[dict] = []
    for run in [*owed, detect_run_id]:
        flags = outbox.read_flags(lake, run)
        seen_flags += len(flags)
        decided, suppressed_now = outbox.decide(flags, history + new, now, settings.alerts)
        raised = [outbox.build_alert(f, why, prev, now) for f, why, prev in decided]
        new += [a for a in raised if a["alert_id"] not in known]  # the same detection run raised twice
        known |= {a["alert_id"] for a in raised}
        suppressed += suppressed_now
    if new:
        outbox.write_outbox(lake, history + new, run_id, settings.lock_wait_seconds)
    outbox.settle(lake, [*owed, *([detect_run_id] if detect_run_id else [])])
    faults.point("alerts.raised")
    if owed:
        _logger().warning("took up the alerts of %d detection runs cut short: %s", len(owed), ", ".join(owed))
    _logger().info("%d flags: %d new alerts, %d suppressed", seen_flags, len(new), len(suppressed))
    return {
        "detect_run_id": flags[0]["detect_run_id"] if flags else detect_run_id,
        "flags": seen_flags,
        "new": [a["alert_id"] for a in new],
        "suppressed": len(suppressed),
    }


@task(cache_policy=NO_CACHE)
def deliver_alerts(run_id: str, settings: Settings, now: datetime) -> dict:
    """Deliver every undelivered alert; record the outcome in the outbox. Never raises for a delivery failure."""
    lake = Lake(settings.lake, settings.keep_versions)
    rows = outbox.read_outbox(lake)
    todo = outbox.undelivered(rows)
    names = watchlist_names(lake, settings) if todo else {}
    error = outbox.deliver(todo, webhook_for(settings), names, now)
    faults.point("alerts.sent")  # sent, not yet marked: the at-least-once window
    if todo:
        outbox.write_outbox(lake, rows, run_id, settings.lock_wait_seconds)
    if error:
        _logger().error("alert delivery failed: %s", error)
    resend_failures(settings)
    return {"alerts": todo, "names": names, "error": error}


def heartbeat(run_id: str, now: datetime, raised: dict, sent: dict, settings: Settings) -> str:
    """The line every run leaves, alerts or not."""
    done = sum(a["status"] == "delivered" for a in sent["alerts"])
    retried = len(sent["alerts"]) - len(raised["new"])
    where = (
        f"webhook {redact(settings.alerts.webhook_url)}" if settings.alerts.webhook_url else "no webhook (files only)"
    )
    text = (
        f"enumwatch alerts run {run_id} at {now:%Y-%m-%d %H:%M:%S} UTC for {raised['detect_run_id'] or 'no detection run'}: "
        f"{raised['flags']} flags, {len(raised['new'])} new alerts, {raised['suppressed']} suppressed, {retried} retried; "
        f"{done} delivered, {len(sent['alerts']) - done} undelivered; {where}"
    )
    return text + (f"; ERROR {sent['error']}" if sent["error"] else "")


def write_run_files(
    settings: Settings, run_id: str, now: datetime, line: str, alerts: list[dict], names: dict
) -> list[Path]:
    """`<out>/<run_id>.json` and `.csv` (alerts plus the heartbeat row), and `<out>/heartbeat.json`."""
    out = settings.alerts.directory(settings.lake)
    out.mkdir(parents=True, exist_ok=True)
    docs = [outbox.as_message(a, names) for a in alerts]
    doc = {"run_id": run_id, "ran_at": now.isoformat(), "heartbeat": line, "alerts": docs}
    paths = [out / f"{run_id}.json", out / f"{run_id}.csv", out / "heartbeat.json"]
    paths[0].write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    with paths[1].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for d in docs:
            writer.writerow(
                {
                    **d,
                    "kind": "alert",
                    "run_id": run_id,
                    "rules": " ".join(d["rules"]),
                    "exposed_names": "; ".join(d["exposed_names"]),
                }
            )
        writer.writerow({"kind": "heartbeat", "run_id": run_id, "created_at": now.isoformat(), "message": line})
    paths[2].write_text(
        json.dumps({"run_id": run_id, "ran_at": now.isoformat(), "heartbeat": line}, ensure_ascii=False)
    )
    return paths[:2]


@flow(name="alerts", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def alerts_flow(
    detect_run_id: str | None = None, lake: str | None = None, config: str | None = None, raise_new: bool = True
) -> dict:
    """Alert on a detection run's flags (default: the latest) and deliver what is owed; returns the run summary."""
    settings = load_settings(Path(config) if config else None).with_overrides(lake=Path(lake) if lake else None)
    store = Lake(settings.lake, settings.keep_versions)
    run_id, now = new_run_id("alerts"), datetime.now(timezone.utc)
    with outbox.outbox_lock(store):  # one deliverer at a time: an alert is sent once
        if raise_new:
            raised = raise_alerts(run_id, settings, detect_run_id, now)
        else:
            raised = {"detect_run_id": None, "flags": 0, "new": [], "suppressed": 0}
        sent = deliver_alerts(run_id, settings, now)
    line = heartbeat(run_id, now, raised, sent, settings)
    files = write_run_files(settings, run_id, now, line, sent["alerts"], sent["names"])
    create_table_artifact(
        table=[_artifact_row(a) for a in sent["alerts"]] or [{"heartbeat": line}],
        key="enumwatch-alerts",
        description=line,  # handles, not names: the Prefect database is read more widely than the alert channel
    )
    print(line)
    delivered = sum(a["status"] == "delivered" for a in sent["alerts"])
    return {
        **raised,
        "run_id": run_id,
        "new": len(raised["new"]),
        "delivered": delivered,
        "undelivered": len(sent["alerts"]) - delivered,
        "error": sent["error"],
        "files": [str(p) for p in files],
    }


def _artifact_row(a: dict) -> dict:
    return {
        "severity": a["severity"], "score": a["score"], "entity": f"{a['entity_type']} {a['entity_value']}",
        "rules": ", ".join(a["rules"]), "hits": a["hits"], "watchlist_exposed": len(a.get("watchlist_hit_keys") or []),
        "reason": a["reason"], "status": a["status"], "attempts": a["attempts"], "last_error": a["last_error"] or "",
        "investigate": a["investigate"],
    }  # fmt: skip


# --- daily report ------------------------------------------------------------------------------
def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def build_report(
    flags: list[dict],
    alerts: list[dict],
    failures: list[dict],
    beat: dict | None,
    names: dict | None,
    now: datetime,
    hours: float,
) -> str:
    """The report as Markdown; with `names` None, watchlist people are counted instead of named."""
    latest: dict[tuple, dict] = {}
    for f in flags:
        key = (f["entity_type"], f["entity_value"])
        if not f["shadow"] and (key not in latest or f["detected_at"] > latest[key]["detected_at"]):
            latest[key] = f
    ranked = sorted(latest.values(), key=lambda f: (-outbox.RANK[f["severity"]], -f["score"], f["entity_value"]))
    by_sev = ", ".join(f"{sum(f['severity'] == s for f in ranked)} {s}" for s in reversed(outbox.SEVERITIES))
    owed = [a for a in alerts if a["status"] != "delivered"]
    lines = [
        f"# enumwatch report: the {hours:g} h to {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- detection runs that flagged something: {len({f['detect_run_id'] for f in flags})}",
        f"- flagged entities: {len(ranked)} ({by_sev})",
        f"- alerts raised: {len(alerts)}; delivered {len(alerts) - len(owed)}, undelivered {len(owed)}",
        f"- pipeline failures: {len(failures)}",
        f"- last alerts run: {beat['heartbeat'] if beat else 'none recorded: alerts are not running'}",
        "",
        "## Flagged entities (latest flag of each)",
        "",
        "| severity | score | entity | rules | lookups | distinct IDs | hits | watchlist data returned | investigate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in ranked:
        hit_keys = f.get("watchlist_hit_keys") or []
        exposed = ", ".join(names.get(k, k) for k in hit_keys) if names is not None else str(len(hit_keys))
        cells = (f["severity"], f["score"], f"{f['entity_type']} {f['entity_value']}", ", ".join(f["rules"]), f["lookups"],
                 f["distinct_ids"], f["hits"], exposed, f"`{outbox.investigate_command(f['entity_type'], f['entity_value'])}`")  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if owed:
        lines += ["", "## Undelivered alerts", ""] + [
            f"- {a['alert_id']} {a['summary']}: {a['status']}, {a['attempts']} attempts, {a['last_error'] or ''}"
            for a in owed
        ]
    if failures:
        lines += ["", "## Pipeline failures", ""] + [
            f"- {d['failed_at']} {d['flow']} {d['flow_run']}: {d['message'].splitlines()[1]}" for d in failures
        ]
    return "\n".join(lines) + "\n"


@flow(name="report", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def report_flow(lake: str | None = None, config: str | None = None, hours: float = 24) -> str:
    """Write the last `hours` of flags, alerts and failures as `<out>/report-<date>.md` and a Prefect artifact; return the path."""
    settings = load_settings(Path(config) if config else None).with_overrides(lake=Path(lake) if lake else None)
    store = Lake(settings.lake, settings.keep_versions)
    now = datetime.now(timezone.utc)
    start = now - timedelta(hours=hours)
    out = settings.alerts.directory(settings.lake)
    out.mkdir(parents=True, exist_ok=True)
    flags = outbox.read_flags(store, since=start)
    alerts = [a for a in outbox.read_outbox(store) if a["created_at"] >= start]
    failures = [
        d
        for p in sorted(out.glob("failure-*.json"))
        if datetime.fromisoformat((d := json.loads(p.read_text()))["failed_at"]) >= start
    ]
    beat = json.loads((out / "heartbeat.json").read_text()) if (out / "heartbeat.json").exists() else None
    path = out / f"report-{now:%Y-%m-%d}.md"
    path.write_text(build_report(flags, alerts, failures, beat, watchlist_names(store, settings), now, hours))
    create_markdown_artifact(build_report(flags, alerts, failures, beat, None, now, hours), key="enumwatch-daily-report",
                             description=f"enumwatch report to {now:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"report written to {path}")
    return str(path)
