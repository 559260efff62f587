"""One entity in full for an analyst (`enumwatch investigate`): what it did, what fired, whom it targeted.

It reads the lake with Spark and brings back only aggregates, as a dict that `investigate_text` and
`investigate_html` render. Counts here are exact (from `lookups`), where detection's are HLL
estimates, so they can differ from a flag's evidence by a percent or two. ID numbers appear only as hash prefixes and region-only masks; watchlist people are resolved to
names from the analysts' watchlist file at display time, as `enumwatch flagged` does.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from analyst.near_misses import closest_rules
from analyst.report import as_records
from core.allowlist import ENTITY_TYPES
from core.errors import UserError
from core.lake import Lake
from core.rules import RuleSet, load_rules
from jobs.sketches import value_set

MAX_LINKS = 1000  # devices / IPs / subnets of the entity searched for related entities
HASH_SHOWN = 12


def utc(value: datetime | None) -> datetime | None:
    """PySpark hands timestamps back as naive local time: make them aware UTC."""
    return None if value is None else value.astimezone(timezone.utc)


def newest_run(flags: DataFrame) -> str | None:
    """The newest detection run in `flags`, or None before the first."""
    return flags.agg(F.max("detect_run_id")).first()[0]


def small_rows(df: DataFrame) -> list[dict]:
    """A small aggregate's rows as plain dicts (never a table that grows with the input)."""
    return [r.asDict(recursive=True) for r in df.collect()]


def _campaign_members(flags: DataFrame, campaigns: DataFrame, value: str) -> list[str]:
    """The member accounts of the campaign's latest flag, else of its latest campaigns row."""
    for table, column in ((flags.where(F.col("entity_type") == "campaign"), "entity_value"), (campaigns, "link_value")):
        found = table.where(F.col(column) == value).orderBy(F.col("detect_run_id").desc()).limit(1).collect()
        if found:
            return list(found[0]["members"] or [])
    raise UserError(f"no campaign {value!r} in the lake (a campaign is named by its shared device id or /24)")


def _entity_filter(entity_type: str, value: str, members: list[str]):
    if entity_type == "campaign":
        return (F.col("entity_type") == "client_id") & F.col("entity_value").isin(members)
    return (F.col("entity_type") == entity_type) & (F.col("entity_value") == value)


def _not_found_hint(lookups: DataFrame, entity_type: str, value: str) -> str:
    if entity_type not in ("client_ip", "device_id"):
        return ""
    keyed = lookups.where(F.col(entity_type) == value).groupBy("entity_type", "entity_value").count()
    keyed = keyed.orderBy(F.col("count").desc()).limit(5).collect()
    if not keyed:
        return ""
    who = ", ".join(f"{r['entity_type']} {r['entity_value']} ({r['count']})" for r in keyed)
    return f"; its lookups are keyed to other entities: {who}"


def _hours(mine: DataFrame) -> list[dict]:
    per_hour = mine.groupBy("event_hour").agg(
        F.count(F.lit(1)).alias("lookups"),
        F.countDistinct("id_hash").alias("distinct_ids"),
        F.countDistinct("name_hash").alias("distinct_names"),
        F.count_if("hit").alias("hits"),
        F.count_if("miss").alias("misses"),
    )
    first_hours = (
        mine.where(F.col("id_hash").isNotNull()).groupBy("id_hash").agg(F.min("event_hour").alias("event_hour"))
    )
    new_ids = first_hours.groupBy("event_hour").agg(F.count(F.lit(1)).alias("new_ids"))
    rows = small_rows(per_hour.join(new_ids, "event_hour", "left").orderBy("event_hour"))
    total = 0
    for row in rows:
        row["hour"] = utc(row.pop("event_hour"))
        row["new_ids"] = row["new_ids"] or 0
        total += row["new_ids"]
        row["cumulative_ids"] = total
    return rows


def _related(lookups: DataFrame, pred, devices: list, ips: list, subnets: list, top: int, flagged: dict) -> dict:
    link = F.lit(False)
    for column, values in (("device_id", devices), ("client_ip", ips), ("ip_24", subnets)):
        if values:
            link = link | F.col(column).isin(values)
    others = lookups.where(~pred & link)
    grouped = others.groupBy("entity_type", "entity_value").agg(
        F.count(F.lit(1)).alias("lookups"),
        value_set(F.when(F.col("device_id").isin(devices or [""]), F.col("device_id"))).alias("devices"),
        value_set(F.when(F.col("client_ip").isin(ips or [""]), F.col("client_ip"))).alias("ips"),
        value_set(F.when(F.col("ip_24").isin(subnets or [""]), F.col("ip_24"))).alias("subnets"),
        F.min("event_time").alias("first_seen"),
        F.max("event_time").alias("last_seen"),
    )
    strength = F.when(F.size("devices") > 0, 0).when(F.size("ips") > 0, 1).otherwise(2)
    rows = small_rows(
        grouped.orderBy(strength, F.col("lookups").desc(), "entity_type", "entity_value").limit(MAX_LINKS + 1)
    )
    out: dict[str, dict] = {kind: {"total": 0, "entities": []} for kind in ("device", "ip", "subnet")}
    for row in rows[:MAX_LINKS]:
        kind = "device" if row["devices"] else "ip" if row["ips"] else "subnet"
        via = row["devices"] or row["ips"] or row["subnets"]
        out[kind]["total"] += 1
        if len(out[kind]["entities"]) < top:
            out[kind]["entities"].append(
                {
                    "entity_type": row["entity_type"],
                    "entity_value": row["entity_value"],
                    "via": via,
                    "lookups": row["lookups"],
                    "first_seen": utc(row["first_seen"]),
                    "last_seen": utc(row["last_seen"]),
                    "flagged": flagged.get((row["entity_type"], row["entity_value"])),
                }
            )
    out["truncated"] = len(rows) > MAX_LINKS
    return out


def _totals(mine: DataFrame) -> dict:
    """Counts, first/last seen, and the devices, IPs and /24s the entity used (capped at MAX_LINKS)."""
    return (
        mine.agg(
            F.count(F.lit(1)).alias("lookups"),
            F.count_if("hit").alias("hits"),
            F.count_if("miss").alias("misses"),
            F.countDistinct("id_hash").alias("distinct_ids"),
            F.countDistinct("name_hash").alias("distinct_names"),
            F.count_if(F.col("id_hash").isNotNull() & ~F.col("id_valid")).alias("invalid_ids"),
            F.min("event_time").alias("first_seen"),
            F.max("event_time").alias("last_seen"),
            F.countDistinct("device_id").alias("n_devices"),
            F.countDistinct("client_ip").alias("n_ips"),
            F.countDistinct("ip_24").alias("n_subnets"),
            F.slice(value_set("device_id"), 1, MAX_LINKS).alias("devices"),
            F.slice(value_set("client_ip"), 1, MAX_LINKS).alias("ips"),
            F.slice(value_set("ip_24"), 1, MAX_LINKS).alias("subnets"),
            value_set("watchlist_key").alias("watchlist_keys"),
            value_set(F.when(F.col("hit"), F.col("watchlist_key"))).alias("watchlist_hit_keys"),
        )
        .first()
        .asDict(recursive=True)
    )


def _top_ids(mine: DataFrame, top: int) -> list[dict]:
    """The `top` ID numbers, most returned first, as hash prefixes with their region-only mask."""
    ids = (
        mine.where(F.col("id_hash").isNotNull())
        .groupBy("id_hash")
        .agg(
            F.count(F.lit(1)).alias("lookups"),
            F.count_if("hit").alias("hits"),
            F.first("id_masked", ignorenulls=True).alias("masked"),
            F.bool_or("id_valid").alias("valid"),
            F.min("event_time").alias("first_seen"),
            F.max("event_time").alias("last_seen"),
        )
    )
    ordered = ids.orderBy(F.col("hits").desc(), F.col("lookups").desc(), "first_seen", "id_hash").limit(top)
    return [
        dict(r, id_hash=r["id_hash"][:HASH_SHOWN], first_seen=utc(r["first_seen"]), last_seen=utc(r["last_seen"]))
        for r in small_rows(ordered)
    ]


def investigate(
    spark: SparkSession,
    lake: Lake,
    entity_type: str,
    value: str,
    names: dict[str, str],
    *,
    top: int = 20,
    rules: RuleSet | None = None,
) -> dict:
    """Everything the lake knows about one entity (or a campaign's members), as a JSON-ready dict.

    An entity without a live flag in the latest run also gets `near_misses`: the threshold rules
    (from `rules`, default config/rules.yaml) that came closest, and how far below each stayed.
    """
    if entity_type not in ENTITY_TYPES:
        raise UserError(f"entity type must be one of {', '.join(ENTITY_TYPES)}, not {entity_type!r}")
    lookups = lake.read(spark, "lookups")
    flags = lake.read(spark, "flagged_clients")
    campaigns = lake.read(spark, "campaigns")
    members: list[str] = []
    if entity_type == "campaign":
        members = _campaign_members(flags, campaigns, value)
    pred = _entity_filter(entity_type, value, members)
    mine = lookups.where(pred).cache()
    try:
        totals = _totals(mine)
        own_flags = flags.where((F.col("entity_type") == entity_type) & (F.col("entity_value") == value))
        latest_own = small_rows(own_flags.orderBy(F.col("detect_run_id").desc()).limit(1))
        if totals["lookups"] == 0 and not latest_own:
            raise UserError(
                f"no lookups by {entity_type} {value} in {lake.root}{_not_found_hint(lookups, entity_type, value)}"
            )
        latest_run = newest_run(flags)
        flagged = (
            {
                (r["entity_type"], r["entity_value"]): r["severity"] + (" (shadow)" if r["shadow"] else "")
                for r in small_rows(
                    flags.where(F.col("detect_run_id") == F.lit(latest_run)).select(
                        "entity_type", "entity_value", "severity", "shadow"
                    )
                )
            }
            if latest_run
            else {}
        )
        top_ids = _top_ids(mine, top)
        agents = small_rows(mine.groupBy("user_agent").count().orderBy(F.col("count").desc(), "user_agent").limit(5))
        hours = _hours(mine)
        related = _related(lookups, pred, totals["devices"], totals["ips"], totals["subnets"], top, flagged)
    finally:
        mine.unpersist()
    latest_campaigns = campaigns.where(F.col("detect_run_id") == F.lit(newest_run(campaigns)))
    link_values = totals["devices"] + totals["subnets"] + ([value] if entity_type == "campaign" else [])
    in_campaign = F.col("link_value").isin(link_values or [""])
    if entity_type == "client_id":
        in_campaign = in_campaign | F.array_contains("members", value)
    related["campaigns"] = [
        {k: r[k] for k in ("rule", "link", "link_value", "user_agent", "n_members", "lookups", "detect_run_id")}
        | {
            "members": [m for m in r["members"] if m != value][:top],
            "flagged": flagged.get(("campaign", r["link_value"])),
        }
        for r in small_rows(latest_campaigns.where(in_campaign).orderBy("rule", "link_value"))
    ]
    campaign_flags = []
    if entity_type == "client_id" and latest_run:
        campaign_flags = small_rows(
            flags.where((F.col("detect_run_id") == latest_run) & (F.col("entity_type") == "campaign")).where(
                F.array_contains("members", value)
            )
        )
    flag = as_records(latest_own, names)[0] if latest_own else None
    live = bool(flag and flag["detect_run_id"] == latest_run and not flag["shadow"])
    near_misses = []
    if entity_type != "campaign" and not live and not campaign_flags and lake.path("entity_windows").exists():
        windows = lake.read(spark, "entity_windows")
        mine_windows = windows.where((F.col("entity_type") == entity_type) & (F.col("entity_value") == value))
        near_misses = closest_rules(mine_windows, rules or load_rules())
    return {
        "entity_type": entity_type,
        "entity_value": value,
        "members": members,
        "latest_detect_run_id": latest_run,
        "first_seen": utc(totals["first_seen"]),
        "last_seen": utc(totals["last_seen"]),
        "totals": {
            k: totals[k]
            for k in (
                "lookups",
                "hits",
                "misses",
                "distinct_ids",
                "distinct_names",
                "invalid_ids",
                "n_devices",
                "n_ips",
                "n_subnets",
            )
        },
        "devices": totals["devices"][:top],
        "ips": totals["ips"][:top],
        "subnets": totals["subnets"][:top],
        "user_agents": [{"user_agent": a["user_agent"], "lookups": a["count"]} for a in agents],
        "flag": flag,
        "flag_is_latest": bool(flag and flag["detect_run_id"] == latest_run),
        "campaign_flags": as_records(campaign_flags, names),
        "near_misses": near_misses,
        "watchlist": [
            {"key": k, "name": names.get(k), "returned": k in set(totals["watchlist_hit_keys"])}
            for k in totals["watchlist_keys"]
        ],
        "top_ids": top_ids,
        "hours": hours,
        "related": related,
    }
