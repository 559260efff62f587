"""The `ingest` flow: discover new files, parse and pseudonymize them in Spark, validate, publish.

Tasks hand each other paths, run ids and small count records, never DataFrames. Nothing reaches the
published tables unless every critical expectation holds; the verdicts are kept either way.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pyspark.sql import functions as F

from core import faults
from core.discovery import Plan, SourceError, SourceFile, list_files, plan
from core.lake import Lake
from core.pseudonym import fingerprint, load_key
from core.settings import Settings, load_settings
from core.watchlist import load_watchlist
from jobs.ingest import IngestJob, stage
from jobs.quality import Verdict, gate_passed, preload, raise_if_failed, report_failures, validate
from jobs.session import generated_code, get_spark
from pipelines.alerts import notify_failure
from pipelines.data_docs import data_docs
from pipelines.retries import IO_RETRIES
from schemas import DQ_RESULTS, INGEST_MANIFEST, QUARANTINE, REQUESTS


def new_run_id(kind: str) -> str:
    """A sortable, unique run id such as ingest-20261127T093000Z-1a2b3c."""
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _ingested(lake: Lake) -> dict[str, str]:
    current = lake.current("ingest_manifest")
    if current is None or not any(current.glob("*.parquet")):
        return {}
    table = pq.read_table(current, columns=["source_file", "sha256"])
    return dict(zip(table.column("source_file").to_pylist(), table.column("sha256").to_pylist(), strict=True))


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def discover(source: str, fmt: str, settings: Settings, reingest: bool) -> Plan:
    """List the source and decide what to ingest; refuse files whose content changed."""
    logger = get_run_logger()
    lake = Lake(settings.lake, settings.keep_versions)
    listing = list_files(Path(source), fmt, exclude=lake.root)
    files, skipped = listing.found, listing.skipped
    result = plan(files, _ingested(lake), reingest=reingest)
    result.skipped, result.notes = skipped, listing.notes
    for note in listing.notes:
        logger.warning(note)
    for path, why in result.unreadable:
        logger.warning("unreadable file skipped: %s (%s)", path, why)
    if skipped:
        logger.warning("%d files skipped for their extension, e.g. %s", len(skipped), skipped[0])
    if result.changed:
        raise SourceError(
            "refused: content changed since ingested (use --reingest to replace their rows): "
            + ", ".join(result.changed)
        )
    logger.info(
        "found %d files: %d new, %d to replace, %d already ingested",
        len(files),
        len(result.new),
        len(result.replace),
        len(result.unchanged),
    )
    return result


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def parse_files(
    run_id: str, fmt: str, files: list[SourceFile], settings: Settings, watchlist: str | None
) -> list[dict]:
    """Parse and pseudonymize `files` into the run's staging directory; return per-file counts."""
    logger = get_run_logger()
    lake = Lake(settings.lake, settings.keep_versions)
    key = load_key(settings)
    now = datetime.now(timezone.utc)
    job = IngestJob(
        run_id=run_id,
        fmt=fmt,
        key=key,
        lookup=settings.lookup,
        max_line_bytes=settings.max_line_bytes,
        min_event_time=settings.min_event_time,
        max_event_time=now + settings.max_future_skew,
        ingest_date=now.date(),
    )
    entries = load_watchlist(Path(watchlist) if watchlist else None, key)  # its warnings were logged by the flow
    size = sum(f.size for f in files)
    spark = get_spark(settings)
    compiled = generated_code(spark, size, settings)
    logger.info(
        "parsing %d files (%.1f MiB, %s) with Spark (%s), watchlist of %d names",
        len(files),
        size / 2**20,
        "compiled" if compiled else "interpreted",
        settings.spark_master,
        len(entries),
    )
    preload()  # GX's imports overlap the Spark job instead of following it
    return stage(spark, [f.path for f in files], job, entries, lake.staging(run_id))


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def rewrite_replaced(run_id: str, replaced: list[str], settings: Settings) -> dict[str, list[str]]:
    """For --reingest: rewrite the partitions holding the replaced files' rows, without those rows."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    dropped: dict[str, list[str]] = {}
    for table in (REQUESTS, QUARANTINE):
        part = table.partition_by[0]
        current = lake.read(spark, table.name)
        old = F.col("source_file").isin(replaced)
        values = [r[0] for r in current.where(old).select(part).distinct().collect()]  # partition values only
        dropped[table.name] = [f"{part}={v}" for v in values]
        if values:
            (
                current.where(F.col(part).isin(values) & ~old)
                .write.mode("overwrite")
                .partitionBy(part)
                .parquet(str(lake.staging(run_id) / f"rewrite_{table.name}"))
            )
    return dropped


@task(cache_policy=NO_CACHE)
def validate_staged(run_id: str, counts: list[dict], settings: Settings) -> list[Verdict]:
    """Run the requests and quarantine suites on what was staged, with the reader's counts as parameters."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    staging = lake.staging(run_id)
    read = sum(c["lines_read"] for c in counts)
    quarantined = sum(c["lines_quarantined"] for c in counts)
    blank = sum(c["lines_blank"] for c in counts)

    def staged(table) -> object:
        path = staging / table.name
        if not path.exists():
            return spark.createDataFrame([], table.spark_schema())
        return spark.read.schema(table.spark_schema()).parquet(str(path))

    now = datetime.now(timezone.utc)
    verdicts = validate(
        staged(REQUESTS),
        "requests",
        run_id=run_id,
        stage="ingest",
        parameters={
            "min_event_time": settings.min_event_time,
            "max_event_time": now + settings.max_future_skew,
            "expected_requests": read - quarantined - blank,
        },
    )
    verdicts += validate(
        staged(QUARANTINE),
        "quarantine",
        run_id=run_id,
        stage="ingest",
        parameters={
            "expected_quarantine": quarantined,
            "quarantine_warn_rows": math.floor(settings.quarantine_warn_share * read),
            "quarantine_fail_rows": math.floor(settings.quarantine_fail_share * read),
        },
    )
    report_failures(verdicts, get_run_logger())
    return verdicts


def stage_verdicts(spark, lake: Lake, run_id: str, verdicts: list[Verdict]) -> Path:
    """Write the run's verdicts to staging and return the new dq_results version (published either way)."""
    rows = [tuple(asdict(v)[c] for c in DQ_RESULTS.names) for v in verdicts]
    staged = lake.staging(run_id) / "dq_results"
    spark.createDataFrame(rows, DQ_RESULTS.spark_schema()).coalesce(1).write.parquet(str(staged))
    return lake.build_version("dq_results", run_id, add=[staged])


@task(cache_policy=NO_CACHE)
def publish(
    run_id: str,
    fmt: str,
    plan_: Plan,
    counts: list[dict],
    dropped: dict[str, list[str]],
    verdicts: list[Verdict],
    settings: Settings,
) -> None:
    """Publish requests, quarantine, ingest_manifest and dq_results together; only dq_results on a failed gate."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    staging = lake.staging(run_id)
    passed = gate_passed(verdicts)
    versions = {"dq_results": stage_verdicts(spark, lake, run_id, verdicts)}
    if passed and plan_.to_ingest:
        now = datetime.now(timezone.utc)
        by_path = {c["source_file"]: c for c in counts}
        rows = [
            (
                f.path,
                f.size,
                f.sha256,
                fmt,
                *(
                    by_path[f.path][k]
                    for k in ("lines_read", "lines_parsed", "lines_quarantined", "lines_blank", "read_error")
                ),
                run_id,
                now,
            )
            for f in plan_.to_ingest
        ]
        replaced = [f.path for f in plan_.replace]
        new_rows = spark.createDataFrame(rows, INGEST_MANIFEST.spark_schema())
        manifest = lake.read(spark, "ingest_manifest").where(
            ~F.col("source_file").isin([f.path for f in plan_.to_ingest])
        )
        manifest.unionByName(new_rows).coalesce(1).write.parquet(str(staging / "ingest_manifest"))
        versions["ingest_manifest"] = lake.build_version(
            "ingest_manifest", run_id, add=[staging / "ingest_manifest"], keep_current=False
        )
        for table in ("requests", "quarantine"):
            versions[table] = lake.build_version(
                table,
                run_id,
                add=[staging / table, staging / f"rewrite_{table}"],
                drop_partitions=set(dropped.get(table, [])) if replaced else set(),
            )
    lake.publish(run_id, versions)


@flow(name="ingest", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def ingest_flow(
    source: str,
    fmt: str = "jsonl",
    lake: str | None = None,
    watchlist: str | None = None,
    reingest: bool = False,
    config: str | None = None,
) -> dict:
    """Ingest access logs from `source` into the lake; returns the run summary."""
    started = time.monotonic()
    settings = load_settings(Path(config) if config else None).with_overrides(lake=Path(lake) if lake else None)
    store = Lake(settings.lake, settings.keep_versions)
    run_id = new_run_id("ingest")
    logger = get_run_logger()
    key = load_key(settings)
    # An unusable watchlist stops the run here, before any log line is read: every request is marked
    # against the same list, and the files stay in the source for the next run (README: watchlist).
    warnings = [*settings.warnings]
    watched = load_watchlist(Path(watchlist) if watchlist else None, key, warnings)
    for warning in warnings:
        logger.warning(warning)
    if watchlist:
        logger.info("watchlist %s: %d names", watchlist, len(watched))
    store.open(fingerprint(key))
    with store.lock(settings.lock_wait_seconds, run_id, logger.warning), store.storage_errors():
        if store.recover():
            logger.warning("finished a publish that an earlier run left half done")
        if watchlist:
            store.remember_watchlist(Path(watchlist))
        found = discover(source, fmt, settings, reingest)
        counts: list[dict] = []
        verdicts: list[Verdict] = []
        docs: str | None = None
        if found.to_ingest:
            counts = parse_files(run_id, fmt, found.to_ingest, settings, watchlist)
            faults.point("ingest.staged")
            dropped = rewrite_replaced(run_id, [f.path for f in found.replace], settings) if found.replace else {}
            verdicts = validate_staged(run_id, counts, settings)
            publish(run_id, fmt, found, counts, dropped, verdicts, settings)
            docs = data_docs(run_id, settings)
        store.recover()  # drops this run's staging
    summary = {
        "run_id": run_id,
        "source": source,
        "lake": str(store.root),
        "files": len(found.to_ingest),
        "files_already_ingested": len(found.unchanged),
        "files_unreadable": [f"{p} ({why})" for p, why in found.unreadable],
        "files_skipped": len(found.skipped),
        "files_with_read_errors": [f"{c['source_file']} ({c['read_error']})" for c in counts if c["read_error"]],
        "lines": sum(c["lines_read"] for c in counts),
        "parsed": sum(c["lines_parsed"] for c in counts),
        "quarantined": sum(c["lines_quarantined"] for c in counts),
        "blank": sum(c["lines_blank"] for c in counts),
        "warnings": [
            *warnings,
            *found.notes,
            *(v.describe() for v in verdicts if not v.success and v.severity != "critical"),
        ],
        "seconds": round(time.monotonic() - started, 1),
        "data_docs": docs,
    }
    raise_if_failed(verdicts, "ingest", docs)
    return summary
