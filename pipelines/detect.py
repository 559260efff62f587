"""The `detect` flow: lookups -> entity_windows -> flagged_clients / campaigns, checked, then published.

A run recomputes only what new data touched: the event dates of requests from ingest runs no
detection has taken in yet (late events included), and the 7-day windows that contain those dates.
`--full` recomputes everything; `backfill` recomputes a date range. Publishing is all-or-nothing:
the recomputed partitions are swapped in, per-run tables (flagged_clients, campaigns,
allowlisted_hits, exposures, detect_runs) gain this run's rows, dq_results always gains the verdicts.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pyspark.sql import functions as F

from core import faults
from core.allowlist import load_allowlist
from core.errors import UserError
from core.lake import Lake
from core.partitions import arrow_schema, partition_date, partitions
from core.rules import load_rules
from core.settings import Settings, load_settings
from delivery import outbox
from jobs import detect as detect_job
from jobs.campaigns import grouping_digest
from jobs.detect import Scope
from jobs.quality import (
    Verdict,
    gate_passed,
    preload,
    raise_if_failed,
    report_failures,
    validate,
)
from jobs.session import generated_code, get_spark
from jobs.targets import flagged_entities
from pipelines.alerts import alerts_flow, notify_failure
from pipelines.data_docs import data_docs
from pipelines.ingest import new_run_id, stage_verdicts
from pipelines.retries import IO_RETRIES
from schemas import DETECT_RUNS, LAKE_TABLES

SUITES = ("lookups", "entity_windows", "campaigns", "flagged_clients", "targets")


def _covered(lake: Lake) -> set[str]:
    current = lake.current("detect_runs")
    if current is None or not any(current.glob("*.parquet")):
        return set()
    runs = pq.read_table(current, columns=["ingest_runs"]).column("ingest_runs").to_pylist()
    return {run for row in runs for run in row}


def _dates(lake: Lake, table: str) -> set[date]:
    """The event dates a table holds, from its partition directories (no data is read)."""
    dates = (partition_date(LAKE_TABLES[table], p.name) for p in partitions(lake.current(table)))
    return {d for d in dates if d is not None}


def _bytes(lake: Lake, table: str, dates: list[date]) -> int:
    """The Parquet bytes a table holds for `dates`, from its files' sizes (no data is read)."""
    wanted = set(dates)
    return sum(p.bytes for p in partitions(lake.current(table)) if partition_date(LAKE_TABLES[table], p.name) in wanted)


def _new_runs(lake: Lake, scope: Scope, new: list[str], kinds: list[str]) -> list[str]:
    """The ingest runs whose entities alone get their windows recomputed (`Scope.new_runs`), or none.

    Only an incremental run qualifies, and only when the lake already publishes every window
    partition the run rewrites: a window new to the lake (a new day, a window kind just enabled)
    has no published rows to carry over, so every entity's is computed.
    """
    if scope.mode != "incremental" or scope.days_missing:
        return []
    published = {p.name for p in partitions(lake.current("entity_windows"))}
    return new if scope.window_partitions(kinds) <= published else []


def _campaigns_from(lake: Lake, scope: Scope, digest: str) -> str | None:
    """The published detection run whose campaigns this run can carry over (`Scope.campaigns_from`), if any.

    The latest run, when it grouped the same days (`Scope.campaign_days`) under the same campaign
    rules and grouping code (`grouping_digest`): its campaigns are then current for every group no
    account in the new ingest runs belongs to.
    """
    current = lake.current("detect_runs")
    if not scope.new_runs or current is None:
        return None
    runs = ds.dataset(current, schema=arrow_schema(DETECT_RUNS)).to_table().to_pylist()  # one row per run: small
    if not runs:
        return None
    last = max(runs, key=lambda r: r["detected_at"])
    same = last["campaign_days"] == scope.campaign_days and last["campaign_rules"] == digest
    return last["detect_run_id"] if same else None


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def plan_scope(
    settings: Settings, mode: str, backfill: tuple[date, date] | None, rules: str | None
) -> tuple[Scope, list[str]]:
    """Decide the dates and 7-day windows this run recomputes, and for which entities."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    covered = _covered(lake)
    scope, runs = detect_job.plan(lake.read(spark, "requests"), covered, mode, backfill)
    # A lake written before the day tables: the dates their sources hold but they do not.
    missing = (_dates(lake, "entity_hours") - _dates(lake, "entity_days")) | (
        _dates(lake, "lookups") - _dates(lake, "campaign_member_days")
    )
    scope = replace(scope, days_missing=sorted(missing - set(scope.dates)))
    ruleset = load_rules(Path(rules) if rules else None)
    scope = replace(scope, new_runs=_new_runs(lake, scope, sorted(set(runs) - covered), ruleset.enabled_windows))
    scope = replace(scope, campaign_days=scope.grouped_days(_dates(lake, "campaign_member_days")))
    scope = replace(scope, campaigns_from=_campaigns_from(lake, scope, grouping_digest(ruleset)))
    size = _bytes(lake, "requests", scope.dates)
    compiled = generated_code(spark, size, settings)
    get_run_logger().info(
        "%s detection: %d event dates (%.1f MiB of requests, %s), %d 7-day windows to recompute, for %s; %s",
        mode,
        len(scope.dates),
        size / 2**20,
        "compiled" if compiled else "interpreted",
        len(scope.window_ends),
        f"the entities in {len(scope.new_runs)} new ingest run(s)" if scope.new_runs else "every entity",
        f"campaigns carried over from {scope.campaigns_from}" if scope.campaigns_from else "every campaign group",
    )
    return scope, runs


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def build_tables(
    run_id: str, settings: Settings, scope: Scope, rules: str | None, allowlist: str | None, now: datetime
) -> dict:
    """Compute the detection tables for `scope` into the run's staging directory; return their row counts."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    preload()  # GX's imports overlap the Spark jobs instead of following them
    get_run_logger().info("detecting over %s with rules %s", lake.path("requests"), rules or "config/rules.yaml")
    return detect_job.stage(
        spark,
        lake.read(spark, "requests"),
        {name: lake.read(spark, name) for name in detect_job.CONTEXT},
        load_rules(Path(rules) if rules else None),
        load_allowlist(Path(allowlist) if allowlist else None, now.date()),
        scope=scope,
        run_id=run_id,
        detected_at=now,
        staging=lake.staging(run_id),
    )


@task(cache_policy=NO_CACHE)
def validate_tables(
    run_id: str, settings: Settings, scope: Scope, allowlist: str | None, now: datetime
) -> list[Verdict]:
    """Run each detection table's suite; cross-table checks see the staged lookups, flags and the allowlist."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    staging = lake.staging(run_id)

    def staged(name: str):
        table = LAKE_TABLES[name]
        return spark.read.schema(table.spark_schema()).parquet(str(staging / name))

    # Only the dates this run's windows read: every cross-check below looks at nothing older, and an
    # incremental run then scans days, not the whole history.
    first, last = scope.context
    published = lake.read(spark, "lookups").where(
        F.col("event_date").between(F.lit(first), F.lit(last))
        & ~F.col("event_date").isin([F.lit(d) for d in scope.dates])
    )
    published.unionByName(staged("lookups")).createOrReplaceTempView("detect_lookups")
    allowed = load_allowlist(Path(allowlist) if allowlist else None, now.date())
    spark.createDataFrame(
        [(e.entity_type, e.entity_value) for e in allowed], "entity_type string, entity_value string"
    ).createOrReplaceTempView("detect_allowlist")
    flagged_entities(staged("flagged_clients")).createOrReplaceTempView("detect_flagged")
    requests = lake.read(spark, "requests")
    expected = requests.where(
        F.col("event_date").isin([F.lit(d) for d in scope.dates])
        & F.col("is_lookup")
        & (F.col("id_hash").isNotNull() | F.col("name_hash").isNotNull())
    )
    parameters = {"lookups": {"expected_lookups": expected.count()}}
    verdicts: list[Verdict] = []
    for suite in SUITES:
        verdicts += validate(staged(suite), suite, run_id=run_id, stage="detect", parameters=parameters.get(suite))
    report_failures(verdicts, get_run_logger())
    return verdicts


@task(cache_policy=NO_CACHE)
def publish_tables(
    run_id: str,
    settings: Settings,
    scope: Scope,
    runs: list[str],
    now: datetime,
    verdicts: list[Verdict],
    rules: str | None,
) -> None:
    """Swap in the recomputed partitions if every critical check held; record the verdicts either way."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    staging = lake.staging(run_id)
    versions = {"dq_results": stage_verdicts(spark, lake, run_id, verdicts)}
    if gate_passed(verdicts):
        full = scope.mode == "full"
        for name in detect_job.PARTITIONED:
            versions[name] = lake.build_version(
                name,
                run_id,
                add=[staging / name],
                keep_current=not full,
                drop_partitions=scope.dropped_partitions(name),
            )
        for name in set(detect_job.DETECTION_TABLES) - set(detect_job.PARTITIONED):
            versions[name] = lake.build_version(name, run_id, add=[staging / name])
        digest = grouping_digest(load_rules(Path(rules) if rules else None))
        row = [(run_id, scope.mode, now, runs, scope.dates, scope.window_ends, digest, scope.campaign_days)]
        spark.createDataFrame(row, DETECT_RUNS.spark_schema()).coalesce(1).write.parquet(str(staging / "detect_runs"))
        versions["detect_runs"] = lake.build_version("detect_runs", run_id, add=[staging / "detect_runs"])
        outbox.owe_alerts(lake, run_id)  # before the publish: a run killed after it still gets its alerts
    lake.publish(run_id, versions)


@flow(name="detect", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def detect_flow(
    lake: str | None = None,
    watchlist: str | None = None,
    allowlist: str | None = None,
    rules: str | None = None,
    config: str | None = None,
    full: bool = False,
    backfill_from: date | None = None,
    backfill_to: date | None = None,
) -> dict:
    """Detect enumerating clients in what is new in the lake (or all of it, or a date range)."""
    started = time.monotonic()
    settings = load_settings(Path(config) if config else None).with_overrides(lake=Path(lake) if lake else None)
    store = Lake(settings.lake, settings.keep_versions)
    if not store.root.exists():
        raise UserError(f"no lake at {store.root} (run 'enumwatch ingest' first or pass --lake)")
    mode = "backfill" if backfill_from else "full" if full else "incremental"
    run_id = new_run_id("detect")
    now = datetime.now(timezone.utc)
    logger = get_run_logger()
    # The rules and the allowlist are read before the lock: a file that cannot be used stops the run
    # with one line before anything is computed, and what was read leniently is said once, here.
    warnings = [*settings.warnings]
    load_rules(Path(rules) if rules else None, warnings)
    load_allowlist(Path(allowlist) if allowlist else None, now.date(), warnings)
    for warning in warnings:
        logger.warning(warning)
    verdicts: list[Verdict] = []
    counts: dict = {}
    docs: str | None = None
    scope = Scope(mode, [], [])
    with store.lock(settings.lock_wait_seconds, run_id, logger.warning), store.storage_errors():
        store.recover()
        if watchlist:
            store.remember_watchlist(Path(watchlist))
        if store.path("requests").exists():
            scope, runs = plan_scope(
                settings, mode, (backfill_from, backfill_to or backfill_from) if backfill_from else None, rules
            )
        else:  # a lake whose ingests have found no files yet: nothing to detect is not a failure
            logger.info("no requests table yet: nothing new to detect")
        if scope.dates:
            counts = build_tables(run_id, settings, scope, rules, allowlist, now)
            verdicts = validate_tables(run_id, settings, scope, allowlist, now)
            publish_tables(run_id, settings, scope, runs, now, verdicts, rules)
            docs = data_docs(run_id, settings)
        store.recover()
    raise_if_failed(verdicts, "detection", docs)
    faults.point("detect.published")
    alerts_flow(detect_run_id=run_id, lake=lake, config=config)  # after the publish and outside the lake lock
    return {
        "run_id": run_id,
        "lake": str(store.root),
        "mode": mode,
        "dates": [d.isoformat() for d in scope.dates],
        "windows_for": ("new entities" if scope.new_runs else "every entity") if scope.dates else None,
        "campaigns_carried_from": scope.campaigns_from,
        "tables": counts,
        "warnings": warnings,
        "seconds": round(time.monotonic() - started, 1),
        "data_docs": docs,
    }
