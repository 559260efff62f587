"""The detection job: requests -> lookups -> entity_hours -> entity_windows -> campaigns -> flagged_clients.

Every intermediate table is written to the run's staging directory and read back before the next
step, so each step starts from Parquet (short plans, no recomputation) and each table can be checked
before anything is published. `stage` is what the Prefect flow calls; `main` runs it under spark-submit.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from enumwatch.allowlist import AllowEntry
from enumwatch.rules import RuleSet
from jobs.campaigns import campaigns as find_campaigns
from jobs.flags import all_hits, allow_frame, campaign_totals, entity_totals, flag, split_allowlisted
from jobs.lookups import to_lookups
from jobs.windows import entity_hours, entity_prefix_hours, entity_windows
from schemas import CAMPAIGNS, LAKE_TABLES, Table

DETECTION_TABLES = (
    "lookups",
    "entity_hours",
    "entity_prefix_hours",
    "entity_windows",
    "campaigns",
    "flagged_clients",
    "allowlisted_hits",
)


def _write(df: DataFrame, table: Table, staging: Path) -> DataFrame:
    path = str(staging / table.name)
    writer = df.transform(table.conform).write.mode("overwrite")
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    writer.parquet(path)
    return df.sparkSession.read.schema(table.spark_schema()).parquet(path)


def stage(
    spark: SparkSession,
    requests: DataFrame,
    ruleset: RuleSet,
    allowlist: list[AllowEntry],
    *,
    run_id: str,
    detected_at: datetime,
    staging: Path,
) -> dict[str, int]:
    """Compute every detection table from `requests` into `staging`; return their row counts."""
    t = LAKE_TABLES
    lookups = _write(to_lookups(requests).repartition("event_date"), t["lookups"], staging)
    hours = _write(entity_hours(lookups, ruleset.hll_lg_config_k), t["entity_hours"], staging)
    prefix_hours = _write(entity_prefix_hours(lookups), t["entity_prefix_hours"], staging)
    windows = _write(entity_windows(hours, prefix_hours, ruleset.enabled_windows), t["entity_windows"], staging)
    groups = [find_campaigns(lookups, r, ruleset.hll_lg_config_k) for r in ruleset.campaigns if r.enabled]
    found = reduce(DataFrame.unionByName, groups) if groups else spark.createDataFrame([], CAMPAIGNS.spark_schema())
    found = found.withColumn("detect_run_id", F.lit(run_id)).withColumn("detect_date", F.lit(detected_at.date()))
    found = _write(found.coalesce(1), CAMPAIGNS, staging)
    allowed = allow_frame(spark, allowlist)
    hits = all_hits(windows, found, ruleset, allowed)
    totals = entity_totals(hours).unionByName(campaign_totals(found))
    flags = flag(hits, totals, ruleset, run_id=run_id, detected_at=detected_at)
    keep, audit = split_allowlisted(flags, allowed)
    _write(keep.coalesce(1), t["flagged_clients"], staging)
    _write(audit.coalesce(1), t["allowlisted_hits"], staging)
    return {name: spark.read.parquet(str(staging / name)).count() for name in DETECTION_TABLES}


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry: detect over the lake's requests into --staging and print table row counts."""
    from enumwatch.allowlist import load_allowlist
    from enumwatch.lake import Lake
    from enumwatch.rules import load_rules
    from enumwatch.settings import load_settings
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
    spark = get_spark(settings, "enumwatch-detect")
    now = datetime.now(timezone.utc)
    counts = stage(
        spark,
        Lake(settings.lake).read(spark, "requests"),
        load_rules(args.rules),
        load_allowlist(args.allowlist, now.date()),
        run_id=args.run_id,
        detected_at=now,
        staging=args.staging,
    )
    json.dump(counts, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
