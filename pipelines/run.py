"""The `run` flow: ingest, then detect, as one parent flow run with two child flow runs."""

from __future__ import annotations

from prefect import flow

from pipelines.alerts import notify_failure
from pipelines.detect import detect_flow
from pipelines.ingest import ingest_flow


@flow(name="run", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def run_flow(
    source: str,
    fmt: str = "jsonl",
    lake: str | None = None,
    watchlist: str | None = None,
    allowlist: str | None = None,
    rules: str | None = None,
    config: str | None = None,
) -> dict:
    """Ingest `source`, then detect over the whole lake; returns both summaries."""
    ingested = ingest_flow(source=source, fmt=fmt, lake=lake, watchlist=watchlist, config=config)
    detected = detect_flow(lake=lake, watchlist=watchlist, allowlist=allowlist, rules=rules, config=config)
    return {"ingest": ingested, "detect": detected}
