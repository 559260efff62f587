"""Running the ingest flow in tests and reading back what it published, with pyarrow (no Spark needed to look)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.dataset as ds
from conftest import flow_env

from core.lake import parquet_files
from pipelines.ingest import ingest_flow

TABLES = ("requests", "quarantine", "ingest_manifest", "dq_results")


def run_ingest(source: Path, config: Path, **kwargs) -> dict:
    """One ingest flow run with the test key from the environment; its summary."""
    with flow_env():
        return ingest_flow(source=str(source), fmt=kwargs.pop("fmt", "jsonl"), config=str(config), **kwargs)


def rows(lake: Path, table: str) -> list[dict]:
    """Every row of a published table (empty before its first publish)."""
    path = lake / table
    if not path.exists() or not any(parquet_files(path)):
        return []
    return ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pylist()


def links(lake: Path) -> dict[str, str | None]:
    """Where each table link of the lake points (None before its first publish)."""
    return {t: os.readlink(lake / t) if (lake / t).is_symlink() else None for t in TABLES}


def counts(lake: Path) -> dict[str, int]:
    """Row count of each ingest table."""
    return {t: len(rows(lake, t)) for t in TABLES}
