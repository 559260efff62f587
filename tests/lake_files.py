"""Small lakes written with pyarrow, file by file, the way Spark lays them out: for maintenance and status tests."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from core.lake import Lake
from core.partitions import arrow_schema
from schemas import LAKE_TABLES

T0 = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
_DEFAULTS = {"string": "x", "int": 0, "bigint": 0, "double": 0.0, "boolean": False, "binary": b""}
_counter = itertools.count()


def row(table: str, **values) -> dict:
    """A row of `table` with every required column filled, `values` overriding."""
    out = {}
    for col in LAKE_TABLES[table].columns:
        if col.nullable:
            out[col.name] = None
        elif col.type == "timestamp":
            out[col.name] = T0
        elif col.type == "date":
            out[col.name] = T0.date()
        elif col.type.startswith(("array", "map")):
            out[col.name] = []
        else:
            out[col.name] = _DEFAULTS[col.type]
    out.update(values)
    return out


def publish_rows(lake: Lake, table: str, rows: list[dict], files: int = 1, keep_current: bool = True) -> None:
    """Publish `rows` into `table`, `files` Parquet files per partition, as one run."""
    decl = LAKE_TABLES[table]
    run_id = f"test-{next(_counter)}"
    staged = lake.staging(run_id) / table
    groups: dict[str, list[dict]] = {}
    for r in rows:
        name = "/".join(f"{p}={r[p]}" for p in decl.partition_by)
        groups.setdefault(name, []).append({k: v for k, v in r.items() if k not in decl.partition_by})
    for name, members in groups.items():
        folder = staged / name if name else staged
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            chunk = members[i::files]
            schema = arrow_schema(decl, stored_only=True)
            pq.write_table(pa.Table.from_pylist(chunk, schema=schema), folder / f"part-{run_id}-{i:05d}.parquet")
    lake.publish(run_id, {table: lake.build_version(table, run_id, add=[staged], keep_current=keep_current)})
    lake.recover()


def read_rows(lake: Lake, table: str) -> list[dict]:
    """Every row of the published table, partition columns included, in a stable order."""
    decl = LAKE_TABLES[table]
    current = lake.current(table)
    if current is None:
        return []
    schema = arrow_schema(decl)
    part = ds.partitioning(pa.schema([schema.field(p) for p in decl.partition_by]), flavor="hive")
    data = ds.dataset(current, format="parquet", schema=schema, partitioning=part if decl.partition_by else None)
    return sorted(data.to_table().to_pylist(), key=repr)


def parquet_files(lake: Lake, table: str, partition: str = "") -> int:
    """Parquet files in one partition of the published table."""
    return len(list((lake.current(table) / partition).glob("*.parquet")))


def day(n: int) -> date:
    """2026-11-01 plus `n` days."""
    return date.fromordinal(T0.date().toordinal() + n)
