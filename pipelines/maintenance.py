"""The `compact` and `retention` flows: keeping a lake that runs for months bounded in files and in age.

Both take the lake lock, finish any publish an earlier run left half done, build new table versions
with the Lake API and publish them in one swap together with their log rows (compaction_log,
retention_log), so a crash leaves the tables as they were. They read and write Parquet with pyarrow,
file by file, and start no Spark. Retention also runs the `retention` GX suite on what the lake will
hold afterwards: a partition still past its period (an undelivered alert, a table left out) fails the
run after its verdicts are kept in dq_results, which pages on-call through the failure hook.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core import compaction, retention
from core.lake import Lake
from core.partitions import write_rows
from core.retention import Expired
from core.settings import Settings, load_settings
from delivery import outbox
from jobs.quality import QualityGateError, Verdict, report_failures, validate
from pipelines.alerts import new_run_id, notify_failure
from schemas import LAKE_TABLES, PARTITION_AGES


def keep_rows() -> dict[str, ds.Expression]:
    """Rows that outlive their table's period: an undelivered alert is still owed to on-call."""
    return {"alerts": ds.field("status").isin(list(outbox.UNDELIVERED))}


def _settings(lake: str | None, config: str | None) -> Settings:
    return load_settings(Path(config) if config else None).with_overrides(lake=Path(lake) if lake else None)


def _attach(lake: Lake, run_id: str, versions: dict[str, Path], table: str, rows: list[dict]) -> None:
    """Add `rows` to `table`'s version in `versions`, building on a version this run already made for it."""
    if not rows:
        return
    path = write_rows(LAKE_TABLES[table], rows, lake.staging(run_id) / f"log_{table}" / f"part-{run_id}.parquet")
    if table in versions:  # compacted or trimmed in this run: the new rows join that unpublished version
        os.replace(path, versions[table] / path.name)
    else:
        versions[table] = lake.build_version(table, run_id, add=[path.parent])


# --- compaction --------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def compact_tables(run_id: str, settings: Settings, tables: list[str], now: datetime) -> dict:
    """Rewrite every crowded partition of `tables` and publish them with their compaction_log rows."""
    lake = Lake(settings.lake, settings.keep_versions)
    policy = settings.maintenance
    versions: dict[str, Path] = {}
    rows = []
    for table in tables:
        version, row = compaction.compact_table(
            lake, table, run_id, policy.compact_max_files, policy.compact_rows_per_file, now
        )
        rows.append(row)
        if version is not None:
            versions[table] = version
            get_run_logger().info(
                "%s: %d partitions, %d -> %d files, %d rows",
                table,
                len(row["partitions"]),
                row["files_before"],
                row["files_after"],
                row["rows"],
            )
    _attach(lake, run_id, versions, "compaction_log", rows)
    lake.publish(run_id, versions)
    return {"tables": rows}


@flow(name="compact", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def compact_flow(lake: str | None = None, config: str | None = None, table: str | None = None) -> dict:
    """Rewrite partitions holding more than [compaction] max_files_per_partition files; every row is kept."""
    started = time.monotonic()
    settings = _settings(lake, config)
    store = Lake(settings.lake, settings.keep_versions)
    if table is not None and table not in LAKE_TABLES:
        raise ValueError(f"no lake table {table!r}; tables: {', '.join(LAKE_TABLES)}")
    tables = [table] if table else [t for t in LAKE_TABLES if store.current(t) is not None]
    run_id, now = new_run_id("compact"), datetime.now(timezone.utc)
    with store.lock():
        store.recover()
        result = compact_tables(run_id, settings, tables, now)
        store.recover()  # drops this run's staging
    rows = result["tables"]
    return {
        "run_id": run_id,
        "lake": str(store.root),
        "tables": len(tables),
        "partitions": sum(len(r["partitions"]) for r in rows),
        "files_before": sum(r["files_before"] for r in rows),
        "files_after": sum(r["files_after"] for r in rows),
        "rows": sum(r["rows"] for r in rows),
        "compacted": {r["table_name"]: r["partitions"] for r in rows if r["partitions"]},
        "seconds": round(time.monotonic() - started, 1),
    }


# --- retention ---------------------------------------------------------------------------------
def plan_retention(settings: Settings, today: date) -> list[Expired]:
    """What each table would lose today (the dry run; reads only, no lock)."""
    lake = Lake(settings.lake, settings.keep_versions)
    keep = keep_rows()
    found = [retention.expired(lake, t, settings.maintenance, today, keep.get(t)) for t in LAKE_TABLES]
    return [f for f in found if f is not None]


def check_retention(run_id: str, rows: list[dict]) -> list[Verdict]:
    """The `retention` suite over the partition ages the lake will have."""
    frame = pd.DataFrame(rows, columns=PARTITION_AGES.names)
    return validate(frame, "retention", run_id=run_id, stage="retention")


@task(cache_policy=NO_CACHE)
def remove_expired(run_id: str, settings: Settings, now: datetime) -> dict:
    """Drop expired partitions and rows, check what remains, publish both with retention_log and the verdicts."""
    lake = Lake(settings.lake, settings.keep_versions)
    logger = get_run_logger()
    keep = keep_rows()
    versions: dict[str, Path] = {}
    rows = []
    for found in plan_retention(settings, now.date()):
        version, written = retention.remove(lake, run_id, found, keep.get(found.table))
        if version is not None:
            versions[found.table] = version
            logger.info("%s: %d rows removed (data before %s)", found.table, found.rows, found.cutoff)
        rows.append(retention.log_row(run_id, found, written, now))
    verdicts = check_retention(run_id, retention.ages(lake, settings.maintenance, now.date(), versions))
    report_failures(verdicts, logger)
    _attach(lake, run_id, versions, "retention_log", rows)
    _attach(lake, run_id, versions, "dq_results", [asdict(v) for v in verdicts])
    lake.publish(run_id, versions)
    return {"tables": rows, "verdicts": verdicts}


@flow(name="retention", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def retention_flow(lake: str | None = None, config: str | None = None) -> dict:
    """Remove data older than each table's [retention] period; record it; fail if anything overdue remains."""
    started = time.monotonic()
    settings = _settings(lake, config)
    store = Lake(settings.lake, settings.keep_versions)
    run_id, now = new_run_id("retention"), datetime.now(timezone.utc)
    # The outbox is rewritten whole by alerts runs: none may hold a copy while old alerts leave it.
    with outbox.outbox_lock(store), store.lock():
        store.recover()
        result = remove_expired(run_id, settings, now)
        store.recover()
    failed = [v.describe() for v in result["verdicts"] if not v.success and v.severity == "critical"]
    if failed:  # what could be removed was; the rest needs a person (e.g. alerts that were never delivered)
        raise QualityGateError("retention: data past its retention period remains:\n  " + "\n  ".join(failed))
    rows = result["tables"]
    return {
        "run_id": run_id,
        "lake": str(store.root),
        "rows_removed": sum(r["rows_removed"] for r in rows),
        "partitions_removed": sum(len(r["partitions"]) for r in rows),
        "removed": {r["table_name"]: r["rows_removed"] for r in rows if r["rows_removed"]},
        "seconds": round(time.monotonic() - started, 1),
    }
