"""Reads source files into one row per physical line, with exact line numbers, on the executors.

Spark's text source cannot give line numbers, stops a whole job on a truncated gzip member and
silently replaces bad UTF-8. This reader runs inside `mapInArrow` on the executors, one file at a time
in streaming chunks, so it keeps the line numbers, keeps every line that was readable before a gzip
break (then emits one `truncated_gzip` marker row), leaves the bytes untouched for Spark to check, and
cuts lines over the limit while recording their true length.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from schemas import LINES

_CHUNK = 4 << 20
_BATCH_ROWS = 65536
_GZIP_MAGIC = b"\x1f\x8b"


def _arrow_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("source_file", pa.string(), False),
            pa.field("line_no", pa.int64(), False),
            pa.field("line", pa.binary()),
            pa.field("line_bytes", pa.int64(), False),
            pa.field("read_error", pa.string()),
        ]
    )


class _Batcher:
    """Accumulates lines of one file and flushes them as Arrow record batches."""

    def __init__(self, path: str, max_line_bytes: int) -> None:
        self.path = path
        self.max = max_line_bytes
        self.next_no = 1
        self.lines: list[bytes] = []
        self.sizes: list[int] = []
        self.errors: list[str | None] = []

    def add(self, line: bytes, error: str | None = None) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        size = len(line)
        self.lines.append(line if size <= self.max else line[: self.max + 1])
        self.sizes.append(size)
        self.errors.append(error)

    def full(self) -> bool:
        return len(self.lines) >= _BATCH_ROWS

    def flush(self) -> pa.RecordBatch | None:
        n = len(self.lines)
        if n == 0:
            return None
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array([self.path] * n, pa.string()),
                pa.array(range(self.next_no, self.next_no + n), pa.int64()),
                pa.array(self.lines, pa.binary()),
                pa.array(self.sizes, pa.int64()),
                pa.array(self.errors, pa.string()),
            ],
            schema=_arrow_schema(),
        )
        self.next_no += n
        self.lines, self.sizes, self.errors = [], [], []
        return batch


class _GzipBreak(Exception):
    """The compressed stream ended early or is corrupt; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _gunzip(raw) -> Iterator[bytes]:
    """Decompress every gzip member, yielding all bytes decoded before any break."""
    data = raw.read(_CHUNK)
    while data:
        inflater = zlib.decompressobj(wbits=31)
        while True:
            try:
                out = inflater.decompress(data)
            except zlib.error as exc:
                raise _GzipBreak("corrupt_gzip") from exc
            if out:
                yield out
            if inflater.eof:
                data = inflater.unused_data or raw.read(_CHUNK)
                break
            data = raw.read(_CHUNK)
            if not data:
                raise _GzipBreak("truncated_gzip")


def _chunks(path: str) -> Iterator[bytes]:
    """The file's (decompressed) bytes in chunks; gzip is recognised by its magic bytes."""
    with open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head == _GZIP_MAGIC:
            yield from _gunzip(raw)
        else:
            while chunk := raw.read(_CHUNK):
                yield chunk


def read_file_lines(path: str, max_line_bytes: int) -> Iterator[pa.RecordBatch]:
    """Yield the lines of one file as record batches; a break or open failure becomes a marker row."""
    out = _Batcher(path, max_line_bytes)
    tail = b""
    try:
        for chunk in _chunks(path):
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            for line in parts:
                out.add(line)
                if out.full():
                    yield out.flush()  # type: ignore[misc]
    except _GzipBreak as brk:
        # Everything decoded before the break is kept; the unterminated rest goes into the marker.
        out.add(tail, brk.reason)
        tail = b""
    except OSError as exc:
        out.add(f"{type(exc).__name__}: {exc.strerror or exc}".encode(), "unreadable")
        tail = b""
    if tail:
        out.add(tail)
    batch = out.flush()
    if batch is not None:
        yield batch


def read_lines(spark: SparkSession, files: list[str], max_line_bytes: int) -> DataFrame:
    """One row per physical line of `files` (schema `schemas.LINES`), read on the executors."""
    slices = max(1, min(len(files), spark.sparkContext.defaultParallelism * 4))
    paths = spark.createDataFrame([(f,) for f in files], "path string").repartition(slices)

    def _map(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for path in batch.column(0).to_pylist():
                yield from read_file_lines(path, max_line_bytes)

    return paths.mapInArrow(_map, LINES.spark_schema())
