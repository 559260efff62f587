"""The victim look-up (`enumwatch lookup-id`): was this ID number looked up, by whom, when, was data returned.

The number is hashed with the lake's key on arrival; only the hash reaches Spark, and the answer
carries the region-only mask, never the number.
"""

from __future__ import annotations

import json

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from analyst.investigate import HASH_SHOWN, newest_run, small_rows, utc
from analyst.investigate_text import fmt_time, plural
from core.errors import UserError
from core.idnumber import is_valid
from core.lake import Lake, LakeError
from core.pseudonym import fingerprint, keyed_hash, normalize_id


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
    answer["searched"] = {"lookups": span["n"], "from": utc(span["first"]), "to": utc(span["last"])}
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
    entities = small_rows(per_entity.orderBy(F.col("hits").desc(), "first_seen", "entity_type", "entity_value"))
    flags = lake.read(spark, "flagged_clients")
    latest = newest_run(flags)
    flagged = {}
    if latest and entities:
        wanted = F.lit(False)
        for e in entities:
            wanted = wanted | (
                (F.col("entity_type") == e["entity_type"]) & (F.col("entity_value") == e["entity_value"])
            )
        flagged = {
            (r["entity_type"], r["entity_value"]): r["severity"]
            for r in small_rows(flags.where((F.col("detect_run_id") == latest) & wanted))
        }
    for e in entities:
        for k in ("first_seen", "last_seen", "first_hit"):
            e[k] = utc(e[k])
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
