"""lookups -> campaigns: accounts that act together, judged as a group rather than one by one.

Accounts are grouped by what links them (`CampaignRule.link`): one device fingerprint; one /24
(IPv4) or /64 (IPv6) with one user agent; or one user agent whose accounts first appeared within
a few minutes of each other (sessions that start together, on any network). The group is then
judged on what only a group shows: distinct targets and watchlist people together, how disjoint
the members' targets are, the share of lookups that returned data, and how close together the
members started. So a seller's fresh accounts that split one bought list, each looking up only
3-5 people, are found, while an office of long-lived colleagues with overlapping lookups, or a
fan club checking one idol, is not.

Each member's targets are HLL sketches; the union of the sketches against the sum of their sizes
says whether members split one target list between them (disjoint) or look up the same people.

What each account did is first reduced to one row per day and link values (`member_days`, stored as
`campaign_member_days`): the rules merge those rows over the days a detection covers, so an
incremental run reads six stored days instead of every lookup of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from core.rules import CampaignRule, RuleSet
from jobs import sketches
from jobs.sketches import union_estimate, union_sets, value_set
from schemas import CAMPAIGN_MEMBER_DAYS

# The code that decides the groups: this module and the set and sketch merges it uses.
GROUPING_CODE = (Path(__file__), Path(sketches.__file__))

MAX_MEMBERS = 1000
# The figures of a group that rules' conditions read, and that a flag shows as observed.
FIGURES = (
    "n_members",
    "distinct_ids",
    "member_median_ids",
    "disjointness",
    "distinct_watchlist",
    "watchlist_member_share",
    "watchlist_disjointness",
    "hit_share",
    "start_spread_hours",
)
_LINK_COLUMNS = {"device_id": ["device_id"], "subnet_user_agent": ["net", "user_agent"], "user_agent_start": None}


def ip_64(ip: Column) -> Column:
    """The IPv6 /64 of an address as 'a:b:c:d::/64' (groups without leading zeros, lower case), else null."""
    halves = F.split(F.lower(ip), "::", 2)
    head = F.when(halves[0] == "", F.array()).otherwise(F.split(halves[0], ":"))
    tail = F.when((F.size(halves) < 2) | (halves[1] == ""), F.array()).otherwise(F.split(halves[1], ":"))
    missing = F.greatest(F.lit(0), 8 - F.size(head) - F.size(tail))
    groups = F.concat(head, F.array_repeat(F.lit("0"), missing), tail)
    trimmed = F.transform(F.slice(groups, 1, 4), lambda g: F.regexp_replace(g, "^0+(?=.)", ""))
    well_formed = ip.contains(":") & ~ip.contains(".") & (F.size(groups) == 8)
    return F.when(well_formed, F.concat(F.concat_ws(":", trimmed), F.lit("::/64")))


def member_days(lookups: DataFrame, lg_config_k: int) -> DataFrame:
    """One row per day, account and link values (device, network, user agent): what the account looked up.

    Counts, sketches, sets and times cover the lookups that carry an ID number or a watchlist person.
    An account's other lookups leave rows with no counts: their user agent is still the account's own.
    """
    relevant = F.col("id_hash").isNotNull() | F.col("watchlist_key").isNotNull()
    return (
        lookups.where(F.col("client_id").isNotNull())
        .withColumn("net", F.coalesce("ip_24", ip_64(F.col("client_ip"))))
        .groupBy("event_date", "client_id", "device_id", "net", "user_agent")
        .agg(
            F.count_if(relevant).alias("lookups"),
            F.count_if(relevant & F.col("hit")).alias("hits"),
            F.hll_sketch_agg("id_hash", lg_config_k).alias("sketch_ids"),
            F.hll_sketch_agg("watchlist_key", lg_config_k).alias("sketch_watchlist"),
            value_set("watchlist_key").alias("watchlist_keys"),
            value_set(F.when(F.col("hit"), F.col("watchlist_key"))).alias("watchlist_hit_keys"),
            F.min(F.when(relevant, F.col("event_time"))).alias("first_seen"),
            F.max(F.when(relevant, F.col("event_time"))).alias("last_seen"),
        )
        .transform(CAMPAIGN_MEMBER_DAYS.conform)
    )


def _members(days: DataFrame, link: list[str]) -> DataFrame:
    """One row per (link values, account): its targets, watchlist people, hits and first/last lookup."""
    days = days.where(F.col("client_id").isNotNull())
    if "user_agent" in link:
        # A line logged without a user agent still came from the account's program: without this, a
        # member whose one celebrity lookup lost its agent would drop out of its campaign's evidence.
        own = F.max("user_agent").over(Window.partitionBy("client_id"))
        days = days.withColumn("user_agent", F.coalesce(F.col("user_agent"), own))
    return (
        days.where(F.col("lookups") > 0)
        .where(reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in link]))
        .groupBy(*link, "client_id")
        .agg(
            F.hll_union_agg("sketch_ids", True).alias("sketch"),
            F.hll_union_agg("sketch_watchlist", True).alias("sketch_watchlist"),
            union_sets("watchlist_keys").alias("watchlist_keys"),
            union_sets("watchlist_hit_keys").alias("watchlist_hit_keys"),
            F.sum("lookups").alias("lookups"),
            F.sum("hits").alias("hits"),
            F.min("first_seen").alias("first_seen"),
            F.max("last_seen").alias("last_seen"),
        )
        .withColumn("member_ids", F.coalesce(F.hll_sketch_estimate("sketch"), F.lit(0)))
        .withColumn("member_watchlist", F.size("watchlist_keys"))
    )


def _started_together(members: DataFrame, gap_minutes: float) -> DataFrame:
    """Split each user agent's accounts into runs whose first lookups follow each other within `gap_minutes`.

    A run starts where the gap to the previous account's first lookup exceeds the limit, so no
    clock boundary cuts a campaign in two. The run is named by its user agent and start time.
    The ordered window buffers all of one agent's accounts (about 88,000 for a busy agent at 10x the
    bench data), so it reads only the columns it orders by, not the members' sketches and key lists,
    which Spark would otherwise sort and buffer twice per agent.
    """
    by_start = Window.partitionBy("user_agent").orderBy("first_seen", "client_id")
    gap = F.col("first_seen").cast("double") - F.lag("first_seen").over(by_start).cast("double")
    new_run = gap.isNull() | (gap > gap_minutes * 60)
    # The latest run start at or before each account: its own first lookup where it opens a run.
    running = by_start.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    start = F.max(F.when(F.col("_new"), F.col("first_seen"))).over(running)
    name = F.concat(
        F.lit("ua-start:"),
        F.date_format(start, "yyyy-MM-dd'T'HH:mm'Z'"),
        F.lit(":"),
        F.substring(F.sha2("user_agent", 256), 1, 12),
    )
    runs = members.select("user_agent", "client_id", "first_seen").withColumn("_new", new_run)
    return members.join(runs.select("user_agent", "client_id", name.alias("net")), ["user_agent", "client_id"])


def campaign_groups(days: DataFrame, rule: CampaignRule) -> DataFrame:
    """Every group the rule's link forms in `member_days` rows, with the figures its conditions read (no condition applied)."""
    if rule.link == "user_agent_start":
        members = _started_together(_members(days, ["user_agent"]), rule.start_gap_minutes)
        link = ["net", "user_agent"]
    else:
        link = _LINK_COLUMNS[rule.link]
        members = _members(days, link)
    groups = members.groupBy(*link).agg(
        F.count(F.lit(1)).alias("n_members"),
        F.slice(F.sort_array(F.collect_list("client_id")), 1, MAX_MEMBERS).alias("members"),
        F.slice(
            F.sort_array(F.collect_list(F.when(F.col("member_watchlist") > 0, F.col("client_id")))), 1, MAX_MEMBERS
        ).alias("watchlist_members"),
        F.sum("lookups").alias("lookups"),
        F.sum("hits").alias("hits"),
        F.hll_sketch_estimate(F.hll_union_agg("sketch", True)).alias("distinct_ids"),
        F.sum("member_ids").alias("sum_member_ids"),
        F.percentile_approx("member_ids", 0.5).cast("double").alias("member_median_ids"),
        union_estimate("sketch_watchlist").alias("distinct_watchlist"),
        F.sum("member_watchlist").alias("sum_member_watchlist"),
        F.avg(F.when(F.col("member_watchlist") > 0, 1.0).otherwise(0.0)).alias("watchlist_member_share"),
        union_sets("watchlist_keys").alias("watchlist_keys"),
        union_sets("watchlist_hit_keys").alias("watchlist_hit_keys"),
        F.min("first_seen").alias("first_seen"),
        F.max("first_seen").alias("last_start"),
        F.max("last_seen").alias("last_seen"),
    )
    return (
        groups.withColumn("distinct_ids", F.coalesce(F.least("distinct_ids", "lookups"), F.lit(0)))
        .withColumn(
            "disjointness",
            F.when(F.col("sum_member_ids") > 0, F.least(F.lit(1.0), F.col("distinct_ids") / F.col("sum_member_ids"))),
        )
        .withColumn(
            "watchlist_disjointness",
            F.when(
                F.col("sum_member_watchlist") > 0,
                F.least(F.lit(1.0), F.col("distinct_watchlist") / F.col("sum_member_watchlist")),
            ),
        )
        .withColumn("hit_share", F.col("hits") / F.col("lookups"))
        .withColumn(
            "start_spread_hours", (F.col("last_start").cast("double") - F.col("first_seen").cast("double")) / 3600
        )
        .withColumn("link_value", F.col(link[0]))
        .withColumn("user_agent", F.col("user_agent") if "user_agent" in link else F.lit(None).cast("string"))
    )


def _condition(rule: CampaignRule) -> Column:
    """Every condition the rule sets; a share that cannot be computed (no IDs, no watchlist) fails its minimum."""
    cond = F.lit(True)
    for metric, minimum in rule.minimums().items():
        cond = cond & F.coalesce(F.col(metric) >= minimum, F.lit(False))
    if rule.max_start_spread_hours is not None:
        cond = cond & (F.col("start_spread_hours") <= rule.max_start_spread_hours)
    return cond


def _by_link(rules: Sequence[CampaignRule]) -> list[list[CampaignRule]]:
    """The rules in sets that group accounts alike (one link; for start runs, one gap): each set is grouped once."""
    sets: dict[tuple, list[CampaignRule]] = {}
    for rule in rules:
        gap = rule.start_gap_minutes if rule.link == "user_agent_start" else None
        sets.setdefault((rule.link, gap), []).append(rule)
    return list(sets.values())


def _judged(groups: DataFrame, rules: list[CampaignRule]) -> DataFrame:
    """Campaign rows (without run columns): one per group of `campaign_groups` and rule of `rules` (one link) it meets.

    The figures describe the whole group; `members` names the accounts the rule holds as evidence
    (`evidence_members`: all, or those that looked up a watchlist person).
    """
    fired = F.filter(F.array(*[F.when(_condition(r), F.lit(r.name)) for r in rules]), lambda name: name.isNotNull())
    by_watchlist = [F.lit(r.name) for r in rules if r.evidence_members == "watchlist"]
    evidence = F.col("rule").isin(by_watchlist) if by_watchlist else F.lit(False)
    return groups.withColumn("rule", F.explode(fired)).select(
        "rule",
        F.lit(rules[0].link).alias("link"),
        "link_value",
        "user_agent",
        F.when(evidence, F.col("watchlist_members")).otherwise(F.col("members")).alias("members"),
        "lookups",
        "hits",
        *FIGURES,
        "watchlist_keys",
        "watchlist_hit_keys",
        "first_seen",
        "last_seen",
    )


def campaigns(days: DataFrame, rules: Sequence[CampaignRule]) -> DataFrame:
    """Campaign rows (without run columns) for groups of `member_days` rows that meet any of `rules` (at least one).

    Rules that link accounts alike judge one grouping: the groups are formed once per link, not per rule.
    """
    frames = [_judged(campaign_groups(days, alike[0]), alike) for alike in _by_link(rules)]
    return reduce(DataFrame.unionByName, frames)


def grouping_digest(ruleset: RuleSet) -> str:
    """What a run's campaigns depend on besides its data: the enabled campaign rules, the sketch size
    (`RuleSet.campaign_digest`) and the code that groups (`GROUPING_CODE`).

    A run carries campaigns over only from a run with the same digest (`detect_runs.campaign_rules`),
    so an edited threshold, or an upgrade that changes how groups form, regroups every group at once
    instead of leaving the groups no new data touched as older code found them.
    """
    code = hashlib.sha256(b"".join(path.read_bytes() for path in GROUPING_CODE)).hexdigest()
    return hashlib.sha256(f"{ruleset.campaign_digest}:{code}".encode()).hexdigest()[:16]


# The links whose groups a run can carry over, with the member_days column that names a group and
# the campaigns column that holds its value. Accounts that started together under one user agent
# chain through every account with that agent, so that link is always regrouped in full.
_GROUPED_BY = {"device_id": ("device_id", "link_value"), "subnet_user_agent": ("net", "link_value")}


def incremental_campaigns(
    days: DataFrame, clients: DataFrame, previous: DataFrame, rules: Sequence[CampaignRule]
) -> DataFrame:
    """`campaigns(days, rules)` for a run whose new data came from the accounts `clients` (one `client_id`
    column), given the rows the previous run found over the same days under the same rules (`previous`).

    A group can change only if one of its accounts has new data: the device or network values any
    account in `clients` has a row under mark their groups as touched (a network marks each of its
    user agents' groups, since a line without an agent counts under its account's own). The accounts
    with a row under a touched value are regrouped, all their rows so that each keeps its own agent,
    and of that only touched groups are kept; every other group stays as `previous` found it.
    """
    frames = []
    for alike in _by_link(rules):
        if alike[0].link not in _GROUPED_BY:
            frames.append(_judged(campaign_groups(days, alike[0]), alike))
            continue
        column, named = _GROUPED_BY[alike[0].link]
        # No broadcast hints: under a network value many accounts share, the accounts a file touches
        # grow with the lake (half of a 10x week's), and adaptive execution broadcasts them only when small.
        touched = (
            days.join(clients, "client_id", "left_semi").where(F.col(column).isNotNull()).select(column).distinct()
        )
        accounts = days.join(touched, column, "left_semi").select("client_id").distinct()
        regrouped = _judged(campaign_groups(days.join(accounts, "client_id", "left_semi"), alike[0]), alike)
        groups = touched.withColumnRenamed(column, named)
        kept = regrouped.join(groups, named, "left_semi").select(*regrouped.columns)
        before = previous.where(F.col("rule").isin([r.name for r in alike]))
        frames.append(kept.unionByName(before.join(groups, named, "left_anti").select(*regrouped.columns)))
    return reduce(DataFrame.unionByName, frames)
