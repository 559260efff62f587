"""The analysts' watchlist of celebrity names, turned into hashes before anything reaches Spark.

Names stay in this process's memory (for human-facing output) and never enter a table: the lake
only sees each entry's name hash and its `watchlist_key`. Lists made by people repeat names (and two
people can share one): a repeat is watched once, with a warning naming its line, never the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.csvfile import Notes, read_rows
from core.errors import UserError
from core.pseudonym import keyed_hash, normalize_name, watchlist_key


class WatchlistError(UserError, ValueError):
    """A watchlist file that cannot be used, naming the file and line."""


@dataclass(frozen=True)
class WatchlistEntry:
    """One watched person: the hash lookups are matched on, and the handle stored in the lake."""

    name_hash: str
    key: str
    name: str


def load_watchlist(path: Path | None, key: bytes, warnings: list[str] | None = None) -> list[WatchlistEntry]:
    """Read a CSV with a `name` column (other columns ignored), names NFKC-normalized and trimmed.

    Rows without a name and names repeated after normalization are skipped; what was skipped, and
    what was read leniently, is appended to `warnings` naming the file and lines.
    """
    if path is None:
        return []
    entries: dict[str, WatchlistEntry] = {}
    notes = Notes(path)
    for line, row in read_rows(path, "watchlist", WatchlistError, ("name",), warnings=warnings):
        name = normalize_name(row["name"])
        if not name:
            notes.add("no name in this row, skipped", line)
            continue
        entry = WatchlistEntry(keyed_hash(key, "name", name), watchlist_key(key, name), name)
        if entry.name_hash in entries:
            notes.add("repeats a name listed above (compared after NFKC and trimming); watched once", line)
            continue
        entries[entry.name_hash] = entry
    if warnings is not None:
        warnings.extend(notes.render())
    return list(entries.values())


def watchlist_names(path: Path | None, key: bytes | None) -> dict[str, str]:
    """watchlist_key -> name, from the watchlist file (empty when it or the key is unavailable)."""
    if path is None or key is None or not path.exists():
        return {}
    return {e.key: e.name for e in load_watchlist(path, key)}
