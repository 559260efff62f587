"""The lake on disk: versioned Parquet tables published all-or-nothing, one writer at a time.

Each table name in the lake root (`lake/requests`) is a symbolic link to an immutable version
directory under `lake/.tables/<table>/`; unchanged partitions are shared between versions
(`core/versions`), so a publish costs what it changes. A run builds its new versions beside the
current ones, writes a journal naming every switch, then swaps the links. A crash before the journal
leaves the old links in place; a crash after it is rolled forward by the next run, which also removes
the crashed run's staging, versions and parts. Readers (Spark, DuckDB, pyarrow) simply read
`lake/<table>`; each link swap is one rename, so a reader sees a table's old or new version, never a mix.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from core import faults, versions
from schemas import LAKE_TABLES

if TYPE_CHECKING:  # the lake's own work is files and links; Spark is the caller's
    from pyspark.sql import DataFrame, SparkSession

# Storage failures no retry fixes; a person must free space or fix the mount (errno, Java's text).
_STORAGE = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}
_STORAGE_TEXT = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                 "Read-only file system": errno.EROFS}  # fmt: skip


class LakeError(RuntimeError):
    """The lake cannot be used as asked: another key, a busy lock, a damaged layout, full storage."""


def storage_failure(exc: BaseException) -> str | None:
    """'no space left on device' (or quota, read-only) when `exc` or its causes is that; else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _STORAGE:
            return _STORAGE[exc.errno]
        text = str(exc)  # Spark's errors carry the Java exception only as text
        for needle, code in _STORAGE_TEXT.items():
            if needle in text:
                return _STORAGE[code]
        exc = exc.__cause__ or exc.__context__
    return None


def parquet_files(path: Path) -> Iterator[Path]:
    """The Parquet files a reader of `path` sees (partition links followed)."""
    return (p for p in versions.walk_files(path) if p.name.endswith(".parquet") and not p.name.startswith(("_", ".")))


class Lake:
    """A lake root directory and the operations that keep its tables consistent."""

    def __init__(self, root: Path, keep_versions: int = 2) -> None:
        self.root = root.expanduser().absolute()
        self.keep_versions = keep_versions
        self.versions = self.root / ".tables"
        self.parts = self.root / ".parts"
        self.staging_root = self.root / "_staging"
        self.journal = self.root / "_journal.json"
        self.lock_file = self.root / ".lock"

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

    # --- the writer lock -----------------------------------------------------------------------
    @contextmanager
    def lock(self, wait_s: float = 0, run_id: str = "", on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the lake's writer lock, waiting up to `wait_s` seconds for another writer to finish.

        The holder writes its run id, pid, host and start time into the lock file, so a waiter (and
        `enumwatch status`) can say who it waits for. The lock is an flock: a killed holder frees it.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only or full lake: say so in one line
            raise LakeError(
                f"{self.lock_file}: cannot take the lake lock: {storage_failure(exc) or exc.strerror}"
            ) from exc
        try:
            deadline, told = time.monotonic() + wait_s, 0.0
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _describe(self.lock_holder())
                    if time.monotonic() >= deadline:
                        waited = f"; waited {wait_s:g} s (lake.lock_wait_seconds)" if wait_s else ""
                        raise LakeError(
                            f"{self.root}: another enumwatch run holds the lake lock ({holder}){waited}"
                        ) from None
                    if on_wait is not None and time.monotonic() - told >= 60:
                        on_wait(f"waiting up to {wait_s:g} s for the lake lock, held by {holder}")
                        told = time.monotonic()
                    time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
            me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def lock_holder(self) -> dict | None:
        """Who holds the writer lock now ({run_id, pid, host, since}; {} if it has not said yet), or None."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
                try:
                    return json.loads(text) if text else {}
                except ValueError:
                    return {}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None  # free; what the file still says is from a run that ended (or was killed)
        finally:
            os.close(fd)

    @contextmanager
    def storage_errors(self) -> Iterator[None]:
        """Under the lock: a full or read-only disk ends the run in one line, with this run's staging removed."""
        try:
            yield
        except Exception as exc:
            why = storage_failure(exc)
            if why is None:
                raise
            shutil.rmtree(self.staging_root, ignore_errors=True)  # give the space back at once
            state = (
                "its publish was already committed and the next run finishes it"
                if self.journal.exists()
                else "the published tables are as they were"
            )
            raise LakeError(
                f"{self.root}: {why} while this run was writing; {state}; free space and run again"
            ) from exc

    # --- recovery and cleaning -----------------------------------------------------------------
    def recover(self) -> bool:
        """Under the lock: finish a publish cut short after its journal, drop staging and crashed runs' leftovers."""
        finished = False
        if self.journal.exists():
            try:
                plan = json.loads(self.journal.read_text())
            except ValueError as exc:
                raise LakeError(f"{self.journal}: unreadable publish journal ({exc}); see README 'The lake'") from exc
            self._swap(plan["links"])
            self.journal.unlink()
            finished = True
        if self.staging_root.exists():
            shutil.rmtree(self.staging_root)
        for stray in (self.root / "_journal.json.tmp", *self.root.glob(".*.swap")):
            if stray.is_symlink() or stray.exists():
                stray.unlink()
        self.collect_garbage()
        return finished

    def collect_garbage(self, tables: list[str] | None = None) -> list[Path]:
        """Remove old versions beyond keep_versions, versions and parts of crashed runs; return what went."""
        names = tables if tables is not None else sorted(
            {p.name for base in (self.versions, self.parts) if base.is_dir() for p in base.iterdir()}
        )  # fmt: skip
        removed: list[Path] = []
        for table in names:
            removed += versions.collect(self.versions, self.parts, table, self.current(table), self.keep_versions)
        return removed

    # --- reading -------------------------------------------------------------------------------
    def path(self, table: str) -> Path:
        """The stable path analysts and jobs read a table from."""
        return self.root / table

    def current(self, table: str) -> Path | None:
        """The version directory a table name points to, or None before its first publish."""
        link = self.path(table)
        return link.resolve() if link.is_symlink() else None

    def has_data(self, table: str) -> bool:
        """True once the table's current version holds at least one Parquet file."""
        current = self.current(table)
        return current is not None and next(parquet_files(current), None) is not None

    def read(self, spark: SparkSession, table: str) -> DataFrame:
        """The table as a DataFrame with its declared schema (empty, not an error, before first publish)."""
        schema = LAKE_TABLES[table].spark_schema()
        if not self.has_data(table):
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
        """A new version: the current one (minus dropped partitions) plus `add` files moved in from staging.

        Costs the files of the partitions it changes plus one link per unchanged partition.
        """
        current = self.current(table) if keep_current else None
        try:
            return versions.build(self.versions, self.parts, table, run_id, current, add, set(drop_partitions))
        except versions.CollisionError as exc:
            raise LakeError(str(exc)) from exc

    def publish(self, run_id: str, built: dict[str, Path]) -> None:
        """Point every table in `built` at its new version, all or nothing, then drop old versions."""
        links = {table: os.path.relpath(path, self.root) for table, path in built.items()}
        faults.point("publish.built")
        _write_atomic(self.journal, json.dumps({"run_id": run_id, "links": links}))
        faults.point("publish.journal")
        self._swap(links)
        self.journal.unlink()
        self.collect_garbage(list(built))

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
            faults.point(f"publish.swapped.{table}")


def _describe(holder: dict | None) -> str:
    if not holder:
        return "a run that has not yet said who it is"
    return f"run {holder.get('run_id') or '?'}, pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    with open(tmp) as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
