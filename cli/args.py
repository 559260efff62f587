"""What every role's commands share: settings from flags, absolute paths, the source check."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.discovery import SourceError
from core.errors import UserError
from core.lake import Lake
from core.settings import Settings, load_settings


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from --config (or ENUMWATCH_CONFIG and the defaults) with --lake applied."""
    settings = load_settings(args.config)
    return settings.with_overrides(lake=Path(args.lake) if getattr(args, "lake", None) else None)


def absolute(path) -> str | None:
    """`path` made absolute as a string (flows run with another working directory), or None."""
    return str(Path(path).absolute()) if path else None


def require_source(source: Path) -> None:
    """Checked before the flow starts, so a typo ends in one line, not Prefect's task tracebacks."""
    if not source.exists() and not source.is_symlink():
        raise SourceError(f"source path does not exist: {source}")


def existing_lake(settings: Settings) -> Lake:
    """The configured lake, or a one-line error when nothing was ingested there yet."""
    lake = Lake(settings.lake)
    if not lake.root.exists():
        raise UserError(f"no lake at {lake.root} (run 'enumwatch ingest' first or pass --lake)")
    return lake
