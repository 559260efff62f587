"""Finds source files and decides, against the ingest manifest, which of them this run ingests.

A file is identified by its absolute path and its content by SHA-256: the same content again is a
no-op, changed content is refused unless --reingest, and files that cannot be read are reported and
skipped while the others go on.
"""

from __future__ import annotations

import hashlib
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


def list_files(source: Path, fmt: str, exclude: Path | None = None) -> tuple[list[Path], list[str]]:
    """Files to consider under `source` (a file, or a directory searched recursively) and those skipped.

    Anything under `exclude` (the lake, when it lives inside the source directory) is left out.
    """
    if not source.exists() and not source.is_symlink():
        raise SourceError(f"source path does not exist: {source}")
    if not source.is_dir():
        return [source.absolute()], []
    found, skipped = [], []
    for path in sorted(source.rglob("*")):
        if path.is_dir() or (exclude is not None and path.absolute().is_relative_to(exclude)):
            continue
        (found if _accepts(path, fmt) else skipped).append(path.absolute())
    return found, [str(p) for p in skipped]


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
            result.unreadable.append((str(path), exc.strerror or type(exc).__name__))
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
