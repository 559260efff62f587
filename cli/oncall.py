"""On-call's commands: `flagged` lists the latest flags, `alerts` the outbox, `deliver` retries what is owed,
`status` says whether the pipeline needs a person.

`alerts`, `deliver` and `status` read files and small tables with pyarrow, so they answer in a
second, without Spark or Prefect.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from cli.args import settings_from_args
from core.errors import UserError
from core.rules import SEVERITIES


class DeliveryError(UserError):
    """Some alerts are still undelivered after `enumwatch deliver`; they stay in the outbox."""


def cmd_flagged(args: argparse.Namespace) -> int:
    """Print the latest detection run's flags: a readable list, or --json."""
    from pyspark.sql import functions as F

    from analyst.report import as_records, describe, latest_flags, to_json
    from core.lake import Lake
    from core.pseudonym import load_key
    from core.watchlist import watchlist_names
    from jobs.session import get_spark

    settings = settings_from_args(args)
    lake = Lake(settings.lake)
    if lake.current("flagged_clients") is None:
        print(f"enumwatch: no detection results in {lake.root} (run 'enumwatch detect' first)", file=sys.stderr)
        return 1
    spark = get_spark(settings, "enumwatch-flagged")
    # The newest detection run that recomputed anything, even if it flagged nobody.
    latest = lake.read(spark, "detect_runs").agg(F.max("detect_run_id")).first()[0]
    flags = latest_flags(lake.read(spark, "flagged_clients"), args.min_severity, args.shadow, latest)
    rows = [row.asDict(recursive=True) for row in flags.toLocalIterator()]
    records = as_records(rows, watchlist_names(lake.watchlist_path(), load_key(settings)))
    if args.json:
        print(to_json(records))
    elif not records:
        print("no flagged clients in the latest detection run")
    else:
        print(f"{len(records)} flagged in the latest detection run, most severe first:\n")
        print("\n\n".join(describe(r) for r in records))
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """Print the outbox, newest first: one line per alert, or --json."""
    from core.lake import Lake
    from delivery import outbox
    from pipelines.alerts import watchlist_names

    settings = settings_from_args(args)
    lake = Lake(settings.lake, settings.keep_versions)
    rows = sorted(
        outbox.read_outbox(lake), key=lambda r: (r["created_at"], outbox.RANK[r["severity"]], r["score"]), reverse=True
    )
    if args.pending:
        rows = [r for r in rows if r["status"] in outbox.UNDELIVERED]
    if args.json:
        names = watchlist_names(lake, settings) if rows else {}
        print(json.dumps([outbox.as_message(r, names) for r in rows], ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print("no undelivered alerts" if args.pending else f"no alerts in {lake.root}")
        return 0
    for r in rows:
        state = r["status"] + (
            f" after {r['attempts']} attempts: {r['last_error']}"
            if r["status"] != "delivered" and r["attempts"]
            else ""
        )
        print(f"{r['created_at']:%Y-%m-%d %H:%M} {r['alert_id']} [{state}] {r['summary']}\n    {r['investigate']}")
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    """Retry every undelivered alert now; exit 1 with the webhook's error if some are still owed."""
    from core.lake import Lake
    from delivery import outbox
    from pipelines.alerts import deliver_alerts, heartbeat, new_run_id, write_run_files

    settings = settings_from_args(args)
    lake = Lake(settings.lake, settings.keep_versions)
    run_id, now = new_run_id("deliver"), datetime.now(timezone.utc)
    with outbox.outbox_lock(lake):
        sent = deliver_alerts.fn(run_id, settings, now)
    raised = {"detect_run_id": None, "flags": 0, "new": [], "suppressed": 0}
    line = heartbeat(run_id, now, raised, sent, settings)
    files = write_run_files(settings, run_id, now, line, sent["alerts"], sent["names"])
    print(f"{line}\n  -> {files[0]}")
    if sent["error"]:
        raise DeliveryError(sent["error"])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the lake's health (or --json); exit 1 when something needs a person."""
    from delivery import health, outbox

    settings = settings_from_args(args)
    if not settings.lake.expanduser().is_dir():
        raise UserError(f"no lake at {settings.lake.expanduser().absolute()} (pass --lake or set ENUMWATCH_LAKE)")
    report = health.gather(settings)
    if args.json:
        print(json.dumps(outbox.jsonable({**report, "ok": not report["problems"]}), indent=1))
    else:
        print(health.render(report))
    return 1 if report["problems"] else 0


def register(subparsers) -> None:
    """Add `flagged`, `alerts`, `status` and `deliver` to the enumwatch command line."""
    p = subparsers.add_parser("flagged", help="the latest detection run's flagged clients")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print a JSON array of flag objects, nothing else")
    p.add_argument("--min-severity", default="low", choices=SEVERITIES)
    p.add_argument("--shadow", action="store_true", help="include flags raised only by shadow rules")
    p.set_defaults(func=cmd_flagged)

    p = subparsers.add_parser("alerts", help="list on-call alerts (the outbox), newest first")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print a JSON array of alerts, nothing else")
    p.add_argument("--pending", action="store_true", help="only alerts not delivered yet")
    p.set_defaults(func=cmd_alerts)

    p = subparsers.add_parser("status", help="lock, journal, staging, tables, disk, last runs, heartbeat, alerts")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("deliver", help="retry delivering pending alerts to the webhook now")
    p.add_argument("--lake")
    p.set_defaults(func=cmd_deliver)
