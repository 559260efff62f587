"""Finds source files and decides, against the ingest manifest, which of them this run ingests.

A file is identified by its real path (symbolic links resolved) and its content by SHA-256: the
same content again is a no-op, changed content is refused unless --reingest, and files that cannot
be read are reported and skipped while the others go on. Log volumes are often mounted through
symbolic links, so links to files and directories are followed; a directory reached a second time
(a loop, or two links to one place) is walked once and reported, and a file reached through several
links is listed once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = {
    "jsonl": (".jsonl", ".json", ".log"),
    "combined": (".log", ".txt"),
}


class SourceError(ValueError):
    """The source cannot be used at all (missing path), or a file changed since it was ingested."""


@dataclass(frozen=True)
class SourceFile:
    """A file found under the source, with what identifies its content."""

    path: str
    size: int
    sha256: str


@dataclass
class Plan:
    """What this run does with each file it found."""

    new: list[SourceFile] = field(default_factory=list)
    replace: list[SourceFile] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def to_ingest(self) -> list[SourceFile]:
        """Files whose lines this run reads."""
        return self.new + self.replace


def _accepts(path: Path, fmt: str) -> bool:
    name = path.name.lower()
    if name.startswith("."):
        return False
    if name.endswith(".gz"):
        name = name[:-3]
    stem_suffixes = [s for s in Path(name).suffixes if not s[1:].isdigit()]  # access.log.1 -> .log
    return any(name.endswith(s) or s in stem_suffixes for s in SUFFIXES[fmt])


@dataclass
class Listing:
    """What `list_files` found: files to consider, files ignored for their extension, and notes to report."""

    found: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def list_files(source: Path, fmt: str, exclude: Path | None = None) -> Listing:
    """Files to consider under `source` (a file, or a directory searched recursively), by real path.

    Anything under `exclude` (the lake, when it lives inside the source directory) is left out. A
    broken link is kept (as the link) so that it is reported as unreadable, not silently dropped.
    """
    if not source.exists() and not source.is_symlink():
        raise SourceError(f"source path does not exist: {source}")
    if not source.is_dir():
        return Listing([_real(source)])
    listing = Listing()
    fence = exclude.resolve() if exclude is not None else None
    visited: dict[tuple[int, int], Path] = {}
    listed: set[Path] = set()

    def walk(directory: Path) -> None:
        try:
            info = directory.stat()
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            listing.notes.append(f"directory unreadable, skipped: {directory} ({exc.strerror})")
            return
        seen = visited.setdefault((info.st_dev, info.st_ino), directory)
        if seen != directory:
            listing.notes.append(
                f"{directory} leads back to {seen} (a symbolic link loop or a second link): walked once"
            )
            return
        for entry in entries:
            path = Path(entry.path).absolute()
            real = path.resolve()
            if fence is not None and real.is_relative_to(fence):
                continue
            if entry.is_dir():  # follows links
                walk(path)
            elif entry.is_symlink() and not path.exists():
                listing.found.append(path)  # broken: reported by plan() as unreadable
            elif not entry.is_file():
                listing.notes.append(f"not a regular file, skipped: {path}")
            elif not _accepts(path, fmt):
                listing.skipped.append(str(path))
            elif real not in listed:  # the same file through a second link is listed once
                listed.add(real)
                listing.found.append(real)

    walk(source.absolute())
    listing.found.sort()
    listing.skipped.sort()
    return listing


def _real(path: Path) -> Path:
    """The path with symbolic links resolved; a broken link stays as given (it is reported as unreadable)."""
    return path.resolve() if path.exists() else path.absolute()


def fingerprint(path: Path) -> SourceFile:
    """Size and SHA-256 of a file; raises OSError when it cannot be read."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return SourceFile(str(path), size, digest.hexdigest())


def plan(files: list[Path], ingested: dict[str, str], *, reingest: bool) -> Plan:
    """Sort files by what to do with them, given path -> sha256 of what is already ingested.

    With `reingest`, every file already ingested is replaced, changed or not.
    """
    result = Plan()
    known_content = set(ingested.values())
    for path in files:
        try:
            found = fingerprint(path)
        except OSError as exc:
            why = "broken symbolic link" if path.is_symlink() and not path.exists() else exc.strerror
            result.unreadable.append((str(path), why or type(exc).__name__))
            continue
        previous = ingested.get(found.path)
        if previous is not None and reingest:
            result.replace.append(found)
        elif previous == found.sha256 or (previous is None and found.size and found.sha256 in known_content):
            result.unchanged.append(found.path)
        elif previous is None:
            result.new.append(found)
        else:
            result.changed.append(found.path)
    return result
