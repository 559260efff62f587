"""entity_windows + campaigns -> flagged_clients: which rules fired, how severe, and the evidence.

Rules come from `core.rules` (config/rules.yaml); this module only turns them into column
expressions. A rule hit is one (entity, rule, window) whose conditions hold; an entity's flag keeps
its strongest window per rule and window kind as evidence, so a reviewer sees the observed value
next to the threshold it crossed.
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from core.allowlist import AllowEntry
from core.rules import SEVERITIES, PopulationRule, RuleSet, ThresholdRule
from jobs.campaigns import FIGURES
from jobs.sketches import union_estimate, union_sets, value_set
from jobs.windows import DISTINCT, ENTITY, SAMPLES
from schemas import ALLOWLISTED_HITS, FLAGGED_CLIENTS

_HIT_COLUMNS = [
    *ENTITY,
    "rule",
    "shadow",
    "window",
    "window_start",
    "window_end",
    "observed",
    "threshold",
    "strength",
    "watchlist_keys",
]


# The type of a window's array of rule hits (threshold_hits), for the empty array when no rule is enabled.
_WINDOW_HITS = (
    "array<struct<rule:string,shadow:boolean,observed:map<string,double>,threshold:map<string,double>,strength:double>>"
)


def _metric_map(values: dict[str, Column]) -> Column:
    return F.create_map(*[x for name, col in values.items() for x in (F.lit(name), col.cast("double"))])


def threshold_hits(windows: DataFrame, rules: list[ThresholdRule]) -> DataFrame:
    """Every (window, rule) in which all of the rule's conditions hold, in one pass over the windows.

    Each (rule, window kind) becomes one candidate evidence struct, null where it does not hold; a
    window row keeps its non-null candidates. One scan serves every rule, where a union of filtered
    scans would read entity_windows once per rule and kind.
    """
    candidates = []
    for rule in rules:
        for kind in rule.windows():
            limits = {metric: by_window[kind] for metric, by_window in rule.when.items()}
            condition = reduce(lambda a, b: a & b, [F.col(m) >= t for m, t in limits.items()], F.col("window") == kind)
            strength = F.least(*[F.col(m) / F.lit(t) if t else F.lit(1.0) for m, t in limits.items()], F.lit(1e9))
            hit = F.struct(
                F.lit(rule.name).alias("rule"),
                F.lit(rule.shadow).alias("shadow"),
                _metric_map({m: F.col(m) for m in limits}).alias("observed"),
                _metric_map({m: F.lit(t) for m, t in limits.items()}).alias("threshold"),
                strength.cast("double").alias("strength"),
            )
            candidates.append(F.when(condition, hit))
    none = F.array().cast(_WINDOW_HITS)  # no threshold rule enabled: no hits, same columns
    fired = F.filter(F.array(*candidates), lambda h: h.isNotNull()) if candidates else none
    kept = [*ENTITY, "window", "window_start", "window_end", "watchlist_keys"]
    return windows.select(*kept, F.explode(fired).alias("_h")).select(*kept, "_h.*").select(*_HIT_COLUMNS)


def population_hits(windows: DataFrame, rule: PopulationRule, allowed: DataFrame) -> DataFrame:
    """Entities far above the median + k * MAD of the same window's population (allowlisted left out)."""
    metric = rule.metric
    population = windows.where(F.col("window") == rule.window).join(allowed, ENTITY, "left_anti")
    med = population.groupBy("window_start").agg(
        F.percentile_approx(metric, 0.5).alias("median"), F.count(F.lit(1)).alias("population")
    )
    mad = (
        population.join(med, "window_start")
        .groupBy("window_start")
        .agg(F.percentile_approx(F.abs(F.col(metric) - F.col("median")), 0.5).alias("mad"))
    )
    limit = F.greatest(
        F.col("median") + F.lit(rule.k_mad) * F.greatest(F.col("mad") * 1.4826, F.lit(1.0)), F.lit(rule.min_value)
    )
    return (
        population.join(med, "window_start")
        .join(mad, "window_start")
        .where((F.col("population") >= rule.min_population) & (F.col(metric) >= limit))
        .select(
            *ENTITY,
            F.lit(rule.name).alias("rule"),
            F.lit(rule.shadow).alias("shadow"),
            "window",
            "window_start",
            "window_end",
            _metric_map({metric: F.col(metric), "median": F.col("median"), "mad": F.col("mad")}).alias("observed"),
            _metric_map({metric: limit}).alias("threshold"),
            (F.col(metric) / limit).cast("double").alias("strength"),
            "watchlist_keys",
        )
    )


def campaign_hits(campaigns: DataFrame, ruleset: RuleSet) -> DataFrame:
    """Campaigns as rule hits of entity type `campaign`, over the whole detection range.

    The evidence holds the group's figures and, as thresholds, the rule's minimums, so a reviewer
    reads each observed value next to the limit it reached.
    """
    shadow = F.create_map(*[x for r in ruleset.campaigns for x in (F.lit(r.name), F.lit(r.shadow))])
    limits = F.lit(None).cast("map<string,double>")
    for r in ruleset.campaigns:
        mins = r.minimums()
        if mins:
            limits = F.when(F.col("rule") == r.name, _metric_map({k: F.lit(v) for k, v in mins.items()})).otherwise(
                limits
            )
    observed = F.map_filter(_metric_map({k: F.col(k) for k in FIGURES}), lambda _, v: v.isNotNull())
    return campaigns.select(
        F.lit("campaign").alias("entity_type"),
        F.col("link_value").alias("entity_value"),
        "rule",
        shadow[F.col("rule")].alias("shadow"),
        F.lit("range").alias("window"),
        F.col("first_seen").alias("window_start"),
        F.col("last_seen").alias("window_end"),
        observed.alias("observed"),
        limits.alias("threshold"),
        F.col("n_members").cast("double").alias("strength"),
        F.coalesce(F.col("watchlist_keys"), F.array().cast("array<string>")).alias("watchlist_keys"),
    )


def all_hits(windows: DataFrame, campaigns: DataFrame, ruleset: RuleSet, allowed: DataFrame) -> DataFrame:
    """The hits of every enabled rule."""
    frames = [threshold_hits(windows, [r for r in ruleset.threshold if r.enabled])]
    frames += [population_hits(windows, r, allowed) for r in ruleset.population if r.enabled]
    frames.append(campaign_hits(campaigns, ruleset))
    return reduce(DataFrame.unionByName, [f.select(*_HIT_COLUMNS) for f in frames])


def entity_totals(hours: DataFrame) -> DataFrame:
    """Per entity over the whole detection range: counts, distinct counts and target sets."""
    return (
        hours.groupBy(*ENTITY)
        .agg(
            F.sum("lookups").alias("lookups"),
            F.sum("hits").alias("hits"),
            *[union_estimate(DISTINCT[n]).alias(n) for n in ("distinct_ids", "distinct_names", "distinct_watchlist")],
            union_sets("watchlist_keys").alias("watchlist_keys"),
            union_sets("watchlist_hit_keys").alias("watchlist_hit_keys"),
            F.slice(union_sets("id_samples"), 1, SAMPLES).alias("masked_id_samples"),
            F.min("first_seen").alias("first_seen"),
            F.max("last_seen").alias("last_seen"),
        )
        .withColumns({n: F.least(n, "lookups") for n in ("distinct_ids", "distinct_names", "distinct_watchlist")})
        .withColumn("members", F.lit(None).cast("array<string>"))
    )


def campaign_totals(campaigns: DataFrame) -> DataFrame:
    """Campaigns shaped like entity totals (one row per campaign link value)."""
    return campaigns.groupBy(F.lit("campaign").alias("entity_type"), F.col("link_value").alias("entity_value")).agg(
        F.sum("lookups").alias("lookups"),
        F.sum("hits").alias("hits"),
        F.max("distinct_ids").alias("distinct_ids"),
        F.lit(0).cast("bigint").alias("distinct_names"),
        F.coalesce(F.max("distinct_watchlist"), F.lit(0)).cast("bigint").alias("distinct_watchlist"),
        union_sets("watchlist_keys").alias("watchlist_keys"),
        union_sets("watchlist_hit_keys").alias("watchlist_hit_keys"),
        F.array().cast("array<string>").alias("masked_id_samples"),
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        union_sets("members").alias("members"),
    )


def _by_rule_and_window(left: Column, right: Column) -> Column:
    a = F.concat_ws("/", left["rule"], left["window"])
    b = F.concat_ws("/", right["rule"], right["window"])
    return F.when(a < b, -1).when(a > b, 1).otherwise(0)


def _severity_rank(ruleset: RuleSet) -> Column:
    names = [r.name for r in [*ruleset.threshold, *ruleset.population, *ruleset.campaigns]]
    mapping = F.create_map(*[x for n in names for x in (F.lit(n), F.lit(SEVERITIES.index(ruleset.severity_of(n))))])
    return mapping[F.col("rule")]


def flag(
    hits: DataFrame,
    totals: DataFrame,
    ruleset: RuleSet,
    *,
    run_id: str,
    detected_at: datetime,
) -> DataFrame:
    """One row per entity with a hit: rules, severity, score and evidence (allowlist not applied yet)."""
    strongest = Window.partitionBy(*ENTITY, "rule", "window").orderBy(F.col("strength").desc(), "window_start")
    best = (
        hits.withColumn("_n", F.row_number().over(strongest))
        .where("_n = 1")
        .withColumn("rank", _severity_rank(ruleset))
    )
    evidence = F.struct(
        "rule", "shadow", "window", "window_start", "window_end", "observed", "threshold", "watchlist_keys"
    )
    live = ~F.col("shadow")
    per_entity = best.groupBy(*ENTITY).agg(
        value_set(F.when(live, F.col("rule"))).alias("live_rules"),
        value_set("rule").alias("all_rules"),
        F.max(F.when(live, F.col("rank"))).alias("live_rank"),
        F.max("rank").alias("any_rank"),
        F.array_sort(F.collect_list(evidence), _by_rule_and_window).alias("evidence"),
    )
    scoring = ruleset.scoring
    base = F.create_map(*[x for s in SEVERITIES for x in (F.lit(SEVERITIES.index(s)), F.lit(scoring["base"][s]))])
    shadow_only = F.size("live_rules") == 0
    rank = F.coalesce(F.col("live_rank"), F.col("any_rank"))
    got_data = F.col("hits") > 0
    got_watchlist = F.size(F.coalesce(F.col("watchlist_hit_keys"), F.array())) > 0
    final_rank = F.when(got_watchlist, F.lit(3)).otherwise(F.least(F.lit(3), rank + got_data.cast("int")))
    rules = F.when(shadow_only, F.col("all_rules")).otherwise(F.col("live_rules"))
    score = (
        base[rank]
        + F.lit(scoring["per_extra_rule"]) * (F.size(rules) - 1)
        + F.when(got_data, F.lit(scoring["hits_bonus"])).otherwise(0)
        + F.when(got_watchlist, F.lit(scoring["watchlist_hits_bonus"])).otherwise(0)
    )
    severities = F.array(*[F.lit(s) for s in SEVERITIES])
    return (
        per_entity.join(totals, ENTITY, "inner")
        .withColumn("rules", rules)
        .withColumn("shadow", shadow_only)
        .withColumn("severity", F.element_at(severities, final_rank + 1))
        .withColumn("score", F.least(F.lit(100), score).cast("int"))
        .withColumn("hit_ratio", F.col("hits") / F.col("lookups"))
        .withColumn("detect_run_id", F.lit(run_id))
        .withColumn("detected_at", F.lit(detected_at))
        .withColumn("detect_date", F.lit(detected_at.date()))
    )


def allow_frame(spark: SparkSession, entries: list[AllowEntry]) -> DataFrame:
    """The allowlist in force, as (entity_type, entity_value, allow_reason)."""
    return spark.createDataFrame(
        [(e.entity_type, e.entity_value, e.reason) for e in entries],
        "entity_type string, entity_value string, allow_reason string",
    )


def split_allowlisted(flags: DataFrame, allowed: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(flags for on-call, allowlisted entities that would have been flagged)."""
    keep = flags.join(allowed, ENTITY, "left_anti").transform(FLAGGED_CLIENTS.conform)
    audit = flags.join(allowed, ENTITY, "inner").transform(ALLOWLISTED_HITS.conform)
    return keep, audit
