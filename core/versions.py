"""Table versions that share unchanged partitions, so a publish costs what it changes, not what the lake holds.

A version directory (`.tables/<table>/v<ns>-<run>/`) holds the table's layout down to its partition
columns; each leaf partition (`event_date=2026-11-01`, `window=day/window_date=2026-11-01`) is a
relative symbolic link to an immutable partition directory in `.parts/<table>/<partition>/p<ns>-<run>/`.
A new version links every unchanged partition to the part it already had (one symlink each) and makes
a new part only for the partitions it changes: hard links to the files that stay, plus the new files
moved in from staging. Spark, DuckDB and pyarrow follow the links, so `lake/<table>` reads as an
ordinary hive-partitioned Parquet directory. Files above the partition level (a table without
partition columns) are hard-linked into the version itself, as before.

Garbage collection keeps the current version and the newest `keep` older ones, removes versions newer
than the current one (built by a run that crashed before publishing), and then every part no kept
version links to. It runs only under the lake lock, so nothing is building while it looks.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from schemas import LAKE_TABLES


class CollisionError(RuntimeError):
    """A staged file would overwrite a published one."""


def depth(table: str) -> int:
    """How many directory levels of `table` are partition columns (0: files sit in the table's root)."""
    return len(LAKE_TABLES[table].partition_by) if table in LAKE_TABLES else 0


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under `root`, following directory links (Path.rglob in Python 3.11 does not)."""
    for folder, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            yield Path(folder) / name


def _published(rel: tuple[str, ...]) -> bool:
    # Spark's markers (_SUCCESS, _temporary/) and checksums (.crc) are not table data.
    return not any(part.startswith(("_", ".")) for part in rel)


def leaves(version: Path, levels: int) -> tuple[dict[tuple[str, ...], str | Path], list[tuple[str, ...]]]:
    """A version's leaf partitions (relative link text, or a real directory from the older layout) and loose files."""
    found: dict[tuple[str, ...], str | Path] = {}
    loose: list[tuple[str, ...]] = []

    def visit(folder: Path, rel: tuple[str, ...]) -> None:
        with os.scandir(folder) as entries:
            for entry in entries:
                here = (*rel, entry.name)
                if entry.is_symlink():
                    found[here] = os.readlink(entry.path)
                elif entry.is_dir():
                    if len(here) >= levels:
                        found[here] = Path(entry.path)  # a partition copied whole by the older layout
                    else:
                        visit(Path(entry.path), here)
                else:
                    loose.append(here)

    visit(version, ())
    return found, loose


def _staged(add: Iterable[Path], levels: int) -> tuple[dict[tuple[str, ...], list[tuple[Path, Path]]], list]:
    """Staged files by leaf partition (source, path inside the leaf), and those above the partition level."""
    by_leaf: dict[tuple[str, ...], list[tuple[Path, Path]]] = {}
    loose: list[tuple[Path, tuple[str, ...]]] = []
    for staged in add:
        if not staged.exists():
            continue  # Spark writes no directory for an empty, partitioned result
        for src in sorted(walk_files(staged)):
            rel = src.relative_to(staged).parts
            if not _published(rel):
                continue
            if levels and len(rel) > levels:
                by_leaf.setdefault(rel[:levels], []).append((src, Path(*rel[levels:])))
            else:
                loose.append((src, rel))
    return by_leaf, loose


def _dropped(rel: tuple[str, ...], drop: set[str]) -> bool:
    return any("/".join(rel[: i + 1]) in drop for i in range(len(rel)))


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file under `source` (following links) into `target`, keeping relative paths."""
    for src in walk_files(source):
        dest = target / src.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dest)


def _move_in(files: list[tuple[Path, Path]], target: Path, shown: Path) -> None:
    for src, rel in files:
        dest = target / rel
        if dest.exists():
            raise CollisionError(f"{shown / rel}: staged file collides with a published one")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)


def build(
    versions: Path,
    parts: Path,
    table: str,
    run_id: str,
    current: Path | None,
    add: Iterable[Path],
    drop: set[str],
) -> Path:
    """A new version of `table`: `current` (None: start empty) minus `drop`, plus the staged files in `add`."""
    levels = depth(table)
    stamp = f"{time.time_ns():020d}-{run_id}"
    target = versions / table / f"v{stamp}"
    target.mkdir(parents=True)
    old_leaves, old_loose = leaves(current, levels) if current is not None else ({}, [])
    new_leaves, new_loose = _staged(add, levels)
    for rel in old_loose:
        if not _dropped(rel, drop):
            (target / Path(*rel)).parent.mkdir(parents=True, exist_ok=True)
            os.link(current / Path(*rel), target / Path(*rel))
    _move_in([(src, Path(*rel)) for src, rel in new_loose], target, target)
    for rel in sorted(set(old_leaves) | set(new_leaves)):
        old = old_leaves.get(rel) if not _dropped(rel, drop) else None
        if old is None and rel not in new_leaves:
            continue  # dropped, and nothing new for it
        link = target / Path(*rel)
        link.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(old, str) and rel not in new_leaves:
            os.symlink(old, link)  # unchanged: the same part, and the same relative path to it
            continue
        part = parts / table / Path(*rel) / f"p{stamp}"
        part.mkdir(parents=True)
        if old is not None:
            _link_tree(Path(os.path.normpath(link.parent / old)) if isinstance(old, str) else old, part)
        _move_in(new_leaves.get(rel, []), part, Path(*rel))
        os.symlink(os.path.relpath(part, link.parent), link)
    return target


def collect(versions: Path, parts: Path, table: str, current: Path | None, keep: int) -> list[Path]:
    """Remove what no reader can reach any more: old and orphaned versions, then unlinked parts; return them."""
    folder = versions / table
    removed: list[Path] = []
    if folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.name.startswith("v"))
        if current is None:
            stale = found
        else:
            older = [p for p in found if p.name < current.name]
            stale = [p for p in found if p.name > current.name] + older[: max(0, len(older) - keep)]
        for path in stale:
            shutil.rmtree(path)
            removed.append(path)
    store = parts / table
    if not store.is_dir():
        return removed
    levels = depth(table)
    used: set[str] = set()
    for version in (p for p in folder.iterdir() if p.name.startswith("v")) if folder.is_dir() else ():
        for rel, where in leaves(version, levels)[0].items():
            if isinstance(where, str):
                used.add(os.path.normpath(version / Path(*rel).parent / where))
    for part in store.glob("/".join(["*"] * (levels + 1))):
        if part.name.startswith("p") and str(part) not in used:
            shutil.rmtree(part)
            removed.append(part)
            _prune_empty(part.parent, store)
    return removed


def _prune_empty(folder: Path, stop: Path) -> None:
    """Drop partition folders left empty (a dropped or retained-away partition), up to `stop`."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
