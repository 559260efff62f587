"""lookups + flagged_clients -> targets: the victims' side, per watchlist person and per ID prefix and day.

A bought list in use shows on its victims whoever the buyers are: one person's data returned to
many distinct entities. Each row counts, for one target and day, the entities that looked it up,
those that got data back, and those among them that this run flagged (directly or as a member of
a flagged campaign). Entity counts are HLL estimates; the sketch is kept so longer spans merge
without rescanning lookups. Target rules from config/rules.yaml are evaluated on each row.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from core.rules import RuleSet
from schemas import TARGETS

_TARGET_COLUMNS = {"watchlist": "watchlist_key", "id_prefix": "id_prefix_hash"}


def flagged_entities(flags: DataFrame) -> DataFrame:
    """The entities live flags name: flagged entities themselves and the member accounts of flagged campaigns."""
    live = flags.where(~F.col("shadow"))
    direct = live.where(F.col("entity_type") != "campaign").select("entity_type", "entity_value")
    members = live.where(F.col("entity_type") == "campaign").select(
        F.lit("client_id").alias("entity_type"), F.explode("members").alias("entity_value")
    )
    return direct.unionByName(members).distinct().withColumn("flagged", F.lit(True))


def _fired(ruleset: RuleSet) -> Column:
    names = [
        F.when((F.col("target_type") == r.target_type) & (F.col(r.metric) >= r.min_value), F.lit(r.name))
        for r in ruleset.targets
        if r.enabled
    ]
    if not names:
        return F.array().cast("array<string>")
    return F.filter(F.array(*names), lambda n: n.isNotNull())


def targets(lookups: DataFrame, flags: DataFrame, ruleset: RuleSet, run_id: str) -> DataFrame:
    """One row per target (watchlist person, ID prefix) and day in `lookups`, with this run's flags counted."""
    k = ruleset.hll_lg_config_k
    who = F.concat_ws(":", "entity_type", "entity_value")
    marked = lookups.join(F.broadcast(flagged_entities(flags)), ["entity_type", "entity_value"], "left")
    frames = [
        marked.where(F.col(column).isNotNull()).select(
            F.lit(kind).alias("target_type"),
            F.col(column).alias("target"),
            "event_date",
            "hit",
            "flagged",
            who.alias("who"),
        )
        for kind, column in _TARGET_COLUMNS.items()
    ]
    per_target = (
        reduce(DataFrame.unionByName, frames)
        .groupBy("event_date", "target_type", "target")
        .agg(
            F.count(F.lit(1)).alias("lookups"),
            F.count_if("hit").alias("hits"),
            F.hll_sketch_agg("who", k).alias("sketch_entities"),
            F.hll_sketch_agg(F.when(F.col("hit"), F.col("who")), k).alias("_hit"),
            F.hll_sketch_agg(F.when(F.col("flagged"), F.col("who")), k).alias("_flagged"),
        )
    )
    counts = {
        "distinct_entities": F.hll_sketch_estimate("sketch_entities"),
        "hit_entities": F.hll_sketch_estimate("_hit"),
        "flagged_entities": F.hll_sketch_estimate("_flagged"),
    }
    return (
        per_target.withColumns({n: F.least(F.coalesce(c, F.lit(0)), F.col("lookups")) for n, c in counts.items()})
        .withColumn("hit_entities", F.least("hit_entities", "distinct_entities"))
        .withColumn("flagged_entities", F.least("flagged_entities", "distinct_entities"))
        .withColumn("rules", _fired(ruleset))
        .withColumn("detect_run_id", F.lit(run_id))
        .drop("_hit", "_flagged")
        .transform(TARGETS.conform)
    )
