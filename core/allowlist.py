"""The allowlist of verification partners and internal jobs, kept out of flags and baselines.

Read on the driver (it is small and analyst-managed); expired entries are dropped here, with a
warning naming their lines, so the detector only ever sees entries in force on the day it runs. An
entry whose meaning is unclear (unknown entity type, no value or reason, an expiry that is not an
ISO date) stops the run with one line naming it: allowlisting hides an entity from detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.csvfile import Notes, read_rows
from core.errors import UserError

ENTITY_TYPES = ("client_id", "device_id", "client_ip", "campaign")


class AllowlistError(UserError, ValueError):
    """An allowlist file that cannot be used, naming the file and line."""


@dataclass(frozen=True)
class AllowEntry:
    """One allowlisted entity and why."""

    entity_type: str
    entity_value: str
    reason: str
    expires: date | None


def load_allowlist(path: Path | None, today: date, warnings: list[str] | None = None) -> list[AllowEntry]:
    """Entries of `entity_type,entity_value,reason[,expires]` still in force on `today`, one per entity.

    Expired entries and repeats are skipped, and what was skipped or read leniently is appended to
    `warnings`, naming the file and lines; an entity listed twice keeps its latest expiry.
    """
    if path is None:
        return []
    entries: dict[tuple[str, str], AllowEntry] = {}
    notes = Notes(path)
    columns = ("entity_type", "entity_value", "reason")
    for line, row in read_rows(path, "allowlist", AllowlistError, columns, ("expires",), warnings, ("reason",)):
        where = f"{path}:{line}"
        kind, value, reason = row["entity_type"].lower(), row["entity_value"], row["reason"]
        if kind not in ENTITY_TYPES:
            raise AllowlistError(f"{where}: entity_type must be one of {', '.join(ENTITY_TYPES)}, not {kind!r}")
        if kind != row["entity_type"]:
            notes.add("entity_type in capitals read in lower case", line)
        if not value or not reason:
            raise AllowlistError(f"{where}: entity_value and reason are required")
        expires = None
        if row["expires"]:
            try:
                expires = date.fromisoformat(row["expires"])
            except ValueError as exc:
                raise AllowlistError(f"{where}: expires is not an ISO date (YYYY-MM-DD): {row['expires']!r}") from exc
        if expires is not None and expires < today:
            notes.add(f"expired before {today.isoformat()}, ignored", line)
            continue
        entry = AllowEntry(kind, value, reason, expires)
        earlier = entries.get((kind, value))
        if earlier is not None:
            notes.add("lists an entity already listed above; the latest expiry holds", line)
            if earlier.expires is None or (expires is not None and expires <= earlier.expires):
                continue
        entries[(kind, value)] = entry
    if warnings is not None:
        warnings.extend(notes.render())
    return list(entries.values())
