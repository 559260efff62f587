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
from collections.abc import Iterator
from contextlib import contextmanager
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
# Every command that runs Prefect flows in this process: those above, and compact, retention and watch.
IN_PROCESS_FLOWS = (*FLOW_COMMANDS, "compact", "retention", "watch")


def _quiet_prefect_defaults() -> None:
    # Offline machines: no analytics calls; a temporary local server unless PREFECT_API_URL is set.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # The temporary server's 20 s default start-up limit is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@contextmanager
def _heartbeats_only_for_a_server(command: str) -> Iterator[None]:
    """Flow-run heartbeats off when the flows report to Prefect's temporary server, on with a real one.

    A heartbeat lets a server mark a flow run crashed when its process died; the temporary server dies
    with the process, so nothing reads them. Their thread sleeps in one-second steps and every flow run
    waits for it to wake at its end: a small detection flow 20.1 -> 19.2/19.5 s (bench/results.md).
    """
    if command not in IN_PROCESS_FLOWS:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if get_current_settings().api.url:  # PREFECT_API_URL, from the environment or a Prefect profile
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


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
    with (
        _heartbeats_only_for_a_server(args.command),
        hold_prefect_errors(args.command in FLOW_COMMANDS and not args.verbose) as held,
    ):
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
