"""The `enumwatch` command line: one place that turns flags into settings and calls flows and jobs.

Errors a user can fix (missing source, changed file, bad watchlist, missing Java) end in one line on
stderr and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

EXIT_USAGE = 2


def _quiet_prefect_defaults() -> None:
    # Offline machines: no analytics calls; a temporary local server unless PREFECT_API_URL is set.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # The temporary server's 20 s default start-up limit is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _settings(args: argparse.Namespace):
    from enumwatch.settings import load_settings

    settings = load_settings(args.config)
    return settings.with_overrides(lake=Path(args.lake) if getattr(args, "lake", None) else None)


def _abs(path) -> str | None:
    return str(Path(path).absolute()) if path else None


def _require_source(source: Path) -> None:
    from enumwatch.discovery import SourceError

    # Checked before the flow starts, so a typo ends in one line, not Prefect's task tracebacks.
    if not source.exists() and not source.is_symlink():
        raise SourceError(f"source path does not exist: {source}")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run the ingest flow and print its summary."""
    from pipelines.ingest import ingest_flow

    source = Path(args.source).absolute()
    _require_source(source)
    summary = ingest_flow(
        source=str(source),
        fmt=args.format,
        lake=args.lake,
        watchlist=str(Path(args.watchlist).absolute()) if args.watchlist else None,
        reingest=args.reingest,
        config=str(args.config) if args.config else None,
    )
    print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """The short human summary of an ingest run."""
    lines = [
        f"ingest {summary['run_id']}: {summary['files']} files, {summary['lines']} lines, "
        f"{summary['parsed']} parsed, {summary['quarantined']} quarantined, {summary['blank']} blank, "
        f"{summary['seconds']} s -> {summary['lake']}",
    ]
    if summary["files_already_ingested"]:
        lines.append(f"  {summary['files_already_ingested']} files already ingested with the same content: skipped")
    for item in summary["files_unreadable"]:
        lines.append(f"  unreadable, skipped: {item}")
    for item in summary["files_with_read_errors"]:
        lines.append(f"  read broke off, lines before the break kept: {item}")
    if summary["files_skipped"]:
        lines.append(f"  {summary['files_skipped']} files ignored for their extension")
    for warning in summary["warnings"]:
        lines.append(f"  warning: {warning}")
    if summary.get("data_docs"):
        lines.append(f"  data docs: {summary['data_docs']}")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "asDict"):
        return {k: _jsonable(v) for k, v in value.asDict().items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def cmd_sql(args: argparse.Namespace) -> int:
    """Run Spark SQL over the lake tables by name."""
    from enumwatch.lake import Lake
    from jobs.session import get_spark
    from schemas import LAKE_TABLES

    settings = _settings(args)
    lake = Lake(settings.lake)
    if not lake.root.exists():
        print(f"enumwatch: no lake at {lake.root} (run 'enumwatch ingest' first or pass --lake)", file=sys.stderr)
        return 1
    spark = get_spark(settings, "enumwatch-sql")
    if args.query is None:
        from enumwatch.cli_analyst import sql_prompt

        return sql_prompt(spark, lake, limit=args.limit)
    for name in LAKE_TABLES:
        lake.read(spark, name).createOrReplaceTempView(name)
    result = spark.sql(args.query)
    if args.json:
        out = sys.stdout
        out.write("[")
        for i, row in enumerate(result.toLocalIterator()):
            out.write(("," if i else "") + "\n" + json.dumps(_jsonable(row.asDict(recursive=True)), ensure_ascii=False))
        out.write("\n]\n")
    else:
        result.show(args.limit, truncate=False)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    """Run the detect flow and print a one-line summary plus the flags."""
    from enumwatch.errors import UserError
    from pipelines.detect import detect_flow

    if getattr(args, "date_from", None) and args.date_to < args.date_from:
        raise UserError(f"--to {args.date_to} is before --from {args.date_from}")
    summary = detect_flow(
        lake=args.lake,
        watchlist=_abs(args.watchlist),
        allowlist=_abs(args.allowlist),
        rules=_abs(args.rules),
        config=_abs(args.config),
        full=getattr(args, "full", False),
        backfill_from=getattr(args, "date_from", None),
        backfill_to=getattr(args, "date_to", None),
    )
    print(format_detect_summary(summary))
    return 0


def format_detect_summary(summary: dict) -> str:
    """One line about a detection run, and where its Data Docs are."""
    tables = summary["tables"]
    if not tables:
        return f"detect {summary['run_id']}: nothing new to detect ({summary['mode']}), {summary['seconds']} s"
    dates = summary["dates"]
    shown = ", ".join(dates[:5]) + (f" and {len(dates) - 5} more" if len(dates) > 5 else "")
    return (
        f"detect {summary['run_id']} ({summary['mode']}, event dates {shown}): {tables['lookups']} lookups, "
        f"{tables['entity_windows']} entity windows, {tables['campaigns']} campaigns, "
        f"{tables['flagged_clients']} flagged ({tables['allowlisted_hits']} allowlisted kept for audit), "
        f"{tables['exposures']} exposures, {summary['seconds']} s -> {summary['lake']}"
    ) + (f"\n  data docs: {summary['data_docs']}" if summary.get("data_docs") else "")


def cmd_run(args: argparse.Namespace) -> int:
    """Ingest then detect in one parent flow, then show the flags."""
    from pipelines.run import run_flow

    source = Path(args.source).absolute()
    _require_source(source)
    result = run_flow(
        source=str(source),
        fmt=args.format,
        lake=args.lake,
        watchlist=_abs(args.watchlist),
        allowlist=_abs(args.allowlist),
        rules=_abs(args.rules),
        config=_abs(args.config),
    )
    print(format_summary(result["ingest"]))
    if result["detect"].get("data_docs"):
        print(f"detect data docs: {result['detect']['data_docs']}")
    args.json, args.min_severity, args.shadow = False, "low", False
    return cmd_flagged(args)


def cmd_flagged(args: argparse.Namespace) -> int:
    """Print the latest detection run's flags: a readable list, or --json."""
    from enumwatch.lake import Lake
    from enumwatch.pseudonym import load_key
    from pyspark.sql import functions as F

    from enumwatch.report import as_records, describe, latest_flags, to_json, watchlist_names
    from jobs.session import get_spark

    settings = _settings(args)
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


def cmd_generate(args: argparse.Namespace) -> int:
    """Write deterministic sample traffic with planted attacks and labels."""
    from enumwatch.generate import main as generate_main

    argv = ["--out", str(args.out), "--days", str(args.days), "--scale", str(args.scale), "--seed", str(args.seed)]
    return generate_main(argv)


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a sample, ingest it on the embedded defaults and show what it holds."""
    from enumwatch.demo import run_demo

    return run_demo(Path(args.out), lake=args.lake, config=args.config)


# Modules that add subcommands with a `register(subparsers)` function, imported only when parsing.
EXTENSIONS: tuple[str, ...] = ("enumwatch.cli_oncall", "enumwatch.cli_analyst")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="enumwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML config overriding config/enumwatch.toml")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest access logs into the lake")
    p.add_argument("--source", required=True, help="a log file, or a directory searched recursively")
    p.add_argument("--format", required=True, choices=("jsonl", "combined"))
    p.add_argument("--lake", help="lake directory (default ./lake or ENUMWATCH_LAKE)")
    p.add_argument("--watchlist", help="CSV with a 'name' column of watched people")
    p.add_argument("--reingest", action="store_true", help="replace the rows of files already ingested")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("sql", help="run Spark SQL over the lake tables")
    p.add_argument("query", nargs="?", help="the statement; without it, an interactive prompt")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print a JSON array of row objects, nothing else")
    p.add_argument("--limit", type=int, default=100, help="rows shown without --json")
    p.set_defaults(func=cmd_sql)

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

    p = sub.add_parser("flagged", help="the latest detection run's flagged clients")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print a JSON array of flag objects, nothing else")
    p.add_argument("--min-severity", default="low", choices=("low", "medium", "high", "critical"))
    p.add_argument("--shadow", action="store_true", help="include flags raised only by shadow rules")
    p.set_defaults(func=cmd_flagged)

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
    for module in EXTENSIONS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `enumwatch` console script."""
    _quiet_prefect_defaults()
    args = build_parser().parse_args(argv)
    from enumwatch.allowlist import AllowlistError
    from enumwatch.discovery import SourceError
    from enumwatch.errors import UserError
    from enumwatch.lake import LakeError
    from enumwatch.pseudonym import PseudonymKeyError
    from enumwatch.rules import RulesError
    from enumwatch.settings import ConfigError
    from enumwatch.watchlist import WatchlistError
    from jobs.quality import QualityGateError
    from jobs.session import JavaMissingError

    try:
        return args.func(args)
    except (
        SourceError,
        LakeError,
        PseudonymKeyError,
        ConfigError,
        WatchlistError,
        JavaMissingError,
        QualityGateError,
        RulesError,
        AllowlistError,
        UserError,
    ) as exc:
        print(f"enumwatch: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
