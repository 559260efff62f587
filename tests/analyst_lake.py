"""A tiny lake for the analysts' commands, written with pyarrow through the lake's own publish.

The story: `acct-bad` enumerates ID numbers from device dev-farm on 203.0.113.7 and gets a watchlist
person's data back; `acct-sib` shares its device, anonymous traffic shares its IP, `acct-nb` its /24,
`acct-far` nothing. Two detection runs: an older one, and the latest with flags of every kind
(a shadow-only flag, a campaign, an IPv6 address, a client id that is not a plain token).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import TEST_KEY
from pyspark.sql.pandas.types import to_arrow_schema

from core.idnumber import make_id
from core.lake import Lake
from core.pseudonym import fingerprint, keyed_hash, watchlist_key
from schemas import LAKE_TABLES

KEY = TEST_KEY.encode()
DAY = datetime(2026, 11, 1, tzinfo=timezone.utc)
IDS = [make_id("110105", date(1990, 1, 1), seq) for seq in range(1, 6)]
VICTIM = make_id("310104", date(1985, 6, 15), 42)
NEVER = make_id("440305", date(2001, 2, 3), 7)
WANG, LI = "王菲", "李娜"
OLD_RUN, RUN = "detect-20261101T000000Z-aaaaaa", "detect-20261102T000000Z-bbbbbb"
UNSAFE = 'evil"; } deny all; #'


def at(hour: int, minute: int = 0) -> datetime:
    """A time on the lake's day, UTC."""
    return DAY + timedelta(hours=hour, minutes=minute)


def lookup(
    entity: tuple[str, str],
    when: datetime,
    raw_id: str | None,
    status: int,
    *,
    ip: str,
    device=None,
    name=None,
    ua="enum-bot/1.0",
) -> dict:
    """One lookups row as ingest + detect would write it (hashes under the test key, region-only mask)."""
    kind, value = entity
    return {
        "event_time": when,
        "event_hour": when.replace(minute=0, second=0, microsecond=0),
        "entity_type": kind,
        "entity_value": value,
        "client_id": value if kind == "client_id" else None,
        "device_id": device,
        "client_ip": ip,
        "ip_24": ".".join(ip.split(".")[:3]) + ".0/24",
        "user_agent": ua,
        "status": status,
        "hit": status == 200,
        "miss": status == 404,
        "id_hash": keyed_hash(KEY, "id", raw_id) if raw_id else None,
        "id_prefix_hash": keyed_hash(KEY, "prefix", raw_id[:14]) if raw_id else None,
        "id_seq": int(raw_id[14:17]) if raw_id else None,
        "id_valid": True if raw_id else None,
        "id_masked": raw_id[:6] + "*" * 12 if raw_id else None,
        "name_hash": keyed_hash(KEY, "name", name) if name else None,
        "watchlist_key": watchlist_key(KEY, name) if name else None,
        "source_file": "/logs/access.jsonl",
        "line_no": 1,
        "event_date": when.date(),
    }


BAD = ("client_id", "acct-bad")
LOOKUPS = [
    lookup(BAD, at(3, 5), IDS[0], 404, ip="203.0.113.7", device="dev-farm"),
    lookup(BAD, at(3, 10), IDS[1], 404, ip="203.0.113.7", device="dev-farm"),
    lookup(BAD, at(3, 20), IDS[2], 200, ip="203.0.113.7", device="dev-farm", name=WANG),
    lookup(BAD, at(3, 40), IDS[0], 404, ip="203.0.113.7", device="dev-farm"),
    lookup(BAD, at(4, 5), VICTIM, 200, ip="203.0.113.7", device="dev-farm"),
    lookup(BAD, at(4, 30), IDS[3], 404, ip="203.0.113.7", device="dev-farm", name=LI),
    lookup(("client_id", "acct-sib"), at(5), IDS[4], 404, ip="198.51.100.9", device="dev-farm"),
    lookup(("client_id", "acct-sib"), at(5, 1), IDS[0], 404, ip="198.51.100.9", device="dev-farm"),
    lookup(("client_ip", "203.0.113.7"), at(6), VICTIM, 404, ip="203.0.113.7", ua="curl/8"),
    lookup(("client_id", "acct-nb"), at(7), IDS[1], 404, ip="203.0.113.99", device="dev-nb", ua="app/2"),
    lookup(("client_id", "acct-far"), at(8), IDS[2], 404, ip="192.0.2.1", device="dev-far", ua="app/2"),
]


def requests(n: int) -> list[dict]:
    """`n` minimal requests rows, 30 hours apart (so over several event_date partitions)."""
    return [
        {
            "event_time": at(i),
            "client_ip": "192.0.2.1",
            "path": "/api/v1/healthkit/lookup",
            "status": 404,
            "is_lookup": True,
            "source_file": "/logs/access.jsonl",
            "line_no": i + 1,
            "ingest_run_id": "ingest-test",
            "event_date": at(i).date(),
        }
        for i in range(0, 30 * n, 30)
    ]


def evidence(rule: str, window: str, start: datetime, observed: dict, threshold: dict | None, keys=None) -> dict:
    """One evidence struct of a flag."""
    span = {"hour": timedelta(hours=1), "day": timedelta(days=1), "7d": timedelta(days=7)}[window]
    return {
        "rule": rule,
        "shadow": rule == "population_outlier",
        "window": window,
        "window_start": start,
        "window_end": start + span,
        "observed": observed,
        "threshold": threshold,
        "watchlist_keys": keys,
    }


def flag(
    run: str, kind: str, value: str, severity: str, score: int, rules: list[str], *, shadow=False, members=None, ev=()
) -> dict:
    """One flagged_clients row."""
    detected = datetime.strptime(run.split("-")[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return {
        "detect_run_id": run,
        "detected_at": detected,
        "entity_type": kind,
        "entity_value": value,
        "members": members,
        "severity": severity,
        "score": score,
        "rules": rules,
        "shadow": shadow,
        "first_seen": at(3, 5),
        "last_seen": at(4, 30),
        "lookups": 6,
        "distinct_ids": 5,
        "distinct_names": 2,
        "distinct_watchlist": 2,
        "hits": 2,
        "hit_ratio": 2 / 6,
        "watchlist_keys": None,
        "watchlist_hit_keys": None,
        "masked_id_samples": ["110105************"],
        "evidence": list(ev) or [evidence(rules[0], "day", DAY, {"lookups": 6.0}, {"lookups": 5.0})],
        "detect_date": detected.date(),
    }


WL = [watchlist_key(KEY, WANG), watchlist_key(KEY, LI)]
FLAGS = [
    flag(OLD_RUN, "client_id", "acct-bad", "medium", 40, ["many_distinct_ids"]),
    flag(OLD_RUN, "client_id", "acct-old", "low", 10, ["many_distinct_ids"]),
    flag(
        RUN,
        "client_id",
        "acct-bad",
        "critical",
        90,
        ["many_distinct_ids", "watchlist_targeting"],
        ev=[
            evidence("many_distinct_ids", "hour", at(3), {"distinct_ids": 3.0}, {"distinct_ids": 3.0}),
            evidence("watchlist_targeting", "day", DAY, {"distinct_watchlist": 2.0}, {"distinct_watchlist": 2.0}, WL),
        ],
    )
    | {"watchlist_keys": WL, "watchlist_hit_keys": WL[:1]},
    flag(RUN, "client_ip", "203.0.113.7", "high", 60, ["high_miss_share"]),
    flag(RUN, "client_ip", "2001:db8::7", "high", 55, ["many_distinct_ids"]),
    flag(RUN, "device_id", "dev-x", "medium", 30, ["many_distinct_ids"]),
    flag(RUN, "client_id", "acct-shadow", "high", 50, ["population_outlier"], shadow=True),
    flag(RUN, "client_id", "acct-low", "low", 5, ["high_miss_share"]),
    flag(RUN, "client_id", UNSAFE, "high", 60, ["many_distinct_ids"]),
    flag(
        RUN,
        "campaign",
        "dev-farm",
        "critical",
        85,
        ["device_account_farm"],
        members=["acct-bad", "acct-sib", "partner-1"],
    ),
]

CAMPAIGNS = [
    {
        "detect_run_id": RUN,
        "rule": "device_account_farm",
        "link": "device_id",
        "link_value": "dev-farm",
        "user_agent": None,
        "members": ["acct-bad", "acct-sib"],
        "n_members": 2,
        "lookups": 8,
        "distinct_ids": 6,
        "hits": 2,
        "member_median_ids": 3.5,
        "disjointness": 0.9,
        "first_seen": at(3, 5),
        "last_seen": at(5, 1),
        "detect_date": date(2026, 11, 2),
    }
]


# acct-far was not flagged: its day window, for "why not flagged" (closest rule: suffix_brute_force, 1 of 10).
WINDOWS = [
    {
        "entity_type": "client_id",
        "entity_value": "acct-far",
        "window": "day",
        "window_start": DAY,
        "window_end": DAY + timedelta(days=1),
        "lookups": 1,
        "distinct_ids": 1,
        "distinct_names": 0,
        "distinct_watchlist": 0,
        "hits": 0,
        "misses": 1,
        "miss_share": 1.0,
        "invalid_id_share": 0.0,
        "max_seqs_per_prefix": 1,
        "consecutive_share": 0.0,
        "distinct_clients": 1,
        "distinct_devices": 1,
        "distinct_ips": 1,
        "active_days": 1,
        "watchlist_keys": [],
        "watchlist_hit_keys": [],
        "first_seen": at(8),
        "last_seen": at(8),
        "window_date": DAY.date(),
    }
]
# The victims' side of WANG's day: one entity looked them up and got their data; it is flagged.
TARGETS = [
    {
        "target_type": "watchlist",
        "target": watchlist_key(KEY, WANG),
        "lookups": 1,
        "hits": 1,
        "distinct_entities": 1,
        "hit_entities": 1,
        "flagged_entities": 1,
        "sketch_entities": None,
        "rules": [],
        "detect_run_id": RUN,
        "event_date": DAY.date(),
    }
]


def publish(lake: Lake, tables: dict[str, list[dict]], run_id: str = "test") -> None:
    """Write each table's rows as hive-partitioned Parquet into staging, then publish them as new versions."""
    run_id = f"{run_id}-{uuid.uuid4().hex[:6]}"
    versions = {}
    for name, rows in tables.items():
        spec = LAKE_TABLES[name]
        schema = to_arrow_schema(spec.spark_schema())
        data_schema = pa.schema([f for f in schema if f.name not in spec.partition_by])
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for row in rows:
            groups[tuple(row[c] for c in spec.partition_by)].append(row)
        staged = lake.staging(run_id) / name
        staged.mkdir(parents=True, exist_ok=True)
        for values, group in groups.items():
            folder = staged.joinpath(*[f"{c}={v}" for c, v in zip(spec.partition_by, values, strict=True)])
            folder.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pylist(
                [{k: v for k, v in r.items() if k not in spec.partition_by} for r in group], schema=data_schema
            )
            pq.write_table(table, folder / f"part-{uuid.uuid4().hex[:8]}.parquet")
        versions[name] = lake.build_version(name, run_id, add=[staged], keep_current=False)
    lake.publish(run_id, versions)


def build(root: Path) -> Lake:
    """The whole tiny lake at `root`, with the watchlist file beside it."""
    lake = Lake(root / "lake")
    lake.open(fingerprint(KEY))
    watchlist = root / "watchlist.csv"
    watchlist.write_text(f"name\n{WANG}\n{LI}\n", encoding="utf-8")
    lake.remember_watchlist(watchlist)
    publish(
        lake,
        {
            "lookups": LOOKUPS,
            "flagged_clients": FLAGS,
            "campaigns": CAMPAIGNS,
            "entity_windows": WINDOWS,
            "targets": TARGETS,
        },
    )
    return lake
