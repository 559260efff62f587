"""The detection job: requests -> lookups -> entity_hours -> entity_days -> entity_windows,
lookups -> campaign_member_days -> campaigns; both -> flagged_clients -> targets.

Every intermediate table is written to the run's staging directory and read back before the next
step, so each step starts from Parquet (short plans, no recomputation) and each table can be checked
before anything is published. `stage` is what the Prefect flow calls; `main` runs it under spark-submit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import reduce
from pathlib import Path

import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from core.allowlist import AllowEntry
from core.rules import RuleSet
from jobs.campaigns import campaigns as find_campaigns
from jobs.campaigns import incremental_campaigns, member_days
from jobs.exposures import exposures
from jobs.flags import all_hits, allow_frame, campaign_totals, entity_totals, flag, split_allowlisted
from jobs.lookups import to_lookups
from jobs.spans import span
from jobs.targets import targets
from jobs.windows import (
    ENTITY,
    entity_days,
    entity_hours,
    entity_prefix_days,
    entity_prefix_hours,
    entity_windows,
    seven_day_ends,
)
from schemas import CAMPAIGNS, LAKE_TABLES, Table

# Day tables: a run also rebuilds the days an older lake lacks them for (Scope.days_missing).
DAY_TABLES = ("entity_days", "entity_prefix_days", "campaign_member_days")
# Tables a run rewrites partition by partition (the dates it recomputes); the others gain the run's rows.
PARTITIONED = ("lookups", "entity_hours", "entity_prefix_hours", *DAY_TABLES, "entity_windows", "targets")
# The published tables a run reads besides requests: the days its 7-day windows and campaigns cover,
# and the windows and campaigns it carries over where the new data touched nothing.
CONTEXT = ("lookups", "entity_hours", "entity_prefix_hours", *DAY_TABLES, "entity_windows", "campaigns")
DETECTION_TABLES = (*PARTITIONED, "campaigns", "flagged_clients", "allowlisted_hits", "exposures")


@dataclass(frozen=True)
class Scope:
    """What one detection run recomputes: event dates, and days whose 7-day windows change.

    `days_missing` lists dates a lake written before the day tables (`DAY_TABLES`) holds only as
    hours and lookups: the run builds their day rows once and publishes them with its own.

    `new_runs`, when set, are the ingest runs new to this detection, and every window partition the
    run rewrites is already published: a window changes only for an entity with lookups in those
    runs, so only those entities' windows are recomputed and the others' are carried over as
    published. Empty: every entity's windows are recomputed.

    `campaign_days` are the event dates of the campaign_member_days rows its campaigns group
    (`grouped_days`), recorded in detect_runs. `campaigns_from`, when set with `new_runs`, is the
    published detection run that grouped the same days under the same campaign rules: a group
    without an account in the new runs is carried over from it (`jobs.campaigns.incremental_campaigns`).
    """

    mode: str
    dates: list[date]
    window_ends: list[date]
    days_missing: list[date] = field(default_factory=list)
    new_runs: list[str] = field(default_factory=list)
    campaign_days: list[date] = field(default_factory=list)
    campaigns_from: str | None = None

    @property
    def day_dates(self) -> list[date]:
        """The dates whose rows of the day tables this run writes."""
        return [*self.dates, *self.days_missing]

    @property
    def window_dates(self) -> dict[str, list[date]]:
        """The `window_date`s of entity_windows this run rewrites, by window kind."""
        return {"hour": self.dates, "day": self.dates, "7d": [e - timedelta(days=6) for e in self.window_ends]}

    def window_partitions(self, kinds: Iterable[str]) -> set[str]:
        """Partition directories of entity_windows this run rewrites, of the window kinds `kinds`."""
        return {f"window={kind}/window_date={d}" for kind in kinds for d in self.window_dates[kind]}

    def dropped_partitions(self, table: str) -> set[str]:
        """Partition directories of `table` this run replaces."""
        if table == "entity_windows":
            return self.window_partitions(self.window_dates)
        return {f"event_date={d}" for d in (self.day_dates if table in DAY_TABLES else self.dates)}

    @property
    def context(self) -> tuple[date, date]:
        """The event dates any recomputed window reads: the 6 days before the first end, to the last."""
        return min(self.window_ends or self.dates) - timedelta(days=6), max(self.window_ends or self.dates)

    def grouped_days(self, published: Iterable[date]) -> list[date]:
        """The event dates of the campaign_member_days rows the run groups, given the dates the table publishes.

        The days it writes and the published days of its context: not the nominal context, which a
        full run stretches six days before the lake's first, though those days hold no rows.
        """
        if not self.dates:  # nothing new to detect: the run groups nothing
            return []
        first, last = self.context
        return sorted({*self.day_dates, *(d for d in published if first <= d <= last)})


def _write(df: DataFrame, table: Table, staging: Path) -> DataFrame:
    path = str(staging / table.name)
    writer = df.transform(table.conform).write.mode("overwrite")
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    with span(df.sparkSession, f"detect:{table.name}"):
        writer.parquet(path)
    return df.sparkSession.read.schema(table.spark_schema()).parquet(path)


def _in_dates(dates: list[date]) -> F.Column:
    return F.col("event_date").isin([F.lit(d) for d in dates])


def _context(new: DataFrame, published: DataFrame, scope: Scope, written: list[date]) -> DataFrame:
    """The run's rows (of the dates `written`) plus published rows of the other dates the windows read."""
    first, last = scope.context
    kept = published.where(F.col("event_date").between(F.lit(first), F.lit(last)) & ~_in_dates(written))
    return new.unionByName(kept)


def touched_entities(requests: DataFrame, scope: Scope) -> DataFrame | None:
    """The entities with lookups in the run's new ingest runs, or None when every entity is recomputed."""
    if not scope.new_runs:
        return None
    return to_lookups(requests.where(F.col("ingest_run_id").isin(scope.new_runs))).select(*ENTITY).distinct()


def carried_windows(published: DataFrame, scope: Scope, kinds: list[str], touched: DataFrame) -> DataFrame:
    """The published windows this run rewrites, of the entities it did not touch: unchanged, so kept as they were."""
    rewritten = [
        (F.col("window") == kind) & F.col("window_date").isin([F.lit(d) for d in scope.window_dates[kind]])
        for kind in kinds
    ]
    return published.where(reduce(lambda a, b: a | b, rewritten, F.lit(False))).join(touched, ENTITY, "left_anti")


def stage(
    spark: SparkSession,
    requests: DataFrame,
    published: dict[str, DataFrame],
    ruleset: RuleSet,
    allowlist: list[AllowEntry],
    *,
    scope: Scope,
    run_id: str,
    detected_at: datetime,
    staging: Path,
) -> dict[str, int]:
    """Recompute the detection tables for `scope` into `staging`; return their row counts.

    `published` holds the current tables named in `CONTEXT`, which supply the days a 7-day window
    reads but this run does not recompute, and the windows of entities the run leaves as they were
    (`Scope.new_runs`).
    """
    t = LAKE_TABLES
    k = ruleset.hll_lg_config_k
    fresh = requests.where(_in_dates(scope.dates))
    lookups = _write(to_lookups(fresh), t["lookups"], staging)
    hours = _write(entity_hours(lookups, k), t["entity_hours"], staging)
    prefix_hours = _write(entity_prefix_hours(lookups), t["entity_prefix_hours"], staging)
    older = _in_dates(scope.days_missing)
    days = _write(entity_days(hours.unionByName(published["entity_hours"].where(older))), t["entity_days"], staging)
    prefix_days = _write(
        entity_prefix_days(prefix_hours.unionByName(published["entity_prefix_hours"].where(older))),
        t["entity_prefix_days"],
        staging,
    )
    fresh_days = (days.where(_in_dates(scope.dates)), prefix_days.where(_in_dates(scope.dates)))
    sources = {"hour": (hours, prefix_hours), "day": fresh_days}
    if scope.window_ends:
        sources["7d"] = (
            _context(days, published["entity_days"], scope, scope.day_dates),
            _context(prefix_days, published["entity_prefix_days"], scope, scope.day_dates),
        )
    kinds = [kind for kind in ruleset.enabled_windows if kind in sources]
    touched = touched_entities(fresh, scope)
    if touched is not None:  # only the entities new data touched; the others' windows are carried over
        # Staged, so the joins below see its real (small) size and broadcast it instead of shuffling
        # a week of day rows and the published windows to meet it.
        with span(spark, "detect:touched entities"):
            touched.write.parquet(str(staging / "touched_entities"))
        touched = spark.read.parquet(str(staging / "touched_entities"))
        sources = {kind: tuple(rows.join(touched, ENTITY, "left_semi") for rows in sources[kind]) for kind in kinds}
    windows = entity_windows({kind: sources[kind] for kind in kinds}, scope.window_ends)
    if touched is not None:
        windows = windows.unionByName(carried_windows(published["entity_windows"], scope, kinds, touched))
    windows = _write(windows, t["entity_windows"], staging)
    recent = _context(lookups, published["lookups"], scope, scope.dates)
    members = _write(
        member_days(lookups.unionByName(published["lookups"].where(older)), k), t["campaign_member_days"], staging
    )
    members = _context(members, published["campaign_member_days"], scope, scope.day_dates)
    rules = [r for r in ruleset.campaigns if r.enabled]
    if not rules:
        found = spark.createDataFrame([], CAMPAIGNS.spark_schema())
    elif scope.campaigns_from and touched is not None:  # groups without an account in the new data carried over
        clients = touched.where(F.col("entity_type") == "client_id").select(F.col("entity_value").alias("client_id"))
        before = published["campaigns"].where(F.col("detect_run_id") == scope.campaigns_from)
        found = incremental_campaigns(members, clients, before, rules)
    else:
        found = find_campaigns(members, rules)
    found = found.withColumn("detect_run_id", F.lit(run_id)).withColumn("detect_date", F.lit(detected_at.date()))
    # One file, but each link's groups still merged in parallel: coalesce(1) would run them all in one task.
    found = _write(found.repartition(1), CAMPAIGNS, staging)
    allowed = allow_frame(spark, allowlist)
    # Read twice (who was hit, then their flags): kept, not recomputed from every rule again.
    hits = all_hits(windows, found, ruleset, allowed).persist(StorageLevel.MEMORY_AND_DISK)
    all_days = published["entity_days"].where(~_in_dates(scope.day_dates)).unionByName(days)
    touched = all_days.join(hits.select(*ENTITY).distinct(), ENTITY, "left_semi")
    totals = entity_totals(touched).unionByName(campaign_totals(found))
    # Computed once and split in two: each split alone would recompute every rule over the windows.
    flags = flag(hits, totals, ruleset, run_id=run_id, detected_at=detected_at).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        keep, audit = split_allowlisted(flags, allowed)
        keep = _write(keep.coalesce(1), t["flagged_clients"], staging)
        _write(audit.coalesce(1), t["allowlisted_hits"], staging)
    finally:
        flags.unpersist()
        hits.unpersist()
    _write(exposures(recent, keep).coalesce(1), t["exposures"], staging)
    _write(targets(lookups, keep, ruleset, run_id), t["targets"], staging)
    # From the Parquet footers: no Spark job per table; a table the run left empty has no files and counts 0.
    return {name: _rows(staging / name) for name in DETECTION_TABLES}


def _rows(path: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in path.rglob("*.parquet"))


def plan(
    requests: DataFrame, covered: set[str], mode: str, backfill: tuple[date, date] | None = None
) -> tuple[Scope, list[str]]:
    """What a run recomputes, and the ingest runs it will have covered.

    incremental: the event dates of requests from ingest runs no detection has taken in yet (late
    events included: they touch their own dates); full: every date; backfill: the given range.
    """
    pairs = requests.select("event_date", "ingest_run_id").distinct()
    if mode == "incremental":
        pairs = pairs.where(~F.col("ingest_run_id").isin(sorted(covered)))
    with span(requests.sparkSession, "detect:plan"):
        rows = pairs.collect()  # one row per (date, ingest run): small
        last = requests.agg(F.max("event_date")).first()[0]
    runs = sorted(covered | {r["ingest_run_id"] for r in rows})
    if mode == "backfill":
        first_day, last_day = backfill
        dates = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
        runs = sorted(covered)
    else:
        dates = sorted({r["event_date"] for r in rows})
    ends = seven_day_ends(dates, last) if last else []
    return Scope(mode, dates, ends), runs


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry: a full detection over the lake's requests into --staging; prints table row counts."""
    from core.allowlist import load_allowlist
    from core.lake import Lake
    from core.rules import load_rules
    from core.settings import load_settings
    from jobs.session import get_spark

    parser = argparse.ArgumentParser(prog="jobs/detect.py", description=main.__doc__)
    parser.add_argument("--lake", type=Path)
    parser.add_argument("--staging", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--rules", type=Path)
    parser.add_argument("--allowlist", type=Path)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings(args.config).with_overrides(lake=args.lake)
    now = datetime.now(timezone.utc)
    warnings = [*settings.warnings]
    rules, allowed = load_rules(args.rules, warnings), load_allowlist(args.allowlist, now.date(), warnings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    spark = get_spark(settings, "enumwatch-detect")
    lake = Lake(settings.lake)
    requests = lake.read(spark, "requests")
    scope, _ = plan(requests, set(), "full")
    counts = stage(
        spark,
        requests,
        {name: lake.read(spark, name) for name in CONTEXT},
        rules,
        allowed,
        scope=scope,
        run_id=args.run_id,
        detected_at=now,
        staging=args.staging,
    )
    json.dump(counts, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
