"""The analysts' watchlist of celebrity names, turned into hashes before anything reaches Spark.

Names stay in this process's memory (for human-facing output) and never enter a table: the lake
only sees each entry's name hash and its `watchlist_key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.csvfile import csv_reader
from core.pseudonym import keyed_hash, normalize_name, watchlist_key


class WatchlistError(ValueError):
    """A watchlist file that cannot be used, naming the file and line."""


@dataclass(frozen=True)
class WatchlistEntry:
    """One watched person: the hash lookups are matched on, and the handle stored in the lake."""

    name_hash: str
    key: str
    name: str


def load_watchlist(path: Path | None, key: bytes) -> list[WatchlistEntry]:
    """Read a CSV with a `name` column; blank names and duplicates after NFKC are rejected by line."""
    if path is None:
        return []
    entries: dict[str, WatchlistEntry] = {}
    with csv_reader(path, "watchlist", WatchlistError) as reader:
        if reader.fieldnames is None or "name" not in reader.fieldnames:
            raise WatchlistError(f"{path}:1: watchlist needs a 'name' column, found {reader.fieldnames}")
        for row in reader:
            name = normalize_name(row.get("name") or "")
            if not name:
                raise WatchlistError(f"{path}:{reader.line_num}: empty name")
            entry = WatchlistEntry(keyed_hash(key, "name", name), watchlist_key(key, name), name)
            if entry.name_hash in entries:
                raise WatchlistError(f"{path}:{reader.line_num}: duplicate name after normalization")
            entries[entry.name_hash] = entry
    return list(entries.values())


def watchlist_names(path: Path | None, key: bytes | None) -> dict[str, str]:
    """watchlist_key -> name, from the watchlist file (empty when it or the key is unavailable)."""
    if path is None or key is None or not path.exists():
        return {}
    return {e.key: e.name for e in load_watchlist(path, key)}
