"""The analysts' watchlist of celebrity names, turned into hashes before anything reaches Spark.

Names stay in this process's memory (for human-facing output) and never enter a table: the lake
only sees each entry's name hash and its `watchlist_key`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from enumwatch.pseudonym import keyed_hash, normalize_name, watchlist_key


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
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise WatchlistError(f"{path}: cannot read watchlist: {exc.strerror}") from exc
    entries: dict[str, WatchlistEntry] = {}
    with fh:
        # The text layer decodes ahead in chunks, so a bad byte can surface while the header is read.
        try:
            reader = csv.DictReader(fh)
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
        except UnicodeDecodeError as exc:
            raise WatchlistError(f"{path}:{_first_bad_utf8_line(path)}: not UTF-8") from exc
    return list(entries.values())


def _first_bad_utf8_line(path: Path) -> int:
    """The 1-based line holding the file's first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return 1
