"""Retry policy for the flows' I/O tasks: transient filesystem and network errors, with backoff.

Only tasks that read, or write to their own run's staging directory (Spark overwrites it), may
retry: running them again gives the same result. Pure checks are not retried (they would fail the
same way), nor is publishing (a publish cut short is finished by `Lake.recover`; re-running it would
find its staged files already moved). Errors a person must fix (a missing source, a bad CSV, a
changed file) are never retried.
"""

from __future__ import annotations

from typing import Any

from core.lake import storage_failure

# Java exceptions that Spark wraps when storage hiccups; FileNotFoundException is deliberately absent.
_TRANSIENT_JAVA = ("java.io.IOException", "java.net.SocketTimeoutException", "java.net.ConnectException")
# OSErrors that no amount of waiting fixes.
_PERMANENT_OS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth another try after a pause: I/O and network failures, not user errors or a full disk."""
    if storage_failure(exc):  # a full or read-only disk waits for a person, not for a retry
        return False
    if isinstance(exc, OSError):
        return not isinstance(exc, _PERMANENT_OS)
    if type(exc).__name__ == "Py4JJavaError" or type(exc).__module__.startswith("pyspark.errors"):
        text = str(exc)
        return any(name in text for name in _TRANSIENT_JAVA)
    return False


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: retry only when the failed state carries a transient error."""
    exc = getattr(state.data, "result", state.data)  # the exception, or a result record holding it
    return isinstance(exc, BaseException) and is_transient(exc)


# Three more tries, 5 s, 30 s and 2 min later (each +-20%): long enough for an NFS server or an
# object store to come back, short enough that a scheduled run still ends before the next one starts.
IO_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [5, 30, 120],
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": retry_transient,
}
