"""Reading the analysts' small CSV files (watchlist, allowlist) with errors that name the file and line."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def csv_reader(path: Path, what: str, error: type[Exception]) -> Iterator[csv.DictReader]:
    """A DictReader over `path`; an unreadable file or bytes that are not UTF-8 raise `error` naming the spot."""
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    with fh:
        # The text layer decodes ahead in chunks, so a bad byte can surface while the header is read.
        try:
            yield csv.DictReader(fh)
        except UnicodeDecodeError as exc:
            raise error(f"{path}:{first_bad_utf8_line(path)}: not UTF-8") from exc


def first_bad_utf8_line(path: Path) -> int:
    """The 1-based line holding the file's first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return 1
