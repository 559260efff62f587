"""Compaction: partitions that collected too many small files are rewritten into few, every row kept.

A 5-minute incremental ingest adds files to the day's partition on every run, and per-run tables
(dq_results, detect_runs, the logs) add a file per run; left alone, every reader and every publish
walks an ever longer list. Compaction streams the files of each crowded partition through pyarrow
(one row group at a time, never the whole partition in memory), casting to the table's declared
schema, and checks that the new files hold as many rows as the old ones before anything is
published. The caller holds the lake lock and publishes the versions built here together with the
compaction_log rows, so readers see either the old files or the new ones, never both.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.dataset as ds

from core.lake import Lake, LakeError
from core.partitions import Partition, arrow_schema, partitions
from schemas import LAKE_TABLES

ROW_GROUP = 1 << 17  # rows per row group: large enough for scans, small enough to buffer per partition


class CompactionError(LakeError):
    """Rewritten files do not hold the rows they replace; nothing was published."""


def crowded(lake: Lake, table: str, max_files: int) -> list[Partition]:
    """The table's partitions holding more than `max_files` Parquet files."""
    return [p for p in partitions(lake.current(table)) if len(p.files) > max_files]


def rewrite(table: str, part: Partition, out: Path, run_id: str, rows_per_file: int) -> Partition:
    """Stream `part`'s rows into files of at most `rows_per_file` rows under `out`; check the row count."""
    decl = LAKE_TABLES[table]
    data = ds.dataset([str(f) for f in part.files], schema=arrow_schema(decl, stored_only=True), format="parquet")
    group = min(rows_per_file, ROW_GROUP)
    ds.write_dataset(
        data,
        out,
        format="parquet",
        basename_template=f"part-{run_id}-{{i}}.parquet",
        max_rows_per_file=rows_per_file,
        max_rows_per_group=group,
        min_rows_per_group=group,
        existing_data_behavior="error",
    )
    written = partitions(out)
    result = Partition(part.name, written[0].files if written else (), written[0].bytes if written else 0)
    before, after = part.rows(), result.rows()
    if before != after:
        raise CompactionError(f"{table}/{part.name}: {after} rows after compaction, {before} before; nothing published")
    return result


def compact_table(
    lake: Lake, table: str, run_id: str, max_files: int, rows_per_file: int, now: datetime
) -> tuple[Path | None, dict]:
    """Rewrite `table`'s crowded partitions; return its new version (None if nothing to do) and its log row."""
    todo = crowded(lake, table, max_files)
    staged = lake.staging(run_id) / table
    done = [rewrite(table, p, staged / p.name if p.name else staged, run_id, rows_per_file) for p in todo]
    row = {
        "run_id": run_id,
        "table_name": table,
        "partitions": [p.name for p in todo],
        "files_before": sum(len(p.files) for p in todo),
        "files_after": sum(len(p.files) for p in done),
        "rows": sum(p.rows() for p in done),
        "bytes_before": sum(p.bytes for p in todo),
        "bytes_after": sum(p.bytes for p in done),
        "compacted_at": now,
    }
    if not todo:
        return None, row
    if LAKE_TABLES[table].partition_by:
        version = lake.build_version(table, run_id, add=[staged], drop_partitions={p.name for p in todo})
    else:  # the root is the one partition, rewritten whole
        version = lake.build_version(table, run_id, add=[staged], keep_current=False)
    return version, row
