"""Retry policy: I/O tasks retry transient errors with backoff; user errors, checks and publishing never retry."""

from __future__ import annotations

import errno

import pytest
from prefect.states import Failed

from core.discovery import SourceError
from core.lake import LakeError
from pipelines import detect, ingest
from pipelines.retries import IO_RETRIES, is_transient, retry_transient


class Py4JJavaError(Exception):
    """Stands in for py4j's class of the same name: the policy looks at the class name and the text only."""


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OSError(errno.EIO, "Input/output error"), True),  # a disk or NFS hiccup
        (OSError(errno.ESTALE, "Stale file handle"), True),  # NFS server restarted
        (TimeoutError("timed out"), True),
        (ConnectionResetError("reset by peer"), True),
        (Py4JJavaError("An error occurred... Caused by: java.io.IOException: Connection reset"), True),
        (FileNotFoundError(errno.ENOENT, "No such file"), False),  # waiting will not create it
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (Py4JJavaError("Caused by: java.io.FileNotFoundException: /x"), False),
        (SourceError("refused: content changed"), False),  # the person running it must act
        (LakeError("another enumwatch run holds the lake lock"), False),
        (ValueError("bad"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_transient_retries_io_and_network_errors_only(exc, transient):
    assert is_transient(exc) is transient


def test_retry_condition_reads_the_exception_from_the_failed_state():
    assert retry_transient(None, None, Failed(data=OSError(errno.EIO, "EIO"))) is True
    assert retry_transient(None, None, Failed(data=SourceError("missing"))) is False
    assert retry_transient(None, None, Failed(data=None)) is False


def test_io_retries_back_off_over_about_two_and_a_half_minutes():
    assert IO_RETRIES["retries"] == len(IO_RETRIES["retry_delay_seconds"]) == 3
    assert IO_RETRIES["retry_delay_seconds"] == sorted(IO_RETRIES["retry_delay_seconds"])


@pytest.mark.parametrize(
    ("task", "retries"),
    [
        (ingest.discover, 3),
        (ingest.parse_files, 3),  # writes only its own staging dir, in overwrite mode
        (ingest.rewrite_replaced, 3),
        (ingest.validate_staged, 0),  # a pure check fails the same way twice
        (ingest.publish, 0),  # a second publish would find its staged files already moved
        (detect.plan_scope, 3),
        (detect.build_tables, 3),
        (detect.validate_tables, 0),
        (detect.publish_tables, 0),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_only_io_tasks_retry(task, retries):
    assert task.retries == retries
    if retries:
        assert task.retry_condition_fn is retry_transient
