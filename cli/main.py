"""enumwatch: finds the clients that enumerate ID numbers or celebrity names through a lookup API.

The parser comes from one module per user role. Errors a user can fix (missing source, changed
file, bad watchlist, missing Java) end in one line on stderr and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import traceback
from pathlib import Path

from cli import analysts, engineers, oncall, watch
from cli.errorlog import hold_prefect_errors, write_error_file
from core import faults
from core.allowlist import AllowlistError
from core.discovery import SourceError
from core.errors import UserError
from core.lake import LakeError
from core.pseudonym import PseudonymKeyError
from core.rules import RulesError
from core.settings import ConfigError
from core.watchlist import WatchlistError

EXIT_USAGE = 2
EXIT_STDOUT_CLOSED = 141  # what a shell reports for a writer stopped by SIGPIPE
ROLES = (engineers, watch, analysts, oncall)
# Commands that run Prefect flows, whose console error records are held back (cli/errorlog.py).
FLOW_COMMANDS = ("ingest", "detect", "backfill", "run", "demo", "deliver")


def _quiet_prefect_defaults() -> None:
    # Offline machines: no analytics calls; a temporary local server unless PREFECT_API_URL is set.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # The temporary server's 20 s default start-up limit is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="enumwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML config overriding config/enumwatch.toml")
    parser.add_argument(
        "--verbose", action="store_true", help="show Prefect's error records and the traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for role in ROLES:
        role.register(sub)
    return parser


def _fixable() -> tuple[type[BaseException], ...]:
    # Spark- and GX-side errors are imported here, when a command has already loaded them anyway.
    from jobs.quality import QualityGateError
    from jobs.session import JavaMissingError

    return (
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
    )


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (the kernel reports an error condition on it)."""
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `enumwatch` console script."""
    _quiet_prefect_defaults()
    faults.arm(os.environ.get("ENUMWATCH_FAULT"))  # crash tests only: kill -9 at a named point (core/faults)
    args = build_parser().parse_args(argv)
    with hold_prefect_errors(args.command in FLOW_COMMANDS and not args.verbose) as held:
        try:
            return args.func(args)
        except BrokenPipeError:
            if not _stdout_closed():
                raise  # another pipe (a webhook's socket, a child process): a real error
            # Whoever read the output stopped early (`enumwatch flagged --json | head`): what they read
            # stands. Python would fail again flushing stdout at exit, so it points at /dev/null now.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_STDOUT_CLOSED
        except _fixable() as exc:
            if args.verbose:
                traceback.print_exception(exc, file=sys.stderr)
            where = ""
            if held.records:  # the error came out of a flow run: keep what Prefect said, and the traceback
                path = write_error_file(args.command, exc, held.records)
                held.discard()
                where = f" (traceback: {path})" if path else ""
            print(f"enumwatch: {exc}{where}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
