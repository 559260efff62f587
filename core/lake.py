"""The lake on disk: versioned Parquet tables published all-or-nothing.

Each table name in the lake root (`lake/requests`) is a symbolic link to an immutable version
directory under `lake/.tables/<table>/`. A run builds new versions beside the current ones (files it
keeps are hard links, new files are moved in from staging), writes a journal naming every switch, then
swaps the links. A crash before the journal leaves the old links in place; a crash after it is rolled
forward by the next run. Readers (Spark, DuckDB, pyarrow) simply read `lake/<table>`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from schemas import LAKE_TABLES

if TYPE_CHECKING:  # the lake's own work is files and links; Spark is the caller's
    from pyspark.sql import DataFrame, SparkSession


class LakeError(RuntimeError):
    """The lake cannot be used as asked: another key, a busy lock, a damaged layout."""


class Lake:
    """A lake root directory and the operations that keep its tables consistent."""

    def __init__(self, root: Path, keep_versions: int = 2) -> None:
        self.root = root.expanduser().absolute()
        self.keep_versions = keep_versions
        self.versions = self.root / ".tables"
        self.staging_root = self.root / "_staging"
        self.journal = self.root / "_journal.json"

    # --- opening -------------------------------------------------------------------------------
    def open(self, key_fingerprint: str) -> None:
        """Create the lake if needed; refuse a key other than the one the lake was written with."""
        self.root.mkdir(parents=True, exist_ok=True)
        meta = self.root / "_lake.json"
        if meta.exists():
            recorded = json.loads(meta.read_text())["key_fingerprint"]
            if recorded != key_fingerprint:
                raise LakeError(
                    f"{self.root}: this lake was written with another pseudonym key "
                    f"(fingerprint {recorded}, now {key_fingerprint}); hashes would not match"
                )
        else:
            _write_atomic(meta, json.dumps({"key_fingerprint": key_fingerprint, "format": 1}))

    def remember_watchlist(self, path: Path) -> None:
        """Record where the watchlist lives (its path only), so outputs can show names later."""
        meta = self.root / "_lake.json"
        doc = json.loads(meta.read_text())
        doc["watchlist"] = str(path.absolute())
        _write_atomic(meta, json.dumps(doc))

    def watchlist_path(self) -> Path | None:
        """The watchlist last used with this lake, if any."""
        meta = self.root / "_lake.json"
        found = json.loads(meta.read_text()).get("watchlist") if meta.exists() else None
        return Path(found) if found else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the lake's writer lock; a second writer fails at once instead of interleaving."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LakeError(f"{self.root}: another enumwatch run holds the lake lock") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def recover(self) -> bool:
        """Finish a publish that crashed after its journal was written; drop stale staging."""
        finished = False
        if self.journal.exists():
            plan = json.loads(self.journal.read_text())
            self._swap(plan["links"])
            self.journal.unlink()
            finished = True
        if self.staging_root.exists():
            shutil.rmtree(self.staging_root)
        return finished

    # --- reading -------------------------------------------------------------------------------
    def path(self, table: str) -> Path:
        """The stable path analysts and jobs read a table from."""
        return self.root / table

    def current(self, table: str) -> Path | None:
        """The version directory a table name points to, or None before its first publish."""
        link = self.path(table)
        return link.resolve() if link.is_symlink() else None

    def read(self, spark: SparkSession, table: str) -> DataFrame:
        """The table as a DataFrame with its declared schema (empty, not an error, before first publish)."""
        schema = LAKE_TABLES[table].spark_schema()
        current = self.current(table)
        if current is None or not any(current.rglob("*.parquet")):
            return spark.createDataFrame([], schema)
        return spark.read.schema(schema).parquet(str(self.path(table)))

    # --- writing -------------------------------------------------------------------------------
    def staging(self, run_id: str) -> Path:
        """A fresh staging directory for one run, inside the lake so that moves are renames."""
        path = self.staging_root / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def build_version(
        self,
        table: str,
        run_id: str,
        *,
        add: list[Path] = (),  # type: ignore[assignment]
        keep_current: bool = True,
        drop_partitions: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> Path:
        """A new version dir: hard links to the current files (minus dropped partitions) plus `add` files moved in."""
        target = self.versions / table / f"v{time.time_ns():020d}-{run_id}"
        target.mkdir(parents=True)
        current = self.current(table)
        if keep_current and current is not None:
            for src in current.rglob("*"):
                rel = src.relative_to(current)
                partitions = {"/".join(rel.parts[: i + 1]) for i in range(len(rel.parts) - 1)}
                if src.is_file() and not partitions & drop_partitions:
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.link(src, target / rel)
        for staged in add:
            if not staged.exists():
                continue  # Spark writes no directory for an empty, partitioned result
            for src in sorted(staged.rglob("*")):
                rel = src.relative_to(staged)
                if src.is_file() and not rel.name.startswith(("_", ".")):
                    dest = target / rel
                    if dest.exists():
                        raise LakeError(f"{dest}: staged file collides with a published one")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dest)
        return target

    def publish(self, run_id: str, versions: dict[str, Path]) -> None:
        """Point every table in `versions` at its new version, all or nothing, then drop old versions."""
        links = {table: os.path.relpath(path, self.root) for table, path in versions.items()}
        _write_atomic(self.journal, json.dumps({"run_id": run_id, "links": links}))
        self._swap(links)
        self.journal.unlink()
        for table in versions:
            self._collect_garbage(table)

    def _swap(self, links: dict[str, str]) -> None:
        for table, rel_target in links.items():
            link = self.path(table)
            if link.exists() and not link.is_symlink():
                raise LakeError(f"{link}: expected a table link, found a plain directory")
            tmp = self.root / f".{table}.swap"
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(rel_target, tmp)
            os.replace(tmp, link)

    def _collect_garbage(self, table: str) -> None:
        current = self.current(table)
        older = sorted(p for p in (self.versions / table).iterdir() if p != current)
        for stale in older[: max(0, len(older) - self.keep_versions)]:
            shutil.rmtree(stale)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    with open(tmp) as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
