"""lookups -> campaigns: accounts that act together, linked by a device or by a /24 and user agent.

Each member's targets are an HLL sketch; the union of the sketches against the sum of their sizes
says whether members split one target list between them (disjoint) or each look up the same few
people (as colleagues behind one office NAT do).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.rules import CampaignRule

MAX_MEMBERS = 1000
_LINKS = {"device_id": ["device_id"], "subnet_user_agent": ["ip_24", "user_agent"]}


def campaigns(lookups: DataFrame, rule: CampaignRule, lg_config_k: int) -> DataFrame:
    """Campaign rows (without run columns) for groups that meet `rule`'s conditions."""
    link = _LINKS[rule.link]
    members = (
        lookups.where(F.col("client_id").isNotNull() & F.col("id_hash").isNotNull())
        .where(F.lit(True) if rule.link == "device_id" else F.col("ip_24").isNotNull())
        .where(F.col(link[0]).isNotNull())
        .groupBy(*link, "client_id")
        .agg(
            F.hll_sketch_agg("id_hash", lg_config_k).alias("sketch"),
            F.count(F.lit(1)).alias("lookups"),
            F.count_if("hit").alias("hits"),
            F.min("event_time").alias("first_seen"),
            F.max("event_time").alias("last_seen"),
        )
        .withColumn("member_ids", F.hll_sketch_estimate("sketch"))
    )
    groups = members.groupBy(*link).agg(
        F.count(F.lit(1)).alias("n_members"),
        F.slice(F.sort_array(F.collect_list("client_id")), 1, MAX_MEMBERS).alias("members"),
        F.sum("lookups").alias("lookups"),
        F.sum("hits").alias("hits"),
        F.hll_sketch_estimate(F.hll_union_agg("sketch", True)).alias("distinct_ids"),
        F.sum("member_ids").alias("sum_member_ids"),
        F.percentile_approx("member_ids", 0.5).cast("double").alias("member_median_ids"),
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
    )
    return (
        groups.withColumn("distinct_ids", F.least("distinct_ids", "lookups"))
        .withColumn("disjointness", F.least(F.lit(1.0), F.col("distinct_ids") / F.col("sum_member_ids")))
        .where(
            (F.col("n_members") >= rule.min_members)
            & (F.col("distinct_ids") >= rule.min_distinct_ids)
            & (F.col("member_median_ids") >= rule.min_member_median_ids)
            & (F.col("disjointness") >= rule.min_disjointness)
        )
        .select(
            F.lit(rule.name).alias("rule"),
            F.lit(rule.link).alias("link"),
            F.col(link[0]).alias("link_value"),
            (F.col("user_agent") if rule.link == "subnet_user_agent" else F.lit(None).cast("string")).alias(
                "user_agent"
            ),
            "members",
            "n_members",
            "lookups",
            "distinct_ids",
            "hits",
            "member_median_ids",
            "disjointness",
            "first_seen",
            "last_seen",
        )
    )
