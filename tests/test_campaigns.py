"""lookups -> campaign_member_days -> campaigns: account farms on one device and /24 campaigns with disjoint targets, not families or offices."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from core.rules import load_rules
from jobs import campaigns as campaigns_module
from jobs.campaigns import GROUPING_CODE, campaigns, grouping_digest, incremental_campaigns, ip_64, member_days
from jobs.detect import Scope
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


def campaigns_in(lookups, rule):
    """The rule's campaigns among `lookups`, through their member days as detection runs them."""
    return campaigns(member_days(lookups, RULES.hll_lg_config_k), [rule])


def found(spark, rows, rule):
    return campaigns_in(as_lookups(spark.createDataFrame(rows, DDL)), rule)


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
        assert campaigns_in(as_lookups(variant), FARM).collect() == []


@pytest.mark.spark
def test_campaigns_merge_each_accounts_days(spark):
    rows = members("farm", FARM.min_members, lambda i: range(i * 7, i * 7 + 7), device="d-farm")
    one_day = as_lookups(spark.createDataFrame(rows, DDL))
    # about half of every account's lookups move to the next day: the same farm, from two days of member rows
    later = F.abs(F.hash("id_hash")) % 2 == 1
    moved = F.when(later, F.col("event_time") + F.expr("INTERVAL 1 DAY")).otherwise(F.col("event_time"))
    two_days = one_day.withColumn("event_time", moved).withColumns(
        {"event_hour": F.date_trunc("hour", "event_time"), "event_date": F.to_date("event_time")}
    )
    figures = ["n_members", "members", "lookups", "distinct_ids", "hits", "member_median_ids", "disjointness"]
    assert member_days(two_days, RULES.hll_lg_config_k).select("event_date").distinct().count() == 2
    assertDataFrameEqual(campaigns_in(two_days, FARM).select(figures), campaigns_in(one_day, FARM).select(figures))


@pytest.mark.spark
def test_campaigns_time_span_covers_every_member(spark):
    rows = members("farm", 8, lambda i: range(i * 7, i * 7 + 7), device="d-farm")
    lookups = as_lookups(spark.createDataFrame(rows, DDL))
    (row,) = campaigns_in(lookups, FARM).collect()
    span = lookups.agg(F.min("event_time").alias("a"), F.max("event_time").alias("b")).first()
    assert (row["first_seen"], row["last_seen"]) == (span["a"], span["b"])
    assert row["last_seen"] - row["first_seen"] > timedelta(minutes=10)


# ---- group behaviour: split lists below every per-account threshold, and their look-alikes ---------------
RULE = {r.name: r for r in RULES.campaigns}
DDL_WL = DDL + ", watchlist_key string, minute int"


def sellers(prefix, n, *, net, ua=UA, device=None, celeb=lambda i: f"wl-{i:02d}", start=0, every=3, ids=3):
    """n accounts, each looking up `ids` people of its own plus one watchlist person `celeb(i)`, all data returned.

    Account i starts at minute `start + every * i`; its own people are disjoint from every other account's.
    """
    rows = []
    for i in range(n):
        cid, ip = f"{prefix}{i:02d}", (f"{net(i)}.{10 + i}" if callable(net) else f"{net}.{10 + i}")
        dev = device or f"{prefix}-dev-{i}"
        t = start + every * i
        person = celeb(i)  # a watchlist person has one ID, whoever looks them up
        own = _id(10**6 + int.from_bytes(person.encode()) % 10**6) if person else _id(2 * 10**6 + i)
        rows.append((cid, dev, ip, ua, own, True, person, t))
        base = 3 * 10**6 + int.from_bytes(prefix.encode()) % 10**5 * 100
        rows += [(cid, dev, ip, ua, _id(base + i * 10 + k), True, None, t + 1) for k in range(ids)]
    return rows


def wl_lookups(spark, rows):
    df = spark.createDataFrame(rows, DDL_WL)
    lookups = as_lookups(df.drop("minute")).drop("event_time")
    timed = df.select("client_id", "id_hash", (F.lit(T0) + F.make_interval(mins="minute")).alias("event_time"))
    lookups = lookups.join(timed, ["client_id", "id_hash"]).withColumn("event_hour", F.date_trunc("hour", "event_time"))
    return lookups.transform(LOOKUPS.conform)


def found_wl(spark, rows, rule):
    return campaigns_in(wl_lookups(spark, rows), rule)


@pytest.mark.spark
def test_campaigns_split_list_on_one_subnet_is_found_though_each_account_looks_up_four_people(spark):
    rows = sellers("s", 8, net="185.51.43")
    (row,) = found_wl(spark, rows, RULE["split_list_subnet"]).collect()
    assert (row["link_value"], row["user_agent"], row["n_members"], row["distinct_ids"]) == (
        "185.51.43.0/24",
        UA,
        8,
        32,
    )
    assert (row["distinct_watchlist"], row["watchlist_member_share"], row["watchlist_disjointness"]) == (8, 1.0, 1.0)
    assert row["member_median_ids"] == 4.0 and row["disjointness"] == 1.0 and row["hit_share"] == 1.0
    assert row["watchlist_keys"] == [f"wl-{i:02d}" for i in range(8)]


@pytest.mark.spark
def test_campaigns_split_list_spread_over_subnets_is_found_by_user_agent_and_start(spark):
    rows = sellers("s", 9, net=lambda i: f"185.51.{40 + i // 3}")
    rows += sellers("late", 9, net=lambda i: f"45.9.{i}", start=600, every=45)  # same agent, never within 30 min
    got = found_wl(spark, rows, RULE["split_list_start"]).collect()
    assert [r["members"] for r in got] == [[f"s{i:02d}" for i in range(9)]]
    assert got[0]["link_value"].startswith("ua-start:2026-11-01T09:00Z:") and got[0]["start_spread_hours"] == 0.4
    assert found_wl(spark, rows, RULE["split_list_subnet"]).collect() == []  # 3 per /24 is no subnet group


@pytest.mark.spark
def test_campaigns_split_list_names_only_members_that_looked_up_watchlist_people(spark):
    rows = sellers("s", 9, net=lambda i: f"185.51.{40 + i // 3}")
    rows += sellers("app", 2, net="36.112.9", celeb=lambda i: None, start=5)  # same agent, started alongside
    (row,) = found_wl(spark, rows, RULE["split_list_start"]).collect()
    assert row["n_members"] == 11 and row["watchlist_member_share"] == 9 / 11
    assert row["members"] == [f"s{i:02d}" for i in range(9)]


@pytest.mark.spark
def test_campaigns_a_line_logged_without_user_agent_counts_under_the_accounts_own_agent(spark):
    rows = sellers("s", 9, net=lambda i: f"185.51.{40 + i // 3}")
    rows = [(*r[:3], None, *r[4:]) if r[0] == "s04" and r[6] else r for r in rows]  # its celebrity line lost the agent
    (row,) = found_wl(spark, rows, RULE["split_list_start"]).collect()
    assert row["members"] == [f"s{i:02d}" for i in range(9)] and row["distinct_watchlist"] == 9


LOOK_ALIKES = [
    pytest.param(
        sellers("fan", 12, net="185.51.43", celeb=lambda i: "wl-idol"),
        id="a fan club on one Wi-Fi, one app, one start, everyone checking the same idol",
    ),
    pytest.param(
        sellers("emp", 12, net="203.0.113", ua=OFFICE_UA, celeb=lambda i: None, every=600 // 12),
        id="an office: one /24 and one browser, no watchlist people",
    ),
    pytest.param(
        sellers("stu", 12, net="203.0.113", device="d-room", celeb=lambda i: "wl-idol" if i < 3 else None, ids=1),
        id="a school room: identical PCs, one class starting together, each student 1-2 people",
    ),
    pytest.param(
        sellers("fam", 3, net="36.112.5", device="d-tablet", celeb=lambda i: f"wl-{i}"),
        id="a family tablet: three accounts are not a group",
    ),
]


@pytest.mark.spark
@pytest.mark.parametrize("rows", LOOK_ALIKES)
def test_campaigns_group_rules_leave_look_alikes_alone(spark, rows):
    for rule in RULES.campaigns:
        assert found_wl(spark, rows, rule).collect() == [], rule.name


@pytest.mark.spark
def test_campaigns_split_list_on_one_device_is_found(spark):
    rows = sellers("farm", 7, net=lambda i: f"36.112.{i}", device="d-farm")
    (row,) = found_wl(spark, rows, RULE["split_list_device"]).collect()
    assert (row["link_value"], row["n_members"], row["distinct_ids"]) == ("d-farm", 7, 28)
    assert found_wl(spark, rows, RULE["device_account_farm"]).collect() == []  # under 50 IDs


@pytest.mark.spark
def test_rules_of_one_link_judge_one_grouping_each_by_its_own_conditions_and_evidence(spark):
    rows = sellers("farm", 8, net=lambda i: f"36.112.{i}", device="d-farm", ids=6)
    rows.append(("fan", "d-farm", "36.112.9.9", UA, _id(77), True, None, 5))  # on the device, no watchlist person
    days = member_days(wl_lookups(spark, rows), RULES.hll_lg_config_k)
    device_rules = [r for r in RULES.campaigns if r.link == "device_id"]
    together = campaigns(days, device_rules)
    farm = [f"farm{i:02d}" for i in range(8)]
    assert {r["rule"]: r["members"] for r in together.collect()} == {
        "device_account_farm": ["fan", *farm],
        "split_list_device": farm,  # evidence: the members that looked up a watchlist person
        "fresh_device_group": ["fan", *farm],
    }
    for rule in device_rules:
        assertDataFrameEqual(together.where(F.col("rule") == rule.name), campaigns(days, [rule]))


@pytest.mark.spark
def test_incremental_campaigns_regroup_groups_with_a_new_account_and_carry_the_others_over(spark):
    rows = members("farmA", FARM.min_members, lambda i: range(i * 7, i * 7 + 7), device="d-a")
    rows += members("farmB", FARM.min_members, lambda i: range(500 + i * 7, 500 + i * 7 + 7), device="d-b")
    days = member_days(as_lookups(spark.createDataFrame(rows, DDL)), RULES.hll_lg_config_k)
    # What the previous run found: stale figures for d-a, whose farmA00 has new data; d-b's stand.
    previous = campaigns(days, [FARM]).withColumn("lookups", F.when(F.col("link_value") == "d-b", 12345).otherwise(-1))
    clients = spark.createDataFrame([("farmA00",)], "client_id string")
    got = incremental_campaigns(days, clients, previous, [FARM])
    assert sorted((r["link_value"], r["lookups"], r["n_members"]) for r in got.collect()) == [
        ("d-a", 56, 8),  # regrouped from every member's rows
        ("d-b", 12345, 8),  # carried over as found
    ]
    assert got.columns == campaigns(days, [FARM]).columns


@pytest.mark.spark
def test_incremental_campaigns_regroup_accounts_that_started_together_in_full(spark):
    rows = sellers("s", 9, net=lambda i: f"185.51.{40 + i // 3}")
    days = member_days(wl_lookups(spark, rows), RULES.hll_lg_config_k)
    rule = RULE["split_list_start"]
    nobody = spark.createDataFrame([], "client_id string")
    # No account is new and nothing was found before, yet the group is found: a start run is never carried.
    got = incremental_campaigns(days, nobody, campaigns(days, [rule]).limit(0), [rule])
    assert [r["members"] for r in got.collect()] == [[f"s{i:02d}" for i in range(9)]]


@pytest.mark.spark
def test_incremental_campaigns_broadcast_nothing_the_size_limit_forbids(spark, capsys):
    # The accounts under a touched network value grow with the lake: only Spark's size limit may
    # send them to every task (in local mode, onto the driver's heap), never a hint.
    rows = members("farmA", FARM.min_members, lambda i: range(i * 7, i * 7 + 7), device="d-a")
    days = member_days(as_lookups(spark.createDataFrame(rows, DDL)), RULES.hll_lg_config_k)
    clients = spark.createDataFrame([("farmA00",)], "client_id string")
    rules = [FARM, RULE["split_list_subnet"]]
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        incremental_campaigns(days, clients, campaigns(days, rules), rules).explain()
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
    plan = capsys.readouterr().out
    assert "SortMergeJoin" in plan
    assert "Broadcast" not in plan


def test_a_full_run_and_the_one_file_run_after_it_group_the_same_days():
    week = [date(2026, 11, 1) + timedelta(days=i) for i in range(7)]
    full = Scope("full", week, week)
    one_file = Scope("incremental", [week[-1]], [week[-1]])
    assert full.context != one_file.context  # the full run's reaches six days before the lake's first
    assert full.grouped_days(week) == one_file.grouped_days(week) == week


def test_a_run_groups_the_days_it_writes_and_the_published_days_of_its_context_only():
    scope = Scope("incremental", [date(2026, 11, 9)], [date(2026, 11, 9)])  # reads 11-03..11-09
    published = [date(2026, 11, 2), date(2026, 11, 5), date(2026, 11, 6)]
    assert scope.grouped_days(published) == [date(2026, 11, 5), date(2026, 11, 6), date(2026, 11, 9)]
    # A day retention dropped since the last run: the runs grouped different days.
    assert scope.grouped_days(published[2:]) != scope.grouped_days(published)
    assert Scope("incremental", [], []).grouped_days(published) == []  # nothing new: nothing grouped


@pytest.mark.spark
def test_ip_64_takes_the_first_four_groups_of_any_ipv6_spelling(spark):
    cases = {
        "2001:db8:0:12:aa::1": "2001:db8:0:12::/64",
        "2001:DB8::1": "2001:db8:0:0::/64",
        "2001:0db8:0000:0001:0000:0000:0000:0001": "2001:db8:0:1::/64",
        "::1": "0:0:0:0::/64",
        "2001:db8::1:2:3:4:5": "2001:db8:0:1::/64",
        "203.0.113.7": None,
        "not-an-ip": None,
    }
    df = spark.createDataFrame([(k,) for k in cases], "ip string")
    got = {r["ip"]: r["net"] for r in df.select("ip", ip_64(F.col("ip")).alias("net")).collect()}
    assert got == cases


def test_grouping_digest_changes_with_a_campaign_threshold_or_the_grouping_code_only(tmp_path, monkeypatch):
    ruleset = load_rules(None)
    first = grouping_digest(ruleset)
    assert grouping_digest(load_rules(None)) == first
    assert grouping_digest(replace(ruleset, threshold=[])) == first  # not what campaigns depend on
    edited = replace(ruleset.campaigns[0], min_members=ruleset.campaigns[0].min_members + 1)
    assert grouping_digest(replace(ruleset, campaigns=[edited, *ruleset.campaigns[1:]])) != first
    upgraded = tmp_path / "campaigns.py"
    upgraded.write_bytes(GROUPING_CODE[0].read_bytes() + b"\n# grouping changed\n")
    monkeypatch.setattr(campaigns_module, "GROUPING_CODE", (upgraded, *GROUPING_CODE[1:]))
    assert grouping_digest(ruleset) != first
