"""A table version as files: its partitions, their dates, sizes and row counts, and small pyarrow writes.

Compaction, retention and `enumwatch status` work on files rather than rows: which Parquet files sit
in which partition directory, how large they are, and (from their footers, without reading data)
how many rows they hold. They need no Spark, so they run in seconds on the scheduler's worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.pandas.types import to_arrow_schema

from schemas import Table


@dataclass(frozen=True)
class Partition:
    """The Parquet files of one partition directory ('' for an unpartitioned table's root)."""

    name: str
    files: tuple[Path, ...]
    bytes: int

    def rows(self) -> int:
        """Rows in the partition, summed from the files' footers."""
        return sum(pq.read_metadata(f).num_rows for f in self.files)


def partitions(version: Path | None) -> list[Partition]:
    """Every directory of `version` holding Parquet files, sorted by name (none before a first publish)."""
    if version is None or not version.is_dir():
        return []
    found: dict[str, list[os.DirEntry]] = {}
    stack = [version]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir():  # partition links (core/versions) are followed
                    stack.append(Path(entry.path))
                elif entry.name.endswith(".parquet") and not entry.name.startswith(("_", ".")):
                    found.setdefault(Path(folder).relative_to(version).as_posix(), []).append(entry)
    return [
        Partition(
            "" if name == "." else name,
            tuple(sorted(Path(e.path) for e in entries)),
            sum(e.stat().st_size for e in entries),
        )
        for name, entries in sorted(found.items())
    ]


def date_column(table: Table) -> str | None:
    """The date-typed partition column a partition's age is read from, if the table has one."""
    types = {c.name: c.type for c in table.columns}
    return next((p for p in table.partition_by if types[p] == "date"), None)


def partition_date(table: Table, name: str) -> date | None:
    """The date in a partition name such as `window=day/window_date=2026-11-01` (None if it has none)."""
    column = date_column(table)
    for part in name.split("/"):
        key, _, value = part.partition("=")
        if key == column:
            try:
                return date.fromisoformat(value)
            except ValueError:
                return None
    return None


def arrow_schema(table: Table, stored_only: bool = False) -> pa.Schema:
    """The table's Arrow schema; `stored_only` leaves out partition columns (they live in directory names)."""
    schema = to_arrow_schema(table.spark_schema())
    for column in table.partition_by if stored_only else ():
        schema = schema.remove(schema.get_field_index(column))
    return schema


def write_rows(table: Table, rows: list[dict], path: Path) -> Path:
    """Write `rows` (a handful: log rows, verdicts) as one Parquet file Spark reads with the table's schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(table)), path)
    return path
