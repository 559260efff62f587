"""Retention: data older than its table's retention period leaves the lake, and the removal is recorded.

Partitioned tables lose whole partitions, by the date in the partition's name (event_date,
ingest_date, window_date, detect_date): no data file is read or rewritten, the new version simply
leaves the expired directories out. Unpartitioned tables (the per-run records) are small; their rows
older than the period are filtered out by their time column and the rest rewritten as one file.
`keep` lets the caller protect rows that must outlive their period (undelivered alerts). The caller
holds the lake lock and publishes the versions built here together with the retention_log rows.

`ages` lists every partition still in the lake with how far it is past its period: the input of the
retention GX check and of `enumwatch status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from core.lake import Lake
from core.partitions import Partition, arrow_schema, partition_date, partitions
from core.settings import MaintenanceSettings
from schemas import LAKE_TABLES

# The time column that dates a row of each unpartitioned table.
TIME_COLUMNS = {
    "ingest_manifest": "ingested_at",
    "dq_results": "validated_at",
    "detect_runs": "detected_at",
    "alerts": "created_at",
    "retention_log": "removed_at",
    "compaction_log": "compacted_at",
}


@dataclass
class Expired:
    """What one table loses in a run: whole partitions, or (unpartitioned) the rows older than `cutoff`."""

    table: str
    retention_days: int
    cutoff: date
    partitions: list[Partition] = field(default_factory=list)
    rows: int = 0
    first_date: date | None = None
    last_date: date | None = None

    @property
    def files(self) -> int:
        return sum(len(p.files) for p in self.partitions)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.partitions)


def cutoff_for(today: date, days: int) -> date:
    """The first day still kept: data dated before it has outlived a period of `days`."""
    return today - timedelta(days=days)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _dataset(table: str, part: Partition) -> ds.Dataset:
    return ds.dataset([str(f) for f in part.files], schema=arrow_schema(LAKE_TABLES[table]), format="parquet")


def _old_rows(table: str, cutoff: date, keep: ds.Expression | None) -> ds.Expression:
    old = ds.field(TIME_COLUMNS[table]) < pa.scalar(_midnight(cutoff), pa.timestamp("us", tz="UTC"))
    return old & ~keep if keep is not None else old


def expired(
    lake: Lake, table: str, policy: MaintenanceSettings, today: date, keep: ds.Expression | None = None
) -> Expired | None:
    """What `table` would lose today (None when it keeps its data forever)."""
    days = policy.retention_for(table)
    if not days:
        return None
    decl, cutoff = LAKE_TABLES[table], cutoff_for(today, days)
    found = Expired(table, days, cutoff)
    parts = partitions(lake.current(table))
    if decl.partition_by:
        dated = [(partition_date(decl, p.name), p) for p in parts]
        found.partitions = [p for d, p in dated if d is not None and d < cutoff]
        days_out = [d for d, _ in dated if d is not None and d < cutoff]
        found.rows = sum(p.rows() for p in found.partitions)
    elif parts:
        column = TIME_COLUMNS[table]
        old = _dataset(table, parts[0]).to_table(columns=[column], filter=_old_rows(table, cutoff, keep))
        found.rows = old.num_rows
        bounds = pc.min_max(old.column(column))
        days_out = [bounds[k].as_py().date() for k in ("min", "max")] if old.num_rows else []
        if old.num_rows:
            found.partitions = parts  # replaced by one rewritten file
    else:
        days_out = []
    if days_out:
        found.first_date, found.last_date = min(days_out), max(days_out)
    return found


def remove(lake: Lake, run_id: str, found: Expired, keep: ds.Expression | None = None) -> tuple[Path | None, int]:
    """Build the table's version without its expired data; return it (None if nothing expired) and bytes written."""
    if not found.partitions:
        return None, 0
    if LAKE_TABLES[found.table].partition_by:
        drop = {p.name for p in found.partitions}
        return lake.build_version(found.table, run_id, drop_partitions=drop), 0
    staged = lake.staging(run_id) / found.table
    kept = _dataset(found.table, found.partitions[0]).scanner(filter=~_old_rows(found.table, found.cutoff, keep))
    ds.write_dataset(kept, staged, format="parquet", basename_template=f"part-{run_id}-{{i}}.parquet")
    written = partitions(staged)
    return lake.build_version(found.table, run_id, add=[staged], keep_current=False), sum(p.bytes for p in written)


def log_row(run_id: str, found: Expired, written_bytes: int, now: datetime) -> dict:
    """The retention_log row of one table in one run."""
    partitioned = bool(LAKE_TABLES[found.table].partition_by)
    return {
        "run_id": run_id,
        "table_name": found.table,
        "retention_days": found.retention_days,
        "cutoff_date": found.cutoff,
        "partitions": [p.name for p in found.partitions] if partitioned else [],
        "first_date": found.first_date,
        "last_date": found.last_date,
        "rows_removed": found.rows,
        "files_removed": found.files,
        "bytes_removed": found.bytes - written_bytes,
        "removed_at": now,
    }


def ages(lake: Lake, policy: MaintenanceSettings, today: date, versions: dict[str, Path] | None = None) -> list[dict]:
    """One partition_ages row per partition (or unpartitioned table) in the lake: its oldest date, days overdue.

    `versions` (table -> unpublished version) shows the lake as it will be after a pending publish.
    """
    rows = []
    for table, decl in LAKE_TABLES.items():
        days = policy.retention_for(table)
        cutoff = cutoff_for(today, days)
        version = (versions or {}).get(table) or lake.current(table)
        for part in partitions(version):
            if decl.partition_by:
                oldest = partition_date(decl, part.name)
            else:
                column = _dataset(table, part).to_table(columns=[TIME_COLUMNS[table]]).column(0)
                oldest = pc.min(column).as_py().date() if len(column) else None
            if oldest is None:
                continue
            overdue = max(0, (cutoff - oldest).days) if days else 0
            rows.append(
                {
                    "table_name": table,
                    "partition": part.name,
                    "oldest_date": oldest,
                    "retention_days": days,
                    "overdue_days": overdue,
                }
            )
    return rows
