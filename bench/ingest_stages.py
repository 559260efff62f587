"""Splits the ingest Spark job into read, parse, hash and write by running it cumulatively.

Spark fuses read, parse and hash into the one job that writes `requests`, so its event log can only
time them together. This script runs the same code in one session four times over the same files,
each time one step further (the first three into Spark's `noop` sink, which computes everything and
writes nothing), and prints the differences as a Markdown table: measured, not estimated.
Usage: ingest_stages.py LOGDIR [WATCHLIST]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.pseudonym import load_key
from core.settings import load_settings
from core.watchlist import load_watchlist
from jobs.ingest import IngestJob, build, stage
from jobs.parse import classify
from jobs.pseudonymize import watchlist_frame
from jobs.reader import read_lines
from jobs.session import get_spark


def main(source: str, watchlist: str | None = None) -> None:
    settings = load_settings()
    key = load_key(settings)
    now = datetime.now(timezone.utc)
    job = IngestJob(
        run_id="bench",
        fmt="jsonl",
        key=key,
        lookup=settings.lookup,
        max_line_bytes=settings.max_line_bytes,
        min_event_time=settings.min_event_time,
        max_event_time=now + timedelta(hours=24),
        ingest_date=now.date(),
    )
    files = [str(p) for p in sorted(Path(source).rglob("*.gz"))]
    entries = load_watchlist(Path(watchlist) if watchlist else None, key)
    spark = get_spark(settings, "enumwatch-ingest-stages")
    wl = watchlist_frame(spark, entries)

    def lines():
        return read_lines(spark, files, job.max_line_bytes)

    steps = {
        "read (files -> lines)": lambda: lines(),
        "parse (classify)": lambda: classify(
            lines(),
            "jsonl",
            max_line_bytes=job.max_line_bytes,
            min_event_time=job.min_event_time,
            max_event_time=job.max_event_time,
        ),
        "hash (pseudonymize, watchlist)": lambda: build(lines(), job, wl),
    }
    took: dict[str, float] = {}
    for name, df in steps.items():
        spark.sparkContext.setJobGroup(f"stages:{name}", name)
        start = time.monotonic()
        df().write.format("noop").mode("overwrite").save()
        took[name] = time.monotonic() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        stage(spark, files, job, entries, Path(tmp))
        took["write (requests, quarantine, counts)"] = time.monotonic() - start
    print("| ingest step | cumulative s | this step s |\n|---|---|---|")
    previous = 0.0
    for name, secs in took.items():
        print(f"| {name} | {secs:.1f} | {secs - previous:.1f} |")
        previous = secs
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
