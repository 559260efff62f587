"""lookups -> campaigns: account farms on one device and /24 campaigns with disjoint targets, not families or offices."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from core.rules import load_rules
from jobs.campaigns import campaigns
from schemas import LOOKUPS
from schemas.table import spark_type

RULES = load_rules()
FARM = next(r for r in RULES.campaigns if r.link == "device_id")
SUBNET = next(r for r in RULES.campaigns if r.link == "subnet_user_agent")
T0 = datetime(2026, 11, 1, 9)
DDL = "client_id string, device_id string, client_ip string, user_agent string, id_hash string, hit boolean"
UA = "Dalvik/2.1.0 (Linux; U; Android 7.1.2) hkq/0.9.3"
OFFICE_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0"


def as_lookups(df):
    """`df` completed to `lookups` rows of the client_id entity, with /24 and time filled in."""
    defaults = {
        "entity_type": F.lit("client_id"),
        "entity_value": F.col("client_id"),
        "ip_24": F.regexp_replace("client_ip", r"\.\d+$", ".0/24"),
        "status": F.when(F.col("hit"), 200).otherwise(404),
        "miss": ~F.col("hit"),
        "id_valid": F.lit(True),
        "source_file": F.lit("/logs/a.jsonl"),
        "line_no": F.lit(1),
        "event_hour": F.date_trunc("hour", "event_time"),
        "event_date": F.to_date("event_time"),
    }
    df = df.withColumn(
        "event_time", F.lit(T0) + F.make_interval(mins=F.monotonically_increasing_id().cast("int") % 600)
    )
    fill = {
        c.name: defaults.get(c.name, F.lit(None)).cast(spark_type(c.type))
        for c in LOOKUPS.columns
        if c.name not in df.columns
    }
    return df.withColumns(fill).transform(LOOKUPS.conform)


def _id(n: int) -> str:
    return f"{n:064x}"


def members(prefix: str, n: int, ids_each, device=None, net=None, ua=UA, hit_every=10) -> list[tuple]:
    """Rows for n accounts; `ids_each(i)` gives account i's targets; device shared, or one IP each in `net`."""
    rows = []
    for i in range(n):
        for k, target in enumerate(ids_each(i)):
            ip = f"{net}.{10 + i}" if net else f"36.112.{i}.9"
            rows.append((f"{prefix}{i:02d}", device or f"{prefix}-dev-{i}", ip, ua, _id(target), k % hit_every == 0))
    return rows


def found(spark, rows, rule):
    return campaigns(as_lookups(spark.createDataFrame(rows, DDL)), rule, RULES.hll_lg_config_k)


@pytest.mark.spark
def test_campaigns_finds_an_account_farm_on_one_device(spark):
    # 8 accounts (the rule's minimum) on one device, 7 random IDs each: 56 distinct targets
    rows = members("farm", FARM.min_members, lambda i: range(i * 7, i * 7 + 7), device="d-farm")
    rows += members("solo", 1, lambda i: range(1000, 1100))  # a busy account on its own device is no farm
    got = found(spark, rows, FARM).select(
        "rule",
        "link",
        "link_value",
        "user_agent",
        "members",
        "n_members",
        "lookups",
        "distinct_ids",
        "hits",
        "member_median_ids",
        "disjointness",
    )
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [
                (
                    "device_account_farm",
                    "device_id",
                    "d-farm",
                    None,
                    [f"farm{i:02d}" for i in range(8)],
                    8,
                    56,
                    56,
                    8,
                    7.0,
                    1.0,
                )
            ],
            "rule string, link string, link_value string, user_agent string, members array<string>, n_members bigint, "
            "lookups bigint, distinct_ids bigint, hits bigint, member_median_ids double, disjointness double",
        ),
    )


@pytest.mark.spark
def test_campaigns_finds_a_subnet_campaign_with_disjoint_targets(spark):
    # 8 accounts on 8 IPs of one /24, one user agent, 13 IDs each from one list: 104 distinct targets
    rows = members("cmp", 8, lambda i: range(i * 13, i * 13 + 13), net="185.51.43")
    got = found(spark, rows, SUBNET).select(
        "rule", "link", "link_value", "user_agent", "n_members", "distinct_ids", "disjointness"
    )
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [("subnet_campaign", "subnet_user_agent", "185.51.43.0/24", UA, 8, 104, 1.0)],
            "rule string, link string, link_value string, user_agent string, n_members bigint, distinct_ids bigint, "
            "disjointness double",
        ),
    )


NOT_CAMPAIGNS = [
    pytest.param(
        FARM,
        members("fam", 3, lambda i: range(0, 6), device="d-family"),
        id="a family of 3 sharing a tablet, checking 6 relatives",
    ),
    pytest.param(
        FARM,
        members("fam", 3, lambda i: range(i * 30, i * 30 + 30), device="d-family"),
        id="3 accounts on one device are too few for a farm even with many IDs",
    ),
    pytest.param(
        SUBNET,
        members("emp", 40, lambda i: range(i * 3, i * 3 + 1 + i % 3), net="203.0.113", ua=OFFICE_UA),
        id="an office /24 with one browser build, each employee checking 1-3 of their own IDs",
    ),
    pytest.param(
        SUBNET,
        members("emp", 10, lambda i: range((i % 2) * 60, (i % 2) * 60 + 60), net="203.0.113", ua=OFFICE_UA),
        id="colleagues working through one shared list of 120 people (targets overlap, not disjoint)",
    ),
    pytest.param(
        SUBNET,
        [
            r
            for i in range(8)
            for r in members(
                f"ua{i}-", 1, lambda _, i=i: range(i * 13, i * 13 + 13), net="185.51.43", ua=f"HealthKit/5.2.{i}"
            )
        ],
        id="disjoint targets but every account has its own user agent",
    ),
]


@pytest.mark.spark
@pytest.mark.parametrize(("rule", "rows"), NOT_CAMPAIGNS)
def test_campaigns_leaves_families_and_offices_alone(spark, rule, rows):
    assert found(spark, rows, rule).collect() == []


@pytest.mark.spark
def test_campaigns_ignore_anonymous_traffic_and_name_only_lookups(spark):
    rows = members("farm", 10, lambda i: range(i * 7, i * 7 + 7), device="d-farm")
    df = spark.createDataFrame(rows, DDL)
    anonymous = df.withColumn("client_id", F.lit(None).cast("string"))
    names_only = df.withColumn("id_hash", F.lit(None).cast("string"))
    for variant in (anonymous, names_only):
        assert campaigns(as_lookups(variant), FARM, RULES.hll_lg_config_k).collect() == []


@pytest.mark.spark
def test_campaigns_time_span_covers_every_member(spark):
    rows = members("farm", 8, lambda i: range(i * 7, i * 7 + 7), device="d-farm")
    lookups = as_lookups(spark.createDataFrame(rows, DDL))
    (row,) = campaigns(lookups, FARM, RULES.hll_lg_config_k).collect()
    span = lookups.agg(F.min("event_time").alias("a"), F.max("event_time").alias("b")).first()
    assert (row["first_seen"], row["last_seen"]) == (span["a"], span["b"])
    assert row["last_seen"] - row["first_seen"] > timedelta(minutes=10)
