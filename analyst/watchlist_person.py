"""The victims' side for one person (`enumwatch investigate watchlist NAME`): who looked them up, and who got their data.

The name is normalized and hashed with the lake's key on arrival, as ingest does; only the hashes
reach Spark (and so its plans and logs). The answer carries the name the analyst typed, never
anything read back from the lake.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from analyst.investigate import newest_run, small_rows, utc
from analyst.investigate_text import fmt_time, plural
from core.errors import UserError
from core.lake import Lake
from core.pseudonym import keyed_hash, normalize_name, watchlist_key


def _flagged(spark: SparkSession, lake: Lake, entities: list[dict]) -> dict[tuple[str, str], str]:
    """The latest run's verdict on each entity: its own flag, else the flagged campaign it belongs to."""
    flags = lake.read(spark, "flagged_clients")
    latest = newest_run(flags)
    if not latest or not entities:
        return {}
    run = flags.where((F.col("detect_run_id") == latest) & ~F.col("shadow"))
    keys = [(e["entity_type"], e["entity_value"]) for e in entities]
    own = F.lit(False)
    for t, v in keys:
        own = own | ((F.col("entity_type") == t) & (F.col("entity_value") == v))
    verdict = {(r["entity_type"], r["entity_value"]): r["severity"] for r in small_rows(run.where(own))}
    clients = [v for t, v in keys if t == "client_id"]
    if clients:
        member = F.arrays_overlap("members", F.array(*[F.lit(c) for c in clients]))
        campaigns = run.where((F.col("entity_type") == "campaign") & member).select(
            "entity_value", "severity", "members"
        )
        for r in small_rows(campaigns):
            for m in set(r["members"]) & set(clients):
                verdict.setdefault(("client_id", m), f"{r['severity']} via campaign {r['entity_value']}")
    return verdict


def investigate_person(spark: SparkSession, lake: Lake, key: bytes, raw_name: str, *, top: int = 50) -> dict:
    """Who looked this name up (by name hash), per entity and per day, and whether data came back."""
    name = normalize_name(raw_name)
    if not name:
        raise UserError("empty name")
    name_hash, handle = keyed_hash(key, "name", name), watchlist_key(key, name)
    lookups = lake.read(spark, "lookups").where(F.col("name_hash") == F.lit(name_hash))
    per_entity = lookups.groupBy("entity_type", "entity_value").agg(
        F.count(F.lit(1)).alias("lookups"),
        F.count_if("hit").alias("hits"),
        F.min("event_time").alias("first_seen"),
        F.max("event_time").alias("last_seen"),
    )
    totals = per_entity.agg(
        F.count(F.lit(1)).alias("entities"),
        F.coalesce(F.sum("lookups"), F.lit(0)).alias("lookups"),
        F.coalesce(F.sum("hits"), F.lit(0)).alias("hits"),
        F.count_if(F.col("hits") > 0).alias("hit_entities"),
    ).first()
    entities = small_rows(
        per_entity.orderBy(F.col("hits").desc(), F.col("lookups").desc(), "entity_type", "entity_value").limit(top)
    )
    verdicts = _flagged(spark, lake, entities)
    for e in entities:
        e["first_seen"], e["last_seen"] = utc(e["first_seen"]), utc(e["last_seen"])
        e["flagged"] = verdicts.get((e["entity_type"], e["entity_value"]))
    days = []
    if lake.path("targets").exists():
        per_day = lake.read(spark, "targets").where(
            (F.col("target_type") == "watchlist") & (F.col("target") == F.lit(handle))
        )
        days = small_rows(
            per_day.select(
                "event_date", "lookups", "hits", "distinct_entities", "hit_entities", "flagged_entities", "rules"
            )
            .orderBy("event_date")
            .limit(366)
        )
    return {
        "name": name,
        "watchlist_key": handle,
        "lookups": totals["lookups"],
        "hits": totals["hits"],
        "entities": totals["entities"],
        "hit_entities": totals["hit_entities"],
        "shown": entities,
        "days": days,
    }


def render_person(found: dict, on_watchlist: bool) -> str:
    """Who looked the person up, most data returned first, and the per-day view from `targets`."""
    note = "" if on_watchlist else " (not on the watchlist file: searched by name)"
    head = f"{found['name']} ({found['watchlist_key']}){note}"
    if not found["lookups"]:
        return f"{head}\n  never looked up"
    lines = [
        head,
        f"  looked up {plural(found['lookups'], 'time')} by {plural(found['entities'], 'entity')}; "
        f"data returned {plural(found['hits'], 'time')} to {plural(found['hit_entities'], 'entity')}",
    ]
    for e in found["shown"]:
        flag = f"  [flagged {e['flagged']}]" if e["flagged"] else ""
        lines.append(
            f"  {e['entity_type']} {e['entity_value']}: {plural(e['lookups'], 'lookup')}, {plural(e['hits'], 'hit')}, "
            f"{fmt_time(e['first_seen'])} .. {fmt_time(e['last_seen'])}{flag}"
        )
    if found["entities"] > len(found["shown"]):
        lines.append(f"  ... {found['entities'] - len(found['shown']):,} more entities (enumwatch sql over lookups)")
    if found["days"]:
        lines += ["", "Per day (targets table; entity counts are HLL estimates)"]
        for d in found["days"]:
            fired = f"  rules: {', '.join(d['rules'])}" if d["rules"] else ""
            lines.append(
                f"  {d['event_date']}  {plural(d['lookups'], 'lookup')}, {plural(d['distinct_entities'], 'entity')}, "
                f"data returned to {d['hit_entities']}, flagged {d['flagged_entities']}{fired}"
            )
    return "\n".join(lines)
