"""On-call subcommands: `enumwatch alerts` lists the outbox, `enumwatch deliver` retries what is still owed.

Both read the small `alerts` table with pyarrow, so they answer in a second, without Spark or Prefect.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from enumwatch.errors import UserError


class DeliveryError(UserError):
    """Some alerts are still undelivered after `enumwatch deliver`; they stay in the outbox."""


def _settings(args: argparse.Namespace):
    from enumwatch.settings import load_settings

    return load_settings(args.config).with_overrides(lake=Path(args.lake) if args.lake else None)


def cmd_alerts(args: argparse.Namespace) -> int:
    """Print the outbox, newest first: one line per alert, or --json."""
    from enumwatch import alerts as outbox
    from enumwatch.lake import Lake
    from pipelines.alerts import watchlist_names

    settings = _settings(args)
    lake = Lake(settings.lake, settings.keep_versions)
    rows = sorted(outbox.read_outbox(lake), key=lambda r: (r["created_at"], outbox.RANK[r["severity"]], r["score"]), reverse=True)
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
        state = r["status"] + (f" after {r['attempts']} attempts: {r['last_error']}" if r["status"] != "delivered" and r["attempts"] else "")
        print(f"{r['created_at']:%Y-%m-%d %H:%M} {r['alert_id']} [{state}] {r['summary']}\n    {r['investigate']}")
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    """Retry every undelivered alert now; exit 1 with the webhook's error if some are still owed."""
    from enumwatch import alerts as outbox
    from enumwatch.lake import Lake
    from pipelines.alerts import deliver_alerts, heartbeat, new_run_id, write_run_files

    settings = _settings(args)
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


def register(subparsers) -> None:
    """Add `alerts` and `deliver` to the enumwatch command line."""
    p = subparsers.add_parser("alerts", help="list on-call alerts (the outbox), newest first")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print a JSON array of alerts, nothing else")
    p.add_argument("--pending", action="store_true", help="only alerts not delivered yet")
    p.set_defaults(func=cmd_alerts)

    p = subparsers.add_parser("deliver", help="retry delivering pending alerts to the webhook now")
    p.add_argument("--lake")
    p.set_defaults(func=cmd_deliver)
