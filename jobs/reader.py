"""Reads source files into one row per physical line, with exact line numbers, on the executors.

Two readers give the same rows. The fast one is Spark's own text source, for gzip files: a gzip file
cannot be split, so with one file per partition (`one_file_per_partition`) a row's line number is its
position in the partition, which `monotonically_increasing_id` carries in its low 33 bits. It reads
the lines' bytes untouched and splits on "\n" only. But it stops the whole job on a truncated or
corrupt gzip member, so the ingest job falls back to the careful reader when it meets one
(`is_broken_file`).

The careful reader runs inside `mapInArrow` on the executors, one file at a time in streaming
chunks: it keeps every line that was readable before a gzip break (then emits one `truncated_gzip`
marker row), leaves the bytes untouched for Spark to check, and cuts lines over the limit while
recording their true length. It also reads plain files (which Spark would split) and paths Spark
would read as globs or URIs.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

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


# Absolute paths Spark reads literally: no glob characters, nothing it would percent-encode.
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._/+=@-]+$")
_ROW_BITS = 33  # monotonically_increasing_id: partition index above, row within the partition below
_FILE_PER_PARTITION = {"spark.sql.files.openCostInBytes": str(1 << 50)}


def spark_readable(path: str) -> bool:
    """Whether Spark's text source can read `path` with exact line numbers: gzip by name and content, a plain path."""
    if not (path.endswith(".gz") and _PLAIN_PATH.match(path)):
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError:
        return False


@contextmanager
def one_file_per_partition(spark: SparkSession) -> Iterator[None]:
    """While the body runs, Spark gives every file its own partition (an open cost no two files fit under)."""
    previous = {key: spark.conf.get(key, None) for key in _FILE_PER_PARTITION}
    for key, value in _FILE_PER_PARTITION.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def is_broken_file(exc: BaseException) -> bool:
    """Whether a failed Spark action met a file its text source could not read (a gzip break, a vanished file)."""
    return "FAILED_READ_FILE" in str(exc)


def _spark_text(spark: SparkSession, files: list[str], max_line_bytes: int) -> DataFrame:
    raw = F.col("value").cast("binary")
    size = F.octet_length(raw)
    has_cr = F.substring(raw, -1, 1) == F.lit(b"\r")
    length = F.when(has_cr, size - 1).otherwise(size)
    return (
        spark.read.option("lineSep", "\n")
        .text(files)
        .select(
            F.regexp_replace(F.col("_metadata.file_path"), "^file:", "").alias("source_file"),
            (
                F.monotonically_increasing_id()
                - F.shiftleft(F.spark_partition_id().cast("bigint"), _ROW_BITS)
                + F.lit(1)
            ).alias("line_no"),
            F.substring(raw, F.lit(1), F.least(length, F.lit(max_line_bytes + 1))).alias("line"),
            length.cast("bigint").alias("line_bytes"),
            F.lit(None).cast("string").alias("read_error"),
        )
    )


def read_lines(spark: SparkSession, files: list[str], max_line_bytes: int, *, fast: bool = True) -> DataFrame:
    """One row per physical line of `files` (schema `schemas.LINES`), read on the executors.

    With `fast`, the gzip files Spark can read go to its text source; run the actions inside
    `one_file_per_partition`, or their line numbers are wrong (the ingest job checks them).
    """
    quick = [f for f in files if spark_readable(f)] if fast else []
    chosen = set(quick)
    careful = [f for f in files if f not in chosen]
    frames = [_spark_text(spark, quick, max_line_bytes)] if quick else []
    if careful or not frames:
        frames.append(_careful(spark, careful, max_line_bytes))
    out = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    return out.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in LINES.spark_schema().fields])


def _careful(spark: SparkSession, files: list[str], max_line_bytes: int) -> DataFrame:
    slices = max(1, min(len(files), spark.sparkContext.defaultParallelism * 4))
    paths = spark.createDataFrame([(f,) for f in files], "path string").repartition(slices)

    def _map(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for path in batch.column(0).to_pylist():
                yield from read_file_lines(path, max_line_bytes)

    return paths.mapInArrow(_map, LINES.spark_schema())
