"""The `detect` flow: lookups -> entity_windows -> flagged_clients / campaigns, checked, then published.

The whole detection is recomputed from `requests` on each run (see the closing notes for the
incremental plan) and published all-or-nothing: derived tables are replaced, per-run tables
(flagged_clients, campaigns, allowlisted_hits) gain this run's rows, dq_results always gains the verdicts.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pyspark.sql import functions as F

from enumwatch.allowlist import load_allowlist
from enumwatch.lake import Lake
from enumwatch.rules import load_rules
from enumwatch.settings import Settings, load_settings
from jobs import detect as detect_job
from jobs.quality import QualityGateError, Verdict, validate
from jobs.session import get_spark
from pipelines.ingest import new_run_id, stage_verdicts
from schemas import LAKE_TABLES

REPLACED = ("lookups", "entity_hours", "entity_prefix_hours", "entity_windows")
APPENDED = ("flagged_clients", "campaigns", "allowlisted_hits")
SUITES = ("lookups", "entity_windows", "campaigns", "flagged_clients")


@task(cache_policy=NO_CACHE)
def build_tables(run_id: str, settings: Settings, rules: str | None, allowlist: str | None, now: datetime) -> dict:
    """Compute every detection table into the run's staging directory; return their row counts."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    get_run_logger().info("detecting over %s with rules %s", lake.path("requests"), rules or "config/rules.yaml")
    return detect_job.stage(
        spark,
        lake.read(spark, "requests"),
        load_rules(Path(rules) if rules else None),
        load_allowlist(Path(allowlist) if allowlist else None, now.date()),
        run_id=run_id,
        detected_at=now,
        staging=lake.staging(run_id),
    )


@task(cache_policy=NO_CACHE)
def validate_tables(run_id: str, settings: Settings, allowlist: str | None, now: datetime) -> list[Verdict]:
    """Run each detection table's suite; cross-table checks see the staged lookups and the allowlist."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    staging = lake.staging(run_id)

    def staged(name: str):
        table = LAKE_TABLES[name]
        return spark.read.schema(table.spark_schema()).parquet(str(staging / name))

    lookups = staged("lookups")
    lookups.createOrReplaceTempView("detect_lookups")
    allowed = load_allowlist(Path(allowlist) if allowlist else None, now.date())
    spark.createDataFrame(
        [(e.entity_type, e.entity_value) for e in allowed], "entity_type string, entity_value string"
    ).createOrReplaceTempView("detect_allowlist")
    requests = lake.read(spark, "requests")
    expected = requests.where(F.col("is_lookup") & (F.col("id_hash").isNotNull() | F.col("name_hash").isNotNull()))
    parameters = {"lookups": {"expected_lookups": expected.count()}}
    verdicts: list[Verdict] = []
    for suite in SUITES:
        verdicts += validate(staged(suite), suite, run_id=run_id, stage="detect", parameters=parameters.get(suite))
    logger = get_run_logger()
    for v in verdicts:
        if not v.success:
            (logger.error if v.severity == "critical" else logger.warning)("expectation failed: %s", v.describe())
    return verdicts


@task(cache_policy=NO_CACHE)
def publish_tables(run_id: str, settings: Settings, verdicts: list[Verdict]) -> None:
    """Swap in the detection tables if every critical check held; record the verdicts either way."""
    lake = Lake(settings.lake, settings.keep_versions)
    spark = get_spark(settings)
    staging = lake.staging(run_id)
    versions = {"dq_results": stage_verdicts(spark, lake, run_id, verdicts)}
    if all(v.success for v in verdicts if v.severity == "critical"):
        for name in REPLACED:
            versions[name] = lake.build_version(name, run_id, add=[staging / name], keep_current=False)
        for name in APPENDED:
            versions[name] = lake.build_version(name, run_id, add=[staging / name])
    lake.publish(run_id, versions)


@flow(name="detect", log_prints=True)
def detect_flow(
    lake: str | None = None,
    watchlist: str | None = None,
    allowlist: str | None = None,
    rules: str | None = None,
    config: str | None = None,
) -> dict:
    """Detect enumerating clients over the lake; returns the run summary."""
    started = time.monotonic()
    settings = load_settings(Path(config) if config else None).with_overrides(lake=Path(lake) if lake else None)
    store = Lake(settings.lake, settings.keep_versions)
    if not store.path("requests").exists():
        raise QualityGateError(f"{store.root}: no requests table yet; run 'enumwatch ingest' first")
    run_id = new_run_id("detect")
    now = datetime.now(timezone.utc)
    with store.lock():
        store.recover()
        if watchlist:
            store.remember_watchlist(Path(watchlist))
        counts = build_tables(run_id, settings, rules, allowlist, now)
        verdicts = validate_tables(run_id, settings, allowlist, now)
        publish_tables(run_id, settings, verdicts)
        store.recover()
    failed = [v.describe() for v in verdicts if not v.success and v.severity == "critical"]
    if failed:
        raise QualityGateError("detection not published; critical expectations failed:\n  " + "\n  ".join(failed))
    return {
        "run_id": run_id,
        "lake": str(store.root),
        "tables": counts,
        "seconds": round(time.monotonic() - started, 1),
    }
