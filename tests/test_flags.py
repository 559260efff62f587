"""entity_windows -> flagged_clients: which rules fire where, shadow rules, severity, score and the allowlist."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from core.allowlist import AllowEntry
from core.rules import CampaignRule, PopulationRule, RuleSet, ThresholdRule
from jobs.flags import all_hits, allow_frame, campaign_totals, flag, population_hits, split_allowlisted, threshold_hits
from schemas import ALLOWLISTED_HITS, CAMPAIGNS, ENTITY_WINDOWS, FLAGGED_CLIENTS

DAY = datetime(2026, 11, 1)
NOW = datetime(2026, 11, 27, 9, 30)
SCORING = {
    "base": {"low": 20, "medium": 40, "high": 60, "critical": 80},
    "per_extra_rule": 5,
    "hits_bonus": 10,
    "watchlist_hits_bonus": 20,
}
_START = {"hour": DAY + timedelta(hours=10), "day": DAY, "7d": DAY - timedelta(days=6)}
_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "7d": timedelta(days=7)}


def windows_frame(spark, rows: list[dict]):
    """`entity_windows` rows: each dict names the entity, the window kind and the metrics that matter; the rest is 0."""
    full = []
    for row in rows:
        kind = row.get("window", "day")
        start = row.get("window_start", _START[kind])
        base = {c.name: 0 for c in ENTITY_WINDOWS.columns}
        base.update(
            entity_type="client_id",
            window=kind,
            window_start=start,
            window_end=start + _LENGTH[kind],
            lookups=1000,
            miss_share=0.0,
            invalid_id_share=0.0,
            consecutive_share=0.0,
            watchlist_keys=[],
            watchlist_hit_keys=[],
            first_seen=start,
            last_seen=start,
            window_date=start.date(),
        )
        base.update(row)
        full.append(tuple(base[c.name] for c in ENTITY_WINDOWS.columns))
    return spark.createDataFrame(full, ENTITY_WINDOWS.spark_schema())


def totals_frame(spark, rows: list[tuple]):
    """Per-entity totals as `flag` joins them: (entity_value, hits, watchlist_hit_keys)."""
    return spark.createDataFrame(
        [
            ("client_id", v, 1000, hits, 900, 0, len(wl), wl, wl, [], DAY, DAY + timedelta(hours=2), None)
            for v, hits, wl in rows
        ],
        "entity_type string, entity_value string, lookups bigint, hits bigint, distinct_ids bigint, distinct_names bigint, "
        "distinct_watchlist bigint, watchlist_keys array<string>, watchlist_hit_keys array<string>, "
        "masked_id_samples array<string>, first_seen timestamp, last_seen timestamp, members array<string>",
    )


def rule(name, severity, when, shadow=False, enabled=True) -> ThresholdRule:
    return ThresholdRule(name, f"{name} test rule", severity, enabled, shadow, when)


SCAN = rule("scan", "high", {"consecutive_share": {"hour": 0.5, "day": 0.5}, "distinct_ids": {"day": 20}})


@pytest.mark.spark
def test_threshold_hits_fire_only_when_every_condition_holds_in_a_window_with_thresholds(spark):
    windows = windows_frame(
        spark,
        [
            {"entity_value": "both", "consecutive_share": 0.6, "distinct_ids": 25},
            {"entity_value": "at_threshold", "consecutive_share": 0.5, "distinct_ids": 20},
            {"entity_value": "ids_short", "consecutive_share": 0.9, "distinct_ids": 19},
            {"entity_value": "share_short", "consecutive_share": 0.4, "distinct_ids": 500},
            # the hour has a consecutive_share threshold but no distinct_ids one: not a window this rule reads
            {"entity_value": "hour_only", "window": "hour", "consecutive_share": 0.9, "distinct_ids": 500},
            {"entity_value": "week_only", "window": "7d", "consecutive_share": 0.9, "distinct_ids": 500},
        ],
    )
    got = threshold_hits(windows, [SCAN]).select("entity_value", "rule", "shadow", "window", "observed", "threshold")
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [
                (
                    "both",
                    "scan",
                    False,
                    "day",
                    {"consecutive_share": 0.6, "distinct_ids": 25.0},
                    {"consecutive_share": 0.5, "distinct_ids": 20.0},
                ),
                (
                    "at_threshold",
                    "scan",
                    False,
                    "day",
                    {"consecutive_share": 0.5, "distinct_ids": 20.0},
                    {"consecutive_share": 0.5, "distinct_ids": 20.0},
                ),
            ],
            "entity_value string, rule string, shadow boolean, window string, observed map<string,double>, "
            "threshold map<string,double>",
        ),
    )


@pytest.mark.spark
def test_threshold_hits_use_each_window_kinds_own_threshold(spark):
    many = rule("many_ids", "high", {"distinct_ids": {"hour": 30, "day": 50, "7d": 100}})
    windows = windows_frame(
        spark,
        [
            {"entity_value": "burst", "window": "hour", "distinct_ids": 40},
            {"entity_value": "burst", "window": "day", "distinct_ids": 40},
            {"entity_value": "slow", "window": "day", "distinct_ids": 45},
            {"entity_value": "slow", "window": "7d", "distinct_ids": 100},
        ],
    )
    got = threshold_hits(windows, [many]).select("entity_value", "window")
    assertDataFrameEqual(
        got, spark.createDataFrame([("burst", "hour"), ("slow", "7d")], "entity_value string, window string")
    )


@pytest.mark.spark
def test_threshold_hits_give_one_row_per_rule_a_window_meets_and_none_without_rules(spark):
    ids = rule("ids", "high", {"distinct_ids": {"day": 10}})
    names = rule("names", "medium", {"distinct_names": {"day": 10}}, shadow=True)
    windows = windows_frame(
        spark,
        [
            {"entity_value": "both", "distinct_ids": 20, "distinct_names": 40},
            {"entity_value": "names", "distinct_ids": 5, "distinct_names": 12},
            {"entity_value": "neither", "distinct_ids": 9, "distinct_names": 9},
        ],
    )
    got = threshold_hits(windows, [ids, names]).select("entity_value", "rule", "shadow", "strength")
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [("both", "ids", False, 2.0), ("both", "names", True, 4.0), ("names", "names", True, 1.2)],
            "entity_value string, rule string, shadow boolean, strength double",
        ),
    )
    assert threshold_hits(windows, []).count() == 0


# --- flag: one row per entity with rules, shadow, severity and score ----------------------------------------
MANY_IDS = rule("many_ids", "high", {"distinct_ids": {"day": 50}})
MANY_NAMES = rule("many_names", "medium", {"distinct_names": {"day": 50}})
BRUTE = rule("brute", "critical", {"max_seqs_per_prefix": {"day": 10}})
SHADOW = rule("trial_ids", "critical", {"distinct_ids": {"day": 10}}, shadow=True)
OFF = rule("switched_off", "critical", {"lookups": {"day": 1}}, enabled=False)
RULESET = RuleSet(
    source="test", hll_lg_config_k=14, windows={}, scoring=SCORING, threshold=[MANY_IDS, MANY_NAMES, BRUTE, SHADOW, OFF]
)


def flags_for(spark, windows: list[dict], totals: list[tuple]):
    windows_df = windows_frame(spark, windows)
    hits = threshold_hits(windows_df, [r for r in RULESET.threshold if r.enabled])
    return flag(hits, totals_frame(spark, totals), RULESET, run_id="detect-test", detected_at=NOW)


@pytest.mark.spark
def test_flag_severity_rises_with_hits_and_score_adds_up_and_caps_at_100(spark):
    got = flags_for(
        spark,
        [
            {"entity_value": "ids", "distinct_ids": 60},
            {"entity_value": "ids_names_hits", "distinct_ids": 60, "distinct_names": 60},
            {"entity_value": "names_hits", "distinct_names": 60},
            {"entity_value": "names_watchlist_hits", "distinct_names": 60},
            {"entity_value": "everything", "distinct_ids": 60, "distinct_names": 60, "max_seqs_per_prefix": 11},
        ],
        [
            ("ids", 0, []),
            ("ids_names_hits", 5, []),
            ("names_hits", 5, []),
            ("names_watchlist_hits", 5, ["wl-1"]),
            ("everything", 5, ["wl-1"]),
        ],
    )
    assertDataFrameEqual(
        got.select("entity_value", "rules", "shadow", "severity", "score"),
        spark.createDataFrame(
            [
                # high, no data returned: base 60 (the shadow rule that also fired is not listed)
                ("ids", ["many_ids"], False, "high", 60),
                # high + hits -> critical; 60 + 5 for the second rule + 10 for hits
                ("ids_names_hits", ["many_ids", "many_names"], False, "critical", 75),
                # medium + hits -> high; 40 + 10
                ("names_hits", ["many_names"], False, "high", 50),
                # watchlist people's data returned -> critical; 40 + 10 + 20
                ("names_watchlist_hits", ["many_names"], False, "critical", 70),
                # 80 + 2 * 5 + 10 + 20 = 120, capped
                ("everything", ["brute", "many_ids", "many_names"], False, "critical", 100),
            ],
            "entity_value string, rules array<string>, shadow boolean, severity string, score int",
        ),
    )


@pytest.mark.spark
def test_flag_shadow_rule_alone_gives_a_shadow_flag_and_never_joins_live_rules(spark):
    got = flags_for(
        spark,
        [{"entity_value": "trial_only", "distinct_ids": 20}, {"entity_value": "live", "distinct_ids": 60}],
        [("trial_only", 0, []), ("live", 0, [])],
    )
    assertDataFrameEqual(
        got.select("entity_value", "rules", "shadow", "severity"),
        spark.createDataFrame(
            [("trial_only", ["trial_ids"], True, "critical"), ("live", ["many_ids"], False, "high")],
            "entity_value string, rules array<string>, shadow boolean, severity string",
        ),
    )
    live = got.where("entity_value = 'live'").select(F.explode("evidence").alias("e")).select("e.rule", "e.shadow")
    # the shadow rule's finding stays in the evidence for review, marked as shadow
    assertDataFrameEqual(
        live, spark.createDataFrame([("many_ids", False), ("trial_ids", True)], "rule string, shadow boolean")
    )


@pytest.mark.spark
def test_flag_disabled_rule_never_fires(spark):
    got = flags_for(spark, [{"entity_value": "busy", "lookups": 5000}], [("busy", 0, [])])
    assert got.collect() == []


@pytest.mark.spark
def test_flag_evidence_keeps_the_strongest_window_with_observed_value_and_threshold(spark):
    start = DAY + timedelta(days=1)
    got = flags_for(
        spark,
        [
            {"entity_value": "ids", "distinct_ids": 60, "watchlist_keys": ["wl-9"]},
            {"entity_value": "ids", "distinct_ids": 90, "window_start": start},
        ],
        [("ids", 0, [])],
    )
    evidence = (
        got.select(F.explode("evidence").alias("e"))
        .where("e.rule = 'many_ids'")
        .select("e.window", "e.window_start", "e.observed", "e.threshold")
    )
    assertDataFrameEqual(
        evidence,
        spark.createDataFrame(
            [("day", start, {"distinct_ids": 90.0}, {"distinct_ids": 50.0})],
            "window string, window_start timestamp, observed map<string,double>, threshold map<string,double>",
        ),
    )
    assert got.count() == 1, "two windows of one entity make one flag"


# --- population outlier ----------------------------------------------------------------------------------
OUTLIER = PopulationRule(
    "outlier",
    "far above the day's population",
    "medium",
    True,
    False,
    metric="distinct_ids",
    window="day",
    k_mad=3,
    min_population=6,
    min_value=20,
)


def _day(n: int) -> datetime:
    return DAY + timedelta(days=n)


@pytest.mark.spark
def test_population_hits_fire_far_above_the_baseline_only_with_enough_population(spark):
    ordinary = [2, 3, 3, 4, 2]
    rows = [{"entity_value": f"p{i}", "window_start": _day(0), "distinct_ids": v} for i, v in enumerate(ordinary)]
    rows.append({"entity_value": "big", "window_start": _day(0), "distinct_ids": 100})
    # next day: one fewer ordinary entity, so only 5 in the population, below min_population
    rows += [{"entity_value": f"p{i}", "window_start": _day(1), "distinct_ids": v} for i, v in enumerate(ordinary[:4])]
    rows.append({"entity_value": "big", "window_start": _day(1), "distinct_ids": 100})
    # a modest entity above the MAD limit but under min_value
    rows += [{"entity_value": f"p{i}", "window_start": _day(2), "distinct_ids": v} for i, v in enumerate(ordinary)]
    rows.append({"entity_value": "modest", "window_start": _day(2), "distinct_ids": 15})
    allowed = allow_frame(spark, [])
    got = population_hits(windows_frame(spark, rows), OUTLIER, allowed).select("entity_value", "window_start", "rule")
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [("big", _day(0), "outlier")], "entity_value string, window_start timestamp, rule string"
        ),
    )


@pytest.mark.spark
def test_population_hits_keep_allowlisted_entities_out_of_the_baseline(spark):
    rows = [{"entity_value": f"p{i}", "distinct_ids": v} for i, v in enumerate([2, 3, 3, 4, 2])]
    rows.append({"entity_value": "attacker", "distinct_ids": 100})
    # six partners with thousands of IDs would drag the median up to the attacker's level
    rows += [{"entity_value": f"partner{i}", "distinct_ids": 3000} for i in range(6)]
    windows = windows_frame(spark, rows)
    partners = [AllowEntry("client_id", f"partner{i}", "verification partner", None) for i in range(6)]

    with_allowlist = population_hits(windows, OUTLIER, allow_frame(spark, partners)).select("entity_value")
    assertDataFrameEqual(with_allowlist, spark.createDataFrame([("attacker",)], "entity_value string"))
    assert population_hits(windows, OUTLIER, allow_frame(spark, [])).where("entity_value = 'attacker'").count() == 0


@pytest.mark.spark
def test_population_hits_only_read_the_rules_window_kind(spark):
    rows = [{"entity_value": f"p{i}", "window": "hour", "distinct_ids": v} for i, v in enumerate([2, 3, 3, 4, 2])]
    rows.append({"entity_value": "big", "window": "hour", "distinct_ids": 100})
    assert population_hits(windows_frame(spark, rows), OUTLIER, allow_frame(spark, [])).count() == 0


# --- allowlist: would-be flags go to audit, never to on-call --------------------------------------------
@pytest.mark.spark
def test_split_allowlisted_moves_allowlisted_entities_to_audit_only(spark):
    flags = flags_for(
        spark,
        [{"entity_value": "attacker", "distinct_ids": 60}, {"entity_value": "partner-01", "distinct_ids": 3000}],
        [("attacker", 0, []), ("partner-01", 2700, [])],
    )
    allowed = allow_frame(
        spark,
        [
            AllowEntry("client_id", "partner-01", "verification partner", None),
            # same value, other entity type: must not shield a device or campaign of that name
            AllowEntry("device_id", "attacker", "a device that happens to share the id", None),
        ],
    )
    keep, audit = split_allowlisted(flags, allowed)
    assert keep.columns == FLAGGED_CLIENTS.names
    assert audit.columns == ALLOWLISTED_HITS.names
    assertDataFrameEqual(keep.select("entity_value"), spark.createDataFrame([("attacker",)], "entity_value string"))
    assertDataFrameEqual(
        audit.select("entity_value", "allow_reason", "rules"),
        spark.createDataFrame(
            [("partner-01", "verification partner", ["many_ids"])],
            "entity_value string, allow_reason string, rules array<string>",
        ),
    )


@pytest.mark.spark
def test_campaign_flags_carry_their_members(spark):
    farm = CampaignRule("farm", "accounts on one device", "high", True, False, "device_id", 8, 50)
    ruleset = RuleSet(source="test", hll_lg_config_k=14, windows={}, scoring=SCORING, campaigns=[farm])
    found = spark.createDataFrame(
        [
            (
                "detect-test",
                "farm",
                "device_id",
                "d-farm",
                None,
                ["u1", "u2"],
                2,
                80,
                60,
                0,
                30.0,
                1.0,
                0,
                0.0,
                None,
                0.0,
                0.5,
                [],
                [],
                DAY,
                DAY,
                NOW.date(),
            )
        ],
        CAMPAIGNS.spark_schema(),
    )
    hits = all_hits(windows_frame(spark, []), found, ruleset, allow_frame(spark, []))
    got = flag(hits, campaign_totals(found), ruleset, run_id="detect-test", detected_at=NOW)
    assertDataFrameEqual(
        got.select("entity_type", "entity_value", "members", "rules", "severity", "score", "shadow"),
        spark.createDataFrame(
            [("campaign", "d-farm", ["u1", "u2"], ["farm"], "high", 60, False)],
            "entity_type string, entity_value string, members array<string>, rules array<string>, severity string, "
            "score int, shadow boolean",
        ),
    )
    (evidence,) = got.first()["evidence"]
    assert evidence["threshold"] == {"n_members": 8.0, "distinct_ids": 50.0}
    assert evidence["observed"]["n_members"] == 2.0 and "watchlist_disjointness" not in evidence["observed"]


@pytest.mark.spark
def test_campaign_flags_are_critical_when_a_watchlist_persons_data_reached_a_member(spark):
    split = CampaignRule("split", "split list", "high", True, False, "subnet_user_agent", 6)
    ruleset = RuleSet(source="test", hll_lg_config_k=14, windows={}, scoring=SCORING, campaigns=[split])
    row = ("detect-test", "split", "subnet_user_agent", "185.51.43.0/24", "ua", ["u1", "u2"], 2, 8, 8, 8, 4.0, 1.0)
    row += (2, 1.0, 1.0, 1.0, 0.2, ["wl-a", "wl-b"], ["wl-a"], DAY, DAY, NOW.date())
    found = spark.createDataFrame([row], CAMPAIGNS.spark_schema())
    hits = all_hits(windows_frame(spark, []), found, ruleset, allow_frame(spark, []))
    (got,) = flag(hits, campaign_totals(found), ruleset, run_id="detect-test", detected_at=NOW).collect()
    assert (got["severity"], got["watchlist_hit_keys"], got["distinct_watchlist"]) == ("critical", ["wl-a"], 2)
    assert got["evidence"][0]["watchlist_keys"] == ["wl-a", "wl-b"]
