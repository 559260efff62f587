"""Flagged clients for people: the latest run's flags, with watchlist handles turned back into names.

Names exist only here, at display time, from the analysts' watchlist file; the lake holds handles.
"""

from __future__ import annotations

import json

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.rules import SEVERITIES


def latest_flags(
    flags: DataFrame, min_severity: str, include_shadow: bool = False, latest: str | None = None
) -> DataFrame:
    """The flags of run `latest` (default: the newest run with flags) at or above `min_severity`, most severe first."""
    latest = latest or flags.agg(F.max("detect_run_id")).first()[0]
    rank = F.array_position(F.array(*[F.lit(s) for s in SEVERITIES]), F.col("severity"))
    out = flags.where(F.col("detect_run_id") == F.lit(latest)).where(rank >= SEVERITIES.index(min_severity) + 1)
    if not include_shadow:
        out = out.where(~F.col("shadow"))
    return out.orderBy(rank.desc(), F.col("score").desc(), "entity_type", "entity_value")


def as_records(rows: list[dict], names: dict[str, str]) -> list[dict]:
    """Rows as JSON-ready dicts, each watchlist handle list paired with the names it stands for."""

    def named(keys):
        return [names.get(k, k) for k in keys or []]

    records = []
    for row in rows:
        row = dict(row)
        row["watchlist_names"] = named(row.get("watchlist_keys"))
        row["evidence"] = [dict(e, watchlist_names=named(e.get("watchlist_keys"))) for e in row["evidence"]]
        records.append(row)
    return records


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def describe(record: dict) -> str:
    """A few readable lines for one flag: who, how bad, which rules and why."""
    who = f"{record['entity_type']} {record['entity_value']}"
    if record.get("members"):
        who += f" ({len(record['members'])} accounts: {', '.join(record['members'][:5])}{' ...' if len(record['members']) > 5 else ''})"
    lines = [
        f"[{record['severity'].upper()} {record['score']}] {who}",
        f"    {record['lookups']} lookups, {record['distinct_ids']} distinct IDs, {record['distinct_names']} names, "
        f"{record['distinct_watchlist']} watchlist people, hit ratio {record['hit_ratio']:.0%}, "
        f"{record['first_seen']:%Y-%m-%d %H:%M} .. {record['last_seen']:%Y-%m-%d %H:%M} UTC",
    ]
    for ev in record["evidence"]:
        limits = ev["threshold"] or {}
        observed = ", ".join(
            f"{k} {_fmt(v)}" + (f" (>= {_fmt(limits[k])})" if k in limits else "")
            for k, v in sorted((ev["observed"] or {}).items())
        )
        shadow = " (shadow)" if ev["shadow"] else ""
        lines.append(
            f"    - {ev['rule']}{shadow} [{ev['window']} from {ev['window_start']:%Y-%m-%d %H:%M}]: {observed}"
        )
    if record.get("watchlist_names"):
        lines.append(f"    watchlist people targeted: {', '.join(record['watchlist_names'])}")
    return "\n".join(lines)


def to_json(records: list[dict]) -> str:
    """The records as a JSON array (timestamps in ISO 8601)."""
    return json.dumps(
        records, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v), ensure_ascii=False, indent=1
    )
