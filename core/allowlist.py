"""The allowlist of verification partners and internal jobs, kept out of flags and baselines.

Read on the driver (it is small and analyst-managed); expired entries are dropped here so the
detector only ever sees entries in force on the day it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.csvfile import csv_reader

ENTITY_TYPES = ("client_id", "device_id", "client_ip", "campaign")


class AllowlistError(ValueError):
    """An allowlist file that cannot be used, naming the file and line."""


@dataclass(frozen=True)
class AllowEntry:
    """One allowlisted entity and why."""

    entity_type: str
    entity_value: str
    reason: str
    expires: date | None


def load_allowlist(path: Path | None, today: date) -> list[AllowEntry]:
    """Entries of `entity_type,entity_value,reason[,expires]` still in force on `today`."""
    if path is None:
        return []
    entries = []
    with csv_reader(path, "allowlist", AllowlistError) as reader:
        missing = {"entity_type", "entity_value", "reason"} - set(reader.fieldnames or [])
        if missing:
            raise AllowlistError(f"{path}:1: allowlist lacks columns {', '.join(sorted(missing))}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            kind, value = (row.get("entity_type") or "").strip(), (row.get("entity_value") or "").strip()
            if kind not in ENTITY_TYPES:
                raise AllowlistError(f"{where}: entity_type must be one of {', '.join(ENTITY_TYPES)}, not {kind!r}")
            if not value or not (row.get("reason") or "").strip():
                raise AllowlistError(f"{where}: entity_value and reason are required")
            expires = None
            if (row.get("expires") or "").strip():
                try:
                    expires = date.fromisoformat(row["expires"].strip())
                except ValueError as exc:
                    raise AllowlistError(f"{where}: expires is not an ISO date: {row['expires']!r}") from exc
            if expires is None or expires >= today:
                entries.append(AllowEntry(kind, value, row["reason"].strip(), expires))
    return entries
