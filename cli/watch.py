"""`enumwatch watch`: one long-lived process that runs ingest + detect whenever files land in the source.

A scheduled `enumwatch run` starts Python, Prefect's temporary server and a Spark JVM for every run,
then throws away the classes Spark loaded and the code it generated and compiled. For one new
hourly file that was a third to a half of the run (bench/results.md). Here the Spark session, Prefect's
server (or client) and Spark's code cache live as long as the process. Each run is still a real `run`
flow run, recorded like any other, and a kill at any moment leaves the lake as a killed
`enumwatch run` would: the next run recovers it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.args import require_source, settings_from_args
from cli.engineers import prestart_spark, run_parameters
from cli.output import format_detect_summary, format_summary
from core.discovery import list_files


def source_state(source: Path, fmt: str, lake: Path) -> frozenset[tuple[str, int, int]]:
    """Path, size and modification time of every source file: a run is due when this changes.

    Stat calls only (no reading, no hashing), so polling every few seconds costs next to nothing; the
    flow itself decides, by content, which files are new.
    """
    state = set()
    for path in list_files(source, fmt, exclude=lake).found:
        try:
            info = path.stat()
        except OSError:  # gone or broken since it was listed: the run reports it if it matters
            continue
        state.add((str(path), info.st_size, info.st_mtime_ns))
    return frozenset(state)


def watch(
    run_once: Callable[[int], None],
    state: Callable[[], Hashable],
    stop: threading.Event,
    *,
    poll: float,
    every: float,
    runs: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call `run_once(n)` at once, then whenever `state()` differs from what it was before the previous
    run, and at least every `every` seconds; check every `poll` seconds until `stop` is set or `runs`
    runs are done. Returns the number of runs.

    The state is taken before a run, so a file that lands while a run goes on starts the next one.
    """
    done, seen, due = 0, None, clock()
    while not stop.is_set() and (runs is None or done < runs):
        now = state()
        if now != seen or clock() >= due:
            seen, due = now, clock() + every
            done += 1
            run_once(done)
        else:
            stop.wait(poll)
    return done


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM or Ctrl-C sets the event: the run under way finishes, then the watch stops. A second
    Ctrl-C stops at once. The previous handlers come back when the watch ends."""
    stop = threading.Event()

    def handle(signum, _frame) -> None:
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("enumwatch watch: stopping after the run under way", file=sys.stderr, flush=True)

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_watch(args: argparse.Namespace) -> int:
    """Run the `run` flow now and whenever the source changes (at least every --every seconds)."""
    from pipelines.run import run_flow

    source = Path(args.source).absolute()
    require_source(source)
    lake = settings_from_args(args).lake
    prestart_spark(args)

    def run_once(n: int) -> None:
        started = time.monotonic()
        try:
            result = run_flow(**run_parameters(args, source))
        except Exception as exc:
            if n == 1:
                raise  # nothing has worked yet: a fix is needed, and the one-line error says which
            # A later failure (a full disk, a failed check) has alerted through the flow's failure hook;
            # the next change or the next --every retries it.
            print(f"enumwatch watch: run {n} failed: {exc}", file=sys.stderr, flush=True)
            return
        print(format_summary(result["ingest"]), flush=True)
        print(format_detect_summary(result["detect"]), flush=True)
        print(f"watch: run {n} done in {time.monotonic() - started:.1f} s", flush=True)

    def state() -> frozenset[tuple[str, int, int]]:
        return source_state(source, args.format, lake)

    with _stop_on_signals() as stop:
        done = watch(run_once, state, stop, poll=args.poll, every=args.every, runs=args.runs)
    print(f"watch: stopped after {done} runs", flush=True)
    return 0


def register(sub) -> None:
    """Add `watch` to the `enumwatch` parser."""
    p = sub.add_parser(
        "watch", help="keep one process (Spark, Prefect) running: ingest + detect whenever the source changes"
    )
    p.add_argument("--source", required=True, help="the directory new log files land in")
    p.add_argument("--format", required=True, choices=("jsonl", "combined"))
    p.add_argument("--lake")
    p.add_argument("--watchlist")
    p.add_argument("--allowlist")
    p.add_argument("--rules")
    p.add_argument("--poll", type=float, default=10.0, help="seconds between looks at the source (default 10)")
    p.add_argument(
        "--every", type=float, default=300.0, help="run at least this often, even with no change (default 300)"
    )
    p.add_argument("--runs", type=int, help="stop after this many runs (default: run until SIGTERM or Ctrl-C)")
    p.set_defaults(func=cmd_watch)
