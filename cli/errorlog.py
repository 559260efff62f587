"""Keeps an error a person can fix to one line on stderr, with its traceback kept in a file.

Prefect logs a failed task or flow run at ERROR level with the traceback on the console, above the
CLI's own one-line message, amid its INFO progress lines. While a command runs, the console shows
Prefect's warnings only (the command prints its own summary), and error records are held back;
if the command then ends in a user error they go, with the full traceback, to a file under
`$XDG_CACHE_HOME/enumwatch/errors` (default `~/.cache/enumwatch/errors`) whose path the one line
names. Any other ending (success, or a crash that is not the user's to fix) prints them after all,
so nothing Prefect says about a real failure is lost. The records still reach Prefect's API (the
UI of a Prefect server) unchanged: only the console is quieted. `--verbose` shows everything as it
happens, and the traceback of a user error too.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

KEEP_FILES = 20  # error logs kept; older ones are removed when a new one is written


class _Hold(logging.Filter):
    """Keeps ERROR records of Prefect's loggers off the console handler it is attached to, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.name.startswith("prefect"):
            self.records.append(record)
            return False
        return True


class HeldErrors:
    """What Prefect logged at ERROR during the command, for the error file or for the console."""

    def __init__(self, hold: _Hold | None) -> None:
        self._hold = hold

    @property
    def records(self) -> list[logging.LogRecord]:
        return self._hold.records if self._hold else []

    def discard(self) -> None:
        """Forget the held records: they were written to the error file."""
        if self._hold:
            self._hold.records.clear()


@contextmanager
def hold_prefect_errors(enabled: bool) -> Iterator[HeldErrors]:
    """Console at WARNING, Prefect's ERROR records held for the duration; print what was not discarded at the end."""
    if not enabled:
        yield HeldErrors(None)
        return
    from prefect.logging.configuration import ensure_logging_setup  # Prefect's console handler must exist

    ensure_logging_setup()
    handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"]
    hold = _Hold()
    for handler in handlers:
        handler.addFilter(hold)
        # Left at WARNING when the command returns: the temporary server's "Stopping" line comes at exit.
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield HeldErrors(hold)
    finally:
        for handler in handlers:
            handler.removeFilter(hold)
        for record in hold.records:  # not a user error: show what Prefect said, as it would have
            for handler in handlers:
                handler.handle(record)


def error_dir() -> Path:
    """Where error files go: $XDG_CACHE_HOME/enumwatch/errors, else ~/.cache/enumwatch/errors."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "enumwatch" / "errors"


def write_error_file(command: str, exc: BaseException, records: list[logging.LogRecord]) -> Path | None:
    """The held Prefect records and the traceback of `exc` in a new file; None when it cannot be written."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s - %(message)s")
    text = "".join(formatter.format(r) + "\n" for r in records)
    text += "\n" + "".join(traceback.format_exception(exc))
    folder = error_dir()
    path = folder / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S.%fZ}-{command}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        for old in sorted(folder.glob("*.log"))[:-KEEP_FILES]:
            old.unlink(missing_ok=True)
    except OSError:
        return None  # the one line still says what is wrong; only the details are not kept
    return path
