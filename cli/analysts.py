"""The analysts' commands: `sql` (a query or the prompt), `serve-sql`, `investigate`, `lookup-id`, `export-blocklist`.

Each command turns flags into settings and calls one library function in `analyst/`, so the work
itself is testable without the CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from cli.args import existing_lake, settings_from_args
from cli.output import jsonable
from core.allowlist import ENTITY_TYPES
from core.rules import SEVERITIES

QUIT = {"exit", "quit", "\\q"}


def cmd_sql(args: argparse.Namespace) -> int:
    """Run Spark SQL over the lake tables by name; with no query, the interactive prompt."""
    from jobs.session import get_spark
    from schemas import LAKE_TABLES

    settings = settings_from_args(args)
    lake = existing_lake(settings)
    spark = get_spark(settings, "enumwatch-sql")
    if args.query is None:
        return sql_prompt(spark, lake, limit=args.limit)
    for name in LAKE_TABLES:
        lake.read(spark, name).createOrReplaceTempView(name)
    result = spark.sql(args.query)
    if args.json:
        out = sys.stdout
        out.write("[")
        for i, row in enumerate(result.toLocalIterator()):
            out.write(("," if i else "") + "\n" + json.dumps(jsonable(row.asDict(recursive=True)), ensure_ascii=False))
        out.write("\n]\n")
    else:
        result.show(args.limit, truncate=False)
    return 0


# --- enumwatch sql (no query): the prompt --------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def sql_prompt(spark, lake, *, limit: int = 100, stdin=None) -> int:
    """Read statements (ended by ';' or a blank line), run each, print its rows; 'exit' or EOF quits."""
    from pyspark.logger import PySparkLogger

    from analyst.sqlserver import sync_temp_views

    stdin = stdin or sys.stdin
    interactive = stdin.isatty()
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)  # one line per error is printed below
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())
    versions = sync_temp_views(spark, lake)
    print(
        f"Spark SQL over {lake.root}: {', '.join(versions)}.\n"
        "End a statement with ';' or a blank line; 'exit' or Ctrl-D quits.",
        file=sys.stderr,
    )
    buffer: list[str] = []

    def read(prompt: str) -> str | None:
        if interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = stdin.readline()
        return None if line == "" else line.rstrip("\n")

    def run(text: str) -> None:
        nonlocal versions
        versions = sync_temp_views(spark, lake, versions)  # a run may have published since
        try:
            result = spark.sql(text)
            if result.columns:
                result.show(limit, truncate=False)
            else:
                print("OK")
        except KeyboardInterrupt:
            spark.sparkContext.cancelAllJobs()
            print("cancelled", file=sys.stderr)
        except Exception as exc:  # a bad statement must not end the session
            print(f"error: {_first_line(exc)}", file=sys.stderr)
        sys.stdout.flush()

    while True:
        try:
            line = read("   ...> " if buffer else "sql> ")
        except KeyboardInterrupt:
            buffer.clear()
            print(file=sys.stderr)
            continue
        if line is None:
            break
        stripped = line.strip()
        if not buffer and stripped.rstrip(";").strip().lower() in QUIT:
            return 0
        if stripped:
            buffer.append(line)
        if buffer and (not stripped or stripped.endswith(";")):
            text = "\n".join(buffer).strip().rstrip(";").strip()
            buffer.clear()
            if text:
                run(text)
    if buffer and "\n".join(buffer).strip().rstrip(";").strip():
        run("\n".join(buffer).strip().rstrip(";"))
    return 0


# --- serve-sql ---------------------------------------------------------------------------------
def cmd_serve_sql(args: argparse.Namespace) -> int:
    """Start the Thrift JDBC server over the lake and keep its views on the current versions until stopped."""
    from py4j.protocol import Py4JError

    from analyst.sqlserver import check_port_free, start_server

    settings = settings_from_args(args)
    lake = existing_lake(settings)
    check_port_free(args.host, args.port)
    print(
        f"enumwatch: starting the Spark Thrift server on {args.host}:{args.port} (this takes a minute)...",
        file=sys.stderr,
    )
    try:
        server = start_server(settings, lake, host=args.host, port=args.port)
    except KeyboardInterrupt:
        print("enumwatch: interrupted while starting; nothing is serving", file=sys.stderr)
        return 130
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tables = [name for name, version in server.versions.items() if version is not None]
    print(f"serving {len(tables)} tables of {lake.root} at {server.url}", flush=True)
    print(
        f"  beeline -u {server.url} -e 'SHOW TABLES'    (no authentication: keep it on loopback; Ctrl-C stops)",
        flush=True,
    )
    rc = 0
    try:
        while not stop.wait(args.poll):
            changed = server.refresh()
            if changed:
                print(f"new versions now served: {', '.join(changed)}", flush=True)
    except KeyboardInterrupt:
        pass
    except Py4JError as exc:  # the JVM died under us (killed, out of memory)
        print(f"enumwatch: the Spark driver went away, the SQL server is down: {_first_line(exc)}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        print("enumwatch: SQL server stopped", file=sys.stderr)
    return rc


# --- investigate / lookup-id -------------------------------------------------------------------
def cmd_investigate(args: argparse.Namespace) -> int:
    """Print one entity's activity, flags, targets and relations; optionally write the HTML page."""
    from analyst.investigate import investigate
    from analyst.investigate_text import render_text
    from analyst.report import to_json
    from core.pseudonym import load_key
    from core.watchlist import watchlist_names
    from jobs.session import get_spark

    settings = settings_from_args(args)
    lake = existing_lake(settings)
    if args.entity_type == "watchlist":
        return _investigate_person(args, settings, lake)
    spark = get_spark(settings, "enumwatch-investigate")
    names = watchlist_names(lake.watchlist_path(), load_key(settings))
    found = investigate(spark, lake, args.entity_type, args.entity_value, names, top=args.top)
    if args.html:
        from analyst.investigate_html import render_html
        from analyst.investigate_text import write_text

        write_text(Path(args.html), render_html(found))
        print(
            f"enumwatch: wrote {Path(args.html).absolute()} (open it in a browser; it needs no network)",
            file=sys.stderr,
        )
    print(to_json(found) if args.json else render_text(found))
    return 0


def _investigate_person(args: argparse.Namespace, settings, lake) -> int:
    """`investigate watchlist NAME`: the name is hashed here with the lake's key; only hashes reach Spark."""
    from analyst.lookup_id import check_key
    from analyst.report import to_json
    from analyst.watchlist_person import investigate_person, render_person
    from core.errors import UserError
    from core.pseudonym import load_key
    from core.watchlist import watchlist_names
    from jobs.session import get_spark

    if args.html:
        raise UserError("--html shows one entity; for a watchlist person use the text or --json")
    key = load_key(settings)
    check_key(lake, key)
    raw = _read_id_number(args.entity_value)
    spark = get_spark(settings, "enumwatch-investigate")
    found = investigate_person(spark, lake, key, raw, top=args.top)
    on_watchlist = found["watchlist_key"] in watchlist_names(lake.watchlist_path(), key)
    print(to_json(found) if args.json else render_person(found, on_watchlist))
    return 0


def _read_id_number(arg: str) -> str:
    if arg != "-":
        return arg
    return sys.stdin.readline()


def cmd_lookup_id(args: argparse.Namespace) -> int:
    """Answer whether an ID number was looked up, by whom, when, and whether data was returned."""
    from analyst.lookup_id import check_key, lookup_id, render_lookup
    from analyst.report import to_json
    from core.pseudonym import load_key
    from jobs.session import get_spark

    settings = settings_from_args(args)
    lake = existing_lake(settings)
    key = load_key(settings)
    check_key(lake, key)
    raw = _read_id_number(args.id_number)
    spark = get_spark(settings, "enumwatch-lookup-id")
    answer = lookup_id(spark, lake, key, raw)
    print(to_json(answer) if args.json else render_lookup(answer))
    return 0


# --- export-blocklist --------------------------------------------------------------------------
def cmd_export_blocklist(args: argparse.Namespace) -> int:
    """Write the latest detection run's flagged IPs, client ids and devices for nginx, a WAF or a script."""
    from datetime import datetime, timezone

    from analyst.blocklist import build_blocklist, latest_flag_rows, render, write_atomic
    from core.allowlist import load_allowlist
    from core.errors import UserError

    if args.only and args.format != "plain":
        raise UserError("--only goes with --format plain")
    settings = settings_from_args(args)
    lake = existing_lake(settings)
    now = datetime.now(timezone.utc)
    run_id, rows = latest_flag_rows(lake)
    allow = load_allowlist(Path(args.allowlist) if args.allowlist else None, now.date())
    blocklist = build_blocklist(run_id, rows, args.min_severity, allow)
    text = render(blocklist, args.format, now=now, only=args.only)
    if args.out:
        write_atomic(Path(args.out), text)
    else:
        sys.stdout.write(text)
    for note in blocklist.notes():
        print(f"enumwatch: {note}", file=sys.stderr)
    where = f" to {Path(args.out).absolute()}" if args.out else ""
    print(
        f"enumwatch: {len(blocklist.ips)} IPs, {len(blocklist.client_ids)} client ids, {len(blocklist.device_ids)} devices "
        f"from detection run {run_id} (severity >= {args.min_severity}){where}",
        file=sys.stderr,
    )
    return 0


def register(sub) -> None:
    """Add the analysts' subcommands to the `enumwatch` parser."""
    from analyst.sqlserver import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser("sql", help="run Spark SQL over the lake tables")
    p.add_argument("query", nargs="?", help="the statement; without it, an interactive prompt")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true", help="print a JSON array of row objects, nothing else")
    p.add_argument("--limit", type=int, default=100, help="rows shown without --json")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser(
        "serve-sql", help="serve the lake tables over JDBC (Spark Thrift server) for beeline, DBeaver, Superset"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default loopback only; there is no authentication)"
    )
    p.add_argument("--lake")
    p.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve_sql)

    p = sub.add_parser(
        "investigate",
        help="one entity in full: activity, rules fired or closest to firing, targets, related entities; "
        "or 'watchlist NAME': who looked that person up",
    )
    p.add_argument("entity_type", choices=(*ENTITY_TYPES, "watchlist"))
    p.add_argument(
        "entity_value",
        help="the entity; for watchlist, the person's name (- reads it from stdin, out of shell history)",
    )
    p.add_argument("--lake")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with a timeline")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object instead of text")
    p.add_argument("--top", type=int, default=20, help="ID numbers and related entities listed (default 20)")
    p.set_defaults(func=cmd_investigate)

    p = sub.add_parser("lookup-id", help="was this ID number looked up, by whom, when, and was data returned")
    p.add_argument("id_number", help="the ID number, or - to read it from stdin (keeps it out of shell history)")
    p.add_argument("--lake")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lookup_id)

    p = sub.add_parser(
        "export-blocklist", help="the latest run's flagged entities as nginx deny/map, plain lists or WAF JSON"
    )
    p.add_argument("--format", default="nginx", choices=("nginx", "plain", "json"), help="default nginx")
    p.add_argument("--min-severity", default="high", choices=SEVERITIES, help="default high")
    p.add_argument("--lake")
    p.add_argument("--allowlist", help="CSV entity_type,entity_value,reason[,expires]: never exported")
    p.add_argument("--out", metavar="FILE", help="write here (atomically) instead of stdout")
    p.add_argument("--only", choices=("ip", "client_id", "device_id"), help="plain: one bare list of this kind")
    p.set_defaults(func=cmd_export_blocklist)
