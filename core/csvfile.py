"""Reading the analysts' small CSV files (watchlist, allowlist): forgiving where the meaning is plain.

People edit these files by hand and in spreadsheets, so what a spreadsheet adds without changing
the meaning (a byte-order mark, CRLF line endings, blank and `#` comment lines, spaces around
values, full-width characters, a header in another case) is accepted with a warning that names the
file and lines. What could mean two things (a missing column, a header named twice, a row with
more values than the header) raises `error` with one line naming the spot. Warnings name lines and
column names only, never a value: a watchlist holds people's names.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SHOWN_LINES = 5  # a warning names this many lines, then counts the rest


@dataclass
class Notes:
    """Warnings about one file, gathered by kind so a list with 500 repeats gives one line, not 500."""

    path: Path
    lines: dict[str, list[int]] = field(default_factory=dict)

    def add(self, what: str, line: int) -> None:
        """Note that `line` has the problem `what` (a sentence without any value from the file)."""
        lines = self.lines.setdefault(what, [])
        if not lines or lines[-1] != line:
            lines.append(line)

    def render(self) -> list[str]:
        """One `file:line: what` (or `file: lines a, b and N more: what`) per kind."""
        out = []
        for what, lines in self.lines.items():
            if len(lines) == 1:
                out.append(f"{self.path}:{lines[0]}: {what}")
                continue
            shown = ", ".join(str(n) for n in lines[:SHOWN_LINES])
            more = f" and {len(lines) - SHOWN_LINES} more" if len(lines) > SHOWN_LINES else ""
            out.append(f"{self.path}: lines {shown}{more}: {what}")
        return out


def _clean(value: str) -> tuple[str, bool, bool]:
    """The value NFKC-normalized and trimmed, and whether each of those changed it."""
    folded = unicodedata.normalize("NFKC", value)
    return folded.strip(), folded != value, folded.strip() != folded


def _decode(path: Path, what: str, error: type[Exception], notes: Notes) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: not UTF-8") from exc
    if data.startswith(codecs.BOM_UTF8):
        notes.add("UTF-8 byte-order mark ignored", 1)
        text = text[1:]
    if b"\r\n" in data:
        notes.add("Windows (CRLF) line endings read as plain line ends", 1)
    return text


def read_rows(
    path: Path,
    what: str,
    error: type[Exception],
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    warnings: list[str] | None = None,
    free_text: tuple[str, ...] = (),
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) for each data row of `path`, values NFKC-normalized and trimmed.

    Only `required` and `optional` columns are returned; other columns are ignored. `free_text`
    columns (a reason written in Chinese has full-width commas) are trimmed only. Warnings go to
    `warnings` once the whole file has been read (the generator must be exhausted).
    """
    notes = Notes(path)
    text = _decode(path, what, error, notes)
    reader = csv.reader(io.StringIO(text, newline=""))
    wanted = (*required, *optional)
    columns: dict[str, int] | None = None
    width = 0
    ended = 0
    for record in _records(reader, path, error):
        line, ended = ended + 1, reader.line_num  # a quoted value may span lines: report where it starts
        if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
            notes.add("blank or comment line skipped", line)
            continue
        if columns is None:
            columns, width = _header(record, line, path, what, error, required, wanted, notes), len(record)
            continue
        if any(cell.strip() for cell in record[width:]):
            raise error(
                f"{path}:{line}: {len(record)} values but the header has {width} columns "
                "(an unquoted comma inside a value?)"
            )
        row = {}
        for name in wanted:
            index = columns.get(name)
            raw = record[index] if index is not None and index < len(record) else ""
            value, folded, trimmed = (raw.strip(), False, raw.strip() != raw) if name in free_text else _clean(raw)
            if folded:
                notes.add("full-width or compatibility characters read as their plain forms (NFKC)", line)
            if trimmed and value:
                notes.add("spaces around a value trimmed", line)
            row[name] = value
        yield line, row
    if columns is None:
        raise error(f"{path}:1: {what} has no header line; it needs the columns {', '.join(required)}")
    if warnings is not None:
        warnings.extend(notes.render())


def _records(reader, path: Path, error: type[Exception]) -> Iterator[list[str]]:
    """The reader's records; what the csv module cannot split (a NUL byte, say) is refused naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise error(f"{path}:{reader.line_num}: not a CSV line: {exc}") from exc


def _header(
    record: list[str],
    line: int,
    path: Path,
    what: str,
    error: type[Exception],
    required: tuple[str, ...],
    known: tuple[str, ...],
    notes: Notes,
) -> dict[str, int]:
    """Column name -> index; names compare NFKC-normalized, trimmed and lower-case."""
    columns: dict[str, int] = {}
    renamed = False
    for index, cell in enumerate(record):
        name = _clean(cell)[0].lower()
        if not name:
            continue
        if name in columns:
            raise error(f"{path}:{line}: columns {columns[name] + 1} and {index + 1} are both named {name!r}")
        renamed = renamed or (name != cell and name in known)
        columns[name] = index
    if renamed:
        read_as = ",".join(name for name in columns if name in known)
        notes.add(f"header read as {read_as!r} (case, spaces and full-width forms ignored)", line)
    missing = [name for name in required if name not in columns]
    if missing:
        # The header's own cells are not echoed: a list without a header would put a name in the error.
        raise error(f"{path}:{line}: {what} needs the column(s) {', '.join(missing)} in its header line")
    return columns
