"""One entity in full for an analyst (`enumwatch investigate`), and the victim look-up (`enumwatch lookup-id`).

Both read the lake with Spark and bring back only aggregates. Counts here are exact (from `lookups`),
where detection's are HLL estimates, so they can differ from a flag's evidence by a percent or two.
ID numbers appear only as hash prefixes and region-only masks; watchlist people are resolved to
names from the analysts' watchlist file at display time, as `enumwatch flagged` does.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from analyst.report import as_records, describe
from core.allowlist import ENTITY_TYPES
from core.errors import UserError
from core.idnumber import is_valid
from core.lake import Lake, LakeError
from core.pseudonym import fingerprint, keyed_hash, normalize_id

MAX_LINKS = 1000  # devices / IPs / subnets of the entity searched for related entities
HASH_SHOWN = 12


def _utc(value: datetime | None) -> datetime | None:
    """PySpark hands timestamps back as naive local time: make them aware UTC."""
    return None if value is None else value.astimezone(timezone.utc)


def fmt_time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def mask_id(normalized: str) -> str:
    """The region-only mask ingest stores: 6 characters kept for an 18-character ID, none otherwise."""
    if len(normalized) == 18:
        return normalized[:6] + "*" * 12
    return "*" * min(len(normalized), 18)


def check_key(lake: Lake, key: bytes) -> None:
    """Refuse a key other than the lake's: its hashes would match nothing and 'not found' would be a lie."""
    meta = lake.root / "_lake.json"
    if not meta.exists():
        return
    recorded = json.loads(meta.read_text()).get("key_fingerprint")
    if recorded and recorded != fingerprint(key):
        raise LakeError(
            f"{lake.root}: this lake was written with another pseudonym key (fingerprint {recorded}, "
            f"now {fingerprint(key)}); set ENUMWATCH_PSEUDONYM_KEY or ENUMWATCH_KEY_FILE to the lake's key"
        )


def _latest_run(flags: DataFrame) -> str | None:
    return flags.agg(F.max("detect_run_id")).first()[0]


def _rows(df: DataFrame) -> list[dict]:
    return [r.asDict(recursive=True) for r in df.collect()]


# --- investigate -------------------------------------------------------------------------------
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
    rows = _rows(per_hour.join(new_ids, "event_hour", "left").orderBy("event_hour"))
    total = 0
    for row in rows:
        row["hour"] = _utc(row.pop("event_hour"))
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
        F.array_sort(F.collect_set(F.when(F.col("device_id").isin(devices or [""]), F.col("device_id")))).alias(
            "devices"
        ),
        F.array_sort(F.collect_set(F.when(F.col("client_ip").isin(ips or [""]), F.col("client_ip")))).alias("ips"),
        F.array_sort(F.collect_set(F.when(F.col("ip_24").isin(subnets or [""]), F.col("ip_24")))).alias("subnets"),
        F.min("event_time").alias("first_seen"),
        F.max("event_time").alias("last_seen"),
    )
    strength = F.when(F.size("devices") > 0, 0).when(F.size("ips") > 0, 1).otherwise(2)
    rows = _rows(grouped.orderBy(strength, F.col("lookups").desc(), "entity_type", "entity_value").limit(MAX_LINKS + 1))
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
                    "first_seen": _utc(row["first_seen"]),
                    "last_seen": _utc(row["last_seen"]),
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
            F.slice(F.array_sort(F.collect_set("device_id")), 1, MAX_LINKS).alias("devices"),
            F.slice(F.array_sort(F.collect_set("client_ip")), 1, MAX_LINKS).alias("ips"),
            F.slice(F.array_sort(F.collect_set("ip_24")), 1, MAX_LINKS).alias("subnets"),
            F.array_sort(F.collect_set("watchlist_key")).alias("watchlist_keys"),
            F.array_sort(F.collect_set(F.when(F.col("hit"), F.col("watchlist_key")))).alias("watchlist_hit_keys"),
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
        dict(r, id_hash=r["id_hash"][:HASH_SHOWN], first_seen=_utc(r["first_seen"]), last_seen=_utc(r["last_seen"]))
        for r in _rows(ordered)
    ]


def investigate(
    spark: SparkSession, lake: Lake, entity_type: str, value: str, names: dict[str, str], *, top: int = 20
) -> dict:
    """Everything the lake knows about one entity (or a campaign's members), as a JSON-ready dict."""
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
        latest_own = _rows(own_flags.orderBy(F.col("detect_run_id").desc()).limit(1))
        if totals["lookups"] == 0 and not latest_own:
            raise UserError(
                f"no lookups by {entity_type} {value} in {lake.root}{_not_found_hint(lookups, entity_type, value)}"
            )
        latest_run = _latest_run(flags)
        flagged = (
            {
                (r["entity_type"], r["entity_value"]): r["severity"] + (" (shadow)" if r["shadow"] else "")
                for r in _rows(
                    flags.where(F.col("detect_run_id") == F.lit(latest_run)).select(
                        "entity_type", "entity_value", "severity", "shadow"
                    )
                )
            }
            if latest_run
            else {}
        )
        top_ids = _top_ids(mine, top)
        agents = _rows(mine.groupBy("user_agent").count().orderBy(F.col("count").desc(), "user_agent").limit(5))
        hours = _hours(mine)
        related = _related(lookups, pred, totals["devices"], totals["ips"], totals["subnets"], top, flagged)
    finally:
        mine.unpersist()
    latest_campaigns = campaigns.where(F.col("detect_run_id") == F.lit(_latest_run(campaigns)))
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
        for r in _rows(latest_campaigns.where(in_campaign).orderBy("rule", "link_value"))
    ]
    campaign_flags = []
    if entity_type == "client_id" and latest_run:
        campaign_flags = _rows(
            flags.where((F.col("detect_run_id") == latest_run) & (F.col("entity_type") == "campaign")).where(
                F.array_contains("members", value)
            )
        )
    flag = as_records(latest_own, names)[0] if latest_own else None
    return {
        "entity_type": entity_type,
        "entity_value": value,
        "members": members,
        "latest_detect_run_id": latest_run,
        "first_seen": _utc(totals["first_seen"]),
        "last_seen": _utc(totals["last_seen"]),
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
        "watchlist": [
            {"key": k, "name": names.get(k), "returned": k in set(totals["watchlist_hit_keys"])}
            for k in totals["watchlist_keys"]
        ],
        "top_ids": top_ids,
        "hours": hours,
        "related": related,
    }


# --- the terminal summary ------------------------------------------------------------------------
def plural(value: int, word: str) -> str:
    """'1 lookup', '2 lookups', '2 misses', '2 entities'."""
    if value == 1 or not word[-1].isalpha():
        return f"{value:,} {word}"
    if word.endswith("y"):
        return f"{value:,} {word[:-1]}ies"
    return f"{value:,} {word}{'es' if word.endswith('s') else 's'}"


def _bar(value: int, peak: int, width: int = 30) -> str:
    return "#" * max(1, round(width * value / peak)) if value and peak else ""


def who(found: dict) -> str:
    """The entity in a few words: type, value, and how many accounts a campaign has."""
    who = f"{found['entity_type']} {found['entity_value']}"
    if found["members"]:
        who += f" ({plural(len(found['members']), 'member account')})"
    return who


def _activity_lines(hours: list[dict]) -> list[str]:
    if not hours:
        return ["  no lookups"]
    if len(hours) > 72:  # a long-running entity: one line per day reads better
        days: dict = {}
        for h in hours:
            d = days.setdefault(h["hour"].date(), {"lookups": 0, "hits": 0, "new_ids": 0, "hours": 0})
            d["lookups"] += h["lookups"]
            d["hits"] += h["hits"]
            d["new_ids"] += h["new_ids"]
            d["hours"] += 1
        peak = max(d["lookups"] for d in days.values())
        lines = ["  per day (UTC; the hourly timeline is in --html):"]
        for day, d in sorted(days.items()):
            lines.append(
                f"  {day}  {d['lookups']:>7,} lookups  {d['new_ids']:>6,} new IDs  {d['hits']:>6,} hits  "
                f"{d['hours']:>2} active hours  {_bar(d['lookups'], peak)}"
            )
        return lines
    peak = max(h["lookups"] for h in hours)
    lines = ["  hour (UTC)         lookups  distinct IDs  names   hits  misses"]
    for h in hours:
        lines.append(
            f"  {h['hour']:%Y-%m-%d %H:00}  {h['lookups']:>8,}  {h['distinct_ids']:>12,}  {h['distinct_names']:>5,}  "
            f"{h['hits']:>5,}  {h['misses']:>6,}  {_bar(h['lookups'], peak)}"
        )
    return lines


def _related_lines(found: dict) -> list[str]:
    related = found["related"]
    lines = []
    labels = {"device": "same device", "ip": "same IP", "subnet": "same /24 (other IPs)"}
    for kind, label in labels.items():
        group = related[kind]
        if not group["total"]:
            lines.append(f"  {label}: none")
            continue
        more = f" (showing {len(group['entities'])})" if group["total"] > len(group["entities"]) else ""
        lines.append(f"  {label}: {plural(group['total'], 'entity')}{more}")
        for e in group["entities"]:
            flag = f"  [flagged {e['flagged']}]" if e["flagged"] else ""
            lines.append(
                f"    {e['entity_type']} {e['entity_value']}  via {', '.join(e['via'][:3])}  {plural(e['lookups'], 'lookup')}{flag}"
            )
    if related["truncated"]:
        lines.append(f"  (more than {MAX_LINKS} related entities: narrow down with enumwatch sql)")
    if not related["campaigns"]:
        lines.append("  same campaign: none in the latest detection run")
    for c in related["campaigns"]:
        flag = f"  [flagged {c['flagged']}]" if c["flagged"] else ""
        others = ", ".join(c["members"][:10]) + (" ..." if len(c["members"]) > 10 else "")
        lines.append(
            f"  same campaign: {c['rule']} via {c['link']} {c['link_value']}, {plural(c['n_members'], 'account')}{flag}: {others}"
        )
    return lines


def render_text(found: dict) -> str:
    """A readable summary: who, when, why flagged, what was targeted, who else is involved."""
    t = found["totals"]
    share = f"{t['hits'] / t['lookups']:.0%}" if t["lookups"] else "-"
    lines = [
        f"{who(found)}",
        f"  first seen {fmt_time(found['first_seen'])}, last seen {fmt_time(found['last_seen'])}",
        f"  {plural(t['lookups'], 'lookup')}, {plural(t['distinct_ids'], 'distinct ID')}, {plural(t['distinct_names'], 'distinct name')}, "
        f"{plural(t['hits'], 'hit')} (data returned, {share}), {plural(t['misses'], 'miss')}, {plural(t['invalid_ids'], 'invalid ID')}",
        f"  from {plural(t['n_devices'], 'device')}, {plural(t['n_ips'], 'IP')} in {plural(t['n_subnets'], '/24')}",
    ]
    if found["members"]:
        lines.append(f"  members: {', '.join(found['members'][:20])}{' ...' if len(found['members']) > 20 else ''}")
    for agent in found["user_agents"][:3]:
        lines.append(f"  user agent ({plural(agent['lookups'], 'lookup')}): {agent['user_agent'] or '(none)'}")
    lines += ["", "Rules that fired"]
    if found["flag"]:
        run = found["flag"]["detect_run_id"]
        note = (
            "the latest detection run"
            if found["flag_is_latest"]
            else f"an earlier run (latest is {found['latest_detect_run_id']})"
        )
        lines.append(f"  in {run}, {note}:")
        lines += ["  " + line for line in describe(found["flag"]).splitlines()]
    else:
        lines.append("  not flagged itself in any detection run")
    for record in found["campaign_flags"]:
        lines.append("  as a member of a flagged campaign:")
        lines += ["  " + line for line in describe(record).splitlines()]
    lines += ["", "Activity per hour"] + _activity_lines(found["hours"])
    lines += ["", "Targets"]
    if found["watchlist"]:
        people = [f"{w['name'] or w['key']}{' (data returned)' if w['returned'] else ''}" for w in found["watchlist"]]
        lines.append(f"  watchlist people: {', '.join(people)}")
    else:
        lines.append("  watchlist people: none")
    lines.append(
        f"  {plural(t['distinct_ids'], 'distinct ID number')}, most returned first (hash prefix, region-only mask):"
    )
    for i in found["top_ids"]:
        lines.append(
            f"    {i['id_hash']}  {i['masked'] or '-':<18}  {'valid  ' if i['valid'] else 'invalid'}  "
            f"{plural(i['lookups'], 'lookup')}, {plural(i['hits'], 'hit')}  {fmt_time(i['first_seen'])}"
        )
    if t["distinct_ids"] > len(found["top_ids"]):
        lines.append(f"    ... {t['distinct_ids'] - len(found['top_ids']):,} more (enumwatch sql over lookups)")
    lines += ["", "Related entities (from lookups)"] + _related_lines(found)
    return "\n".join(lines)


# --- lookup-id ---------------------------------------------------------------------------------
def lookup_id(spark: SparkSession, lake: Lake, key: bytes, raw: str) -> dict:
    """Who looked this ID number up, when, and whether data came back; the number itself is not kept."""
    normalized = normalize_id(raw)
    if not normalized:
        raise UserError("empty ID number")
    id_hash = keyed_hash(key, "id", normalized)
    # Only the hash goes to Spark (and so into plans and logs); the answer carries the mask, not the number.
    answer = {"id_masked": mask_id(normalized), "id_valid": is_valid(normalized), "id_hash": id_hash}
    lookups = lake.read(spark, "lookups")
    span = lookups.agg(
        F.count(F.lit(1)).alias("n"), F.min("event_time").alias("first"), F.max("event_time").alias("last")
    ).first()
    answer["searched"] = {"lookups": span["n"], "from": _utc(span["first"]), "to": _utc(span["last"])}
    per_entity = (
        lookups.where(F.col("id_hash") == F.lit(id_hash))
        .groupBy("entity_type", "entity_value")
        .agg(
            F.count(F.lit(1)).alias("lookups"),
            F.count_if("hit").alias("hits"),
            F.min("event_time").alias("first_seen"),
            F.max("event_time").alias("last_seen"),
            F.min(F.when(F.col("hit"), F.col("event_time"))).alias("first_hit"),
        )
    )
    entities = _rows(per_entity.orderBy(F.col("hits").desc(), "first_seen", "entity_type", "entity_value"))
    flags = lake.read(spark, "flagged_clients")
    latest = _latest_run(flags)
    flagged = {}
    if latest and entities:
        wanted = F.lit(False)
        for e in entities:
            wanted = wanted | (
                (F.col("entity_type") == e["entity_type"]) & (F.col("entity_value") == e["entity_value"])
            )
        flagged = {
            (r["entity_type"], r["entity_value"]): r["severity"]
            for r in _rows(flags.where((F.col("detect_run_id") == latest) & wanted))
        }
    for e in entities:
        for k in ("first_seen", "last_seen", "first_hit"):
            e[k] = _utc(e[k])
        e["flagged"] = flagged.get((e["entity_type"], e["entity_value"]))
    answer.update(
        looked_up=bool(entities),
        lookups=sum(e["lookups"] for e in entities),
        hits=sum(e["hits"] for e in entities),
        first_seen=min((e["first_seen"] for e in entities), default=None),
        last_seen=max((e["last_seen"] for e in entities), default=None),
        entities=entities,
    )
    return answer


def render_lookup(answer: dict) -> str:
    """The victim look-up as a few lines: yes or no, by whom, when, whether data was returned."""
    checked = "check digit valid" if answer["id_valid"] else "not a valid ID number (check digit, date or length)"
    head = f"ID {answer['id_masked']} ({checked}; hash {answer['id_hash'][:HASH_SHOWN]})"
    searched = answer["searched"]
    scope = f"{searched['lookups']:,} lookups from {fmt_time(searched['from'])} to {fmt_time(searched['to'])} searched"
    if not answer["looked_up"]:
        return f"{head}\n  not looked up ({scope})"
    returned = f"data returned {plural(answer['hits'], 'time')}" if answer["hits"] else "no data returned"
    lines = [
        head,
        f"  looked up {plural(answer['lookups'], 'time')} by {plural(len(answer['entities']), 'entity')}, {returned}; "
        f"first {fmt_time(answer['first_seen'])}, last {fmt_time(answer['last_seen'])} ({scope})",
    ]
    for e in answer["entities"]:
        got = (
            f"data returned {plural(e['hits'], 'time')} (first {fmt_time(e['first_hit'])})"
            if e["hits"]
            else "no data returned"
        )
        flag = f"  [flagged {e['flagged']}]" if e["flagged"] else ""
        lines.append(
            f"  {e['entity_type']} {e['entity_value']}: {plural(e['lookups'], 'lookup')}, {got}, "
            f"{fmt_time(e['first_seen'])} .. {fmt_time(e['last_seen'])}{flag}"
        )
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` (UTF-8), creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
