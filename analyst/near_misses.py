"""Why an entity was not flagged: the threshold rules that came closest, and how far below each stayed.

This is the analyst's first question after a miss. For every enabled threshold rule and window
kind, each of the entity's windows in `entity_windows` gets a closeness: the smallest
observed / threshold over the rule's conditions (a rule fires only when every condition reaches
its threshold, so the weakest condition is how far the rule is from firing). The best window per
rule is kept; rules are listed closest first. Population and campaign rules judge the entity
against others, so they are not scored here.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from core.rules import RuleSet


def _rule_windows(windows: DataFrame, ruleset: RuleSet) -> DataFrame | None:
    frames = []
    for rule in ruleset.threshold:
        if not rule.enabled:
            continue
        for kind in rule.windows():
            limits = {metric: by_window[kind] for metric, by_window in rule.when.items()}
            ratios = [F.col(m).cast("double") / F.lit(t) if t else F.lit(1.0) for m, t in limits.items()]
            frames.append(
                windows.where(F.col("window") == kind).select(
                    F.lit(rule.name).alias("rule"),
                    F.lit(rule.shadow).alias("shadow"),
                    "window",
                    "window_start",
                    (F.least(*ratios, F.lit(1e9)) if len(ratios) > 1 else ratios[0]).alias("closeness"),
                    F.array(
                        *[
                            F.struct(
                                F.lit(m).alias("metric"),
                                F.col(m).cast("double").alias("observed"),
                                F.lit(float(t)).alias("threshold"),
                            )
                            for m, t in limits.items()
                        ]
                    ).alias("conditions"),
                )
            )
    return reduce(DataFrame.unionByName, frames) if frames else None


def closest_rules(windows: DataFrame, ruleset: RuleSet, top: int = 5) -> list[dict]:
    """The `top` threshold rules closest to firing on `windows` (one entity's rows), closest first."""
    scored = _rule_windows(windows, ruleset)
    if scored is None:
        return []
    best = Window.partitionBy("rule").orderBy(F.col("closeness").desc(), "window_start", "window")
    rows = (
        scored.withColumn("_n", F.row_number().over(best))
        .where("_n = 1")
        .drop("_n")
        .orderBy(F.col("closeness").desc(), "rule")
        .limit(top)
        .collect()  # at most `top` rows: one per rule
    )
    return [r.asDict(recursive=True) for r in rows]


def describe_near_misses(misses: list[dict]) -> list[str]:
    """Lines such as '- watchlist_targeting: 67% of threshold (day from 2026-11-01): distinct_watchlist 2 (< 3)'."""
    lines = []
    for m in misses:
        conditions = ", ".join(
            f"{c['metric']} {c['observed']:g} ({'>=' if c['observed'] >= c['threshold'] else '<'} {c['threshold']:g})"
            for c in m["conditions"]
        )
        shadow = " (shadow)" if m["shadow"] else ""
        lines.append(
            f"- {m['rule']}{shadow}: {m['closeness']:.0%} of threshold "
            f"({m['window']} from {m['window_start']:%Y-%m-%d %H:%M}): {conditions}"
        )
    return lines
