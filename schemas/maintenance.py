"""The tables lake maintenance writes: what retention removed and what compaction rewrote, per run and table."""

from __future__ import annotations

from schemas.table import Col, Table

RETENTION_LOG = Table(
    "retention_log",
    "One row per retention run per table: what was removed because it outlived the table's retention period.",
    (
        Col("run_id", "string", "The retention run.", False),
        Col("table_name", "string", "The lake table examined.", False),
        Col("retention_days", "int", "The table's retention period in days when the run examined it.", False),
        Col("cutoff_date", "date", "Data dated before this day was removed.", False),
        Col(
            "partitions",
            "array<string>",
            "Partitions removed whole (e.g. event_date=2026-05-01); empty for a row-wise rewrite.",
            False,
        ),
        Col("first_date", "date", "Earliest date of the data removed (null when nothing was)."),
        Col("last_date", "date", "Latest date of the data removed (null when nothing was)."),
        Col("rows_removed", "bigint", "Rows removed.", False),
        Col("files_removed", "bigint", "Parquet files no longer in the table's new version.", False),
        Col("bytes_removed", "bigint", "Bytes of those files.", False),
        Col("removed_at", "timestamp", "When the run published, UTC.", False),
    ),
)

COMPACTION_LOG = Table(
    "compaction_log",
    "One row per compaction run per table: partitions rewritten into fewer files, rows unchanged.",
    (
        Col("run_id", "string", "The compaction run.", False),
        Col("table_name", "string", "The lake table examined.", False),
        Col("partitions", "array<string>", "Partitions rewritten (an empty name is the unpartitioned table).", False),
        Col("files_before", "bigint", "Parquet files of those partitions before.", False),
        Col("files_after", "bigint", "Parquet files of those partitions after.", False),
        Col("rows", "bigint", "Rows in those partitions, equal before and after.", False),
        Col("bytes_before", "bigint", "Bytes before.", False),
        Col("bytes_after", "bigint", "Bytes after.", False),
        Col("compacted_at", "timestamp", "When the run published, UTC.", False),
    ),
)

# The retention check's input: one row per table and partition still in the lake. Not a lake table.
PARTITION_AGES = Table(
    "partition_ages",
    "Partitions (or, unpartitioned, tables) still in the lake with the age of their oldest data (retention check).",
    (
        Col("table_name", "string", "The lake table.", False),
        Col("partition", "string", "The partition, or empty for an unpartitioned table.", False),
        Col("oldest_date", "date", "Date of the oldest data in it.", False),
        Col("retention_days", "int", "The table's retention period (0: forever).", False),
        Col("overdue_days", "int", "Days past its retention (0 when within it or kept forever).", False),
    ),
)
