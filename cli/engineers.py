"""The data engineers' commands: `ingest`, `detect`, `backfill`, `run`, `compact`, `retention`, `generate`, `demo`.

Each one starts a Prefect flow (or the generator) with paths and switches; flows and Spark are
imported only when a command runs, so `enumwatch --help` answers at once.
"""

from __future__ import annotations

import argparse
import threading
from datetime import date, datetime, timezone
from pathlib import Path

from cli.args import absolute, existing_lake, require_source, settings_from_args
from cli.oncall import cmd_flagged
from cli.output import format_detect_summary, format_summary
from core.errors import UserError
from schemas import LAKE_TABLES


def prestart_spark(args: argparse.Namespace) -> None:
    """Start the Spark session in the background while Prefect starts its temporary server.

    Both take seconds and neither needs the other; the flow's own get_spark then finds the session
    (or waits for it). A failure here is left for the flow to meet and report.
    """
    from jobs.session import get_spark

    def start() -> None:
        try:
            get_spark(settings_from_args(args))
        except Exception:  # noqa: BLE001,S110 - the flow's get_spark raises it again, with the one-line error
            pass

    threading.Thread(target=start, name="spark-prestart", daemon=True).start()


def run_parameters(args: argparse.Namespace, source: Path) -> dict:
    """The `run` flow's parameters from the command line (paths made absolute: flows may run elsewhere)."""
    return {
        "source": str(source),
        "fmt": args.format,
        "lake": args.lake,
        "watchlist": absolute(args.watchlist),
        "allowlist": absolute(args.allowlist),
        "rules": absolute(args.rules),
        "config": absolute(args.config),
    }


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run the ingest flow and print its summary."""
    from pipelines.ingest import ingest_flow

    source = Path(args.source).absolute()
    require_source(source)
    prestart_spark(args)
    summary = ingest_flow(
        source=str(source),
        fmt=args.format,
        lake=args.lake,
        watchlist=absolute(args.watchlist),
        reingest=args.reingest,
        config=str(args.config) if args.config else None,
    )
    print(format_summary(summary))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    """Run the detect flow and print a one-line summary plus the flags."""
    from pipelines.detect import detect_flow

    if getattr(args, "date_from", None) and args.date_to < args.date_from:
        raise UserError(f"--to {args.date_to} is before --from {args.date_from}")
    existing_lake(settings_from_args(args))  # a mistyped --lake is one line, not a failed flow run that pages
    prestart_spark(args)
    summary = detect_flow(
        lake=args.lake,
        watchlist=absolute(args.watchlist),
        allowlist=absolute(args.allowlist),
        rules=absolute(args.rules),
        config=absolute(args.config),
        full=getattr(args, "full", False),
        backfill_from=getattr(args, "date_from", None),
        backfill_to=getattr(args, "date_to", None),
    )
    print(format_detect_summary(summary))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Ingest then detect in one parent flow, then show the flags."""
    from pipelines.run import run_flow

    source = Path(args.source).absolute()
    require_source(source)
    prestart_spark(args)
    result = run_flow(**run_parameters(args, source))
    print(format_summary(result["ingest"]))
    if result["detect"].get("data_docs"):
        print(f"detect data docs: {result['detect']['data_docs']}")
    if not result["detect"]["tables"]:
        print(format_detect_summary(result["detect"]))
        if not result["ingest"]["files"] and not result["detect"]["dates"]:
            return 0  # nothing ingested, nothing detected: there are no new flags to show
    args.json, args.min_severity, args.shadow = False, "low", False
    return cmd_flagged(args)


def cmd_compact(args: argparse.Namespace) -> int:
    """Run the compact flow: crowded partitions rewritten into few files, every row kept."""
    from pipelines.maintenance import compact_flow

    existing_lake(settings_from_args(args))  # a mistyped --lake ends in one line, not in a new empty lake
    s = compact_flow(lake=absolute(args.lake), config=absolute(args.config), table=args.table)
    print(
        f"compact {s['run_id']}: {s['partitions']} partitions in {len(s['compacted'])} of {s['tables']} tables, "
        f"{s['files_before']} -> {s['files_after']} files, {s['rows']} rows kept, {s['seconds']} s -> {s['lake']}"
    )
    for table, parts in s["compacted"].items():
        print(f"  {table}: {', '.join(p or '(whole table)' for p in parts[:5])}{' ...' if len(parts) > 5 else ''}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Run the retention flow, or with --dry-run list what it would remove (reads only, no lock)."""
    from pipelines.maintenance import plan_retention, retention_flow

    settings = settings_from_args(args)
    existing_lake(settings)
    if args.dry_run:
        plan = plan_retention(settings, datetime.now(timezone.utc).date())
        for f in plan:
            what = f"{len(f.partitions)} partitions, " if LAKE_TABLES[f.table].partition_by else ""
            span = f" dated {f.first_date} .. {f.last_date}" if f.rows else ""
            print(f"{f.table}: keeps {f.retention_days} days (from {f.cutoff}); would remove {what}{f.rows} rows{span}")
        print(f"dry run: would remove {sum(f.rows for f in plan)} rows from {settings.lake}; nothing changed")
        return 0
    s = retention_flow(lake=absolute(args.lake), config=absolute(args.config))
    removed = ", ".join(f"{t} {n}" for t, n in s["removed"].items()) or "nothing was past its period"
    print(f"retention {s['run_id']}: {s['rows_removed']} rows removed ({removed}), {s['seconds']} s -> {s['lake']}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Write deterministic sample traffic with planted attacks and labels."""
    from generator.generate import main as generate_main

    argv = ["--out", str(args.out), "--days", str(args.days), "--scale", str(args.scale), "--seed", str(args.seed)]
    return generate_main(argv)


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a sample, ingest it on the embedded defaults and show what it holds."""
    from cli.demo import run_demo

    return run_demo(Path(args.out), lake=args.lake, config=args.config)


def register(sub) -> None:
    """Add the data engineers' subcommands to the `enumwatch` parser."""
    p = sub.add_parser("ingest", help="ingest access logs into the lake")
    p.add_argument("--source", required=True, help="a log file, or a directory searched recursively")
    p.add_argument("--format", required=True, choices=("jsonl", "combined"))
    p.add_argument("--lake", help="lake directory (default ./lake or ENUMWATCH_LAKE)")
    p.add_argument("--watchlist", help="CSV with a 'name' column of watched people")
    p.add_argument("--reingest", action="store_true", help="replace the rows of files already ingested")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("detect", help="find enumerating clients over the lake")
    p.add_argument("--lake")
    p.add_argument("--watchlist", help="CSV with a 'name' column (remembered for showing names)")
    p.add_argument("--allowlist", help="CSV entity_type,entity_value,reason[,expires]")
    p.add_argument("--rules", help="rules YAML (default config/rules.yaml)")
    p.add_argument("--full", action="store_true", help="recompute every date, not only what new data touched")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("backfill", help="recompute detection for a range of event dates (idempotent)")
    p.add_argument("--from", dest="date_from", required=True, type=date.fromisoformat, help="first date, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, type=date.fromisoformat, help="last date, YYYY-MM-DD")
    p.add_argument("--lake")
    p.add_argument("--watchlist")
    p.add_argument("--allowlist")
    p.add_argument("--rules")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("run", help="ingest, then detect, in one parent flow")
    p.add_argument("--source", required=True)
    p.add_argument("--format", required=True, choices=("jsonl", "combined"))
    p.add_argument("--lake")
    p.add_argument("--watchlist")
    p.add_argument("--allowlist")
    p.add_argument("--rules")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compact", help="rewrite partitions that hold too many files into few (rows unchanged)")
    p.add_argument("--lake")
    p.add_argument("--table", choices=sorted(LAKE_TABLES), help="only this table (default: every table)")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("retention", help="remove data older than each table's retention period, and record it")
    p.add_argument("--lake")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("generate", help="write deterministic sample traffic with planted attacks")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="generate a sample and run the pipeline end to end")
    p.add_argument("--out", default="demo", help="where the sample goes (default ./demo)")
    p.add_argument("--lake", help="lake directory (default ./lake)")
    p.set_defaults(func=cmd_demo)
