"""The line reader: exact line numbers, gzip breaks kept and counted, long lines cut, bytes untouched."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from pyspark.testing import assertDataFrameEqual

from jobs import reader
from jobs.ingest import IngestJob, stage
from jobs.reader import one_file_per_partition, read_file_lines, read_lines, spark_readable
from schemas import LINES

MAX = 64 * 1024


def _rows(path, max_line_bytes: int = MAX) -> list[dict]:
    batches = list(read_file_lines(str(path), max_line_bytes))
    if not batches:
        return []
    return pa.Table.from_batches(batches).to_pylist()


def _row(path, no: int, line: bytes, size: int | None = None, error: str | None = None) -> dict:
    return {
        "source_file": str(path),
        "line_no": no,
        "line": line,
        "line_bytes": len(line) if size is None else size,
        "read_error": error,
    }


def test_read_file_lines_numbers_every_physical_line_from_one_blank_lines_included(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a":1}\n\n   \n{"b":2}\n')
    assert _rows(path) == [
        _row(path, 1, b'{"a":1}'),
        _row(path, 2, b""),
        _row(path, 3, b"   "),
        _row(path, 4, b'{"b":2}'),
    ]


def test_read_file_lines_strips_crlf_and_keeps_a_last_line_without_newline(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"one\r\ntwo\r\nthree")
    assert _rows(path) == [_row(path, 1, b"one"), _row(path, 2, b"two"), _row(path, 3, b"three")]


def test_read_file_lines_leaves_non_utf8_bytes_untouched_for_spark_to_judge(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"ok\n\xff\xfe\x00junk\n")
    assert _rows(path)[1] == _row(path, 2, b"\xff\xfe\x00junk")


def test_read_file_lines_of_an_empty_file_yields_no_rows(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert _rows(path) == []


def test_read_file_lines_cuts_a_long_line_after_the_limit_and_records_its_true_length(tmp_path):
    path = tmp_path / "long.jsonl"
    long_line = b"x" * (MAX + 5000)
    path.write_bytes(b"short\n" + long_line + b"\nafter\n")
    rows = _rows(path)
    assert rows[1] == _row(path, 2, long_line[: MAX + 1], size=MAX + 5000)
    assert rows[2] == _row(path, 3, b"after")


def test_read_file_lines_keeps_a_line_of_exactly_the_limit_whole(tmp_path):
    path = tmp_path / "edge.jsonl"
    path.write_bytes(b"y" * MAX + b"\n")
    assert _rows(path) == [_row(path, 1, b"y" * MAX)]


@pytest.mark.parametrize("chunk", [1, 3, 7], ids=["byte-by-byte", "three-byte-chunks", "chunks-cut-mid-line"])
def test_read_file_lines_joins_lines_split_across_read_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"alpha\nbeta\r\ngamma\n")
    packed = tmp_path / "a.jsonl.gz"
    packed.write_bytes(gzip.compress(b"alpha\nbeta\r\ngamma\n"))
    for path in (plain, packed):
        assert [r["line"] for r in _rows(path)] == [b"alpha", b"beta", b"gamma"]


def test_read_file_lines_numbers_continue_across_record_batches(tmp_path):
    path = tmp_path / "many.jsonl"
    n = reader._BATCH_ROWS + 10
    path.write_bytes(b"".join(b"%d\n" % i for i in range(1, n + 1)))
    batches = list(read_file_lines(str(path), MAX))
    assert len(batches) == 2
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [r["line_no"] for r in rows] == list(range(1, n + 1))
    assert all(r["line"] == b"%d" % r["line_no"] for r in rows)


def test_read_file_lines_recognises_gzip_by_magic_bytes_whatever_the_name(tmp_path):
    path = tmp_path / "rotated.log"
    path.write_bytes(gzip.compress(b"first\nsecond\n"))
    assert _rows(path) == [_row(path, 1, b"first"), _row(path, 2, b"second")]


def test_read_file_lines_reads_every_member_of_a_multi_member_gzip(tmp_path):
    path = tmp_path / "cat.jsonl.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\n") + gzip.compress(b"three\n"))
    assert [r["line"] for r in _rows(path)] == [b"one", b"two", b"three"]


def test_read_file_lines_keeps_lines_before_a_gzip_truncation_and_adds_one_marker_row(tmp_path):
    data = b"".join(b'{"n":%d}\n' % i for i in range(2000))
    full = gzip.compress(data)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[: len(full) // 2])
    rows = _rows(path)
    kept, marker = rows[:-1], rows[-1]
    assert len(kept) > 0
    # The kept lines are exactly the first lines of the file, in order, complete.
    assert [r["line"] for r in kept] == data.split(b"\n")[: len(kept)]
    assert all(r["read_error"] is None for r in kept)
    assert marker["read_error"] == "truncated_gzip"
    assert marker["line_no"] == len(kept) + 1
    # The marker carries the unterminated rest, a prefix of the next line.
    assert data.split(b"\n")[len(kept)].startswith(marker["line"])


def test_read_file_lines_reports_corrupt_gzip_after_keeping_what_decoded(tmp_path):
    good = gzip.compress(b"one\ntwo\n")
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(good + b"\x1f\x8b\x08\x00garbage-that-is-not-deflate" * 4)
    rows = _rows(path)
    assert [r["line"] for r in rows[:2]] == [b"one", b"two"]
    assert rows[-1]["read_error"] == "corrupt_gzip"
    assert len(rows) == 3


def test_read_file_lines_turns_an_unreadable_file_into_one_marker_row(tmp_path):
    path = tmp_path / "x.jsonl"
    path.symlink_to(tmp_path / "gone.jsonl")
    rows = _rows(path)
    assert len(rows) == 1
    assert rows[0]["read_error"] == "unreadable"
    assert rows[0]["line_no"] == 1
    assert b"No such file" in rows[0]["line"]


@pytest.mark.spark
def test_read_lines_gives_one_row_per_physical_line_of_every_file(spark, tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(b"a1\n\na3\n")
    b = tmp_path / "b.jsonl.gz"
    b.write_bytes(gzip.compress(b"b1\r\n"))
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = read_lines(spark, [str(a), str(b), str(empty)], MAX)
    expected = spark.createDataFrame(
        [
            (str(a), 1, b"a1", 2, None),
            (str(a), 2, b"", 0, None),
            (str(a), 3, b"a3", 2, None),
            (str(b), 1, b"b1", 2, None),
        ],
        LINES.spark_schema(),
    )
    assertDataFrameEqual(result, expected)


def test_gzip_break_reason_names_match_quarantine_reasons():
    from jobs.parse import REASONS

    assert {"truncated_gzip", "corrupt_gzip", "unreadable"} <= set(REASONS)


_MESSY = (
    b'{"a":1}\r\n\n  \t\nlone\rcarriage return\n\xff\xfe not utf-8\n'
    + b"x" * 40
    + b"\r\n"  # longer than the test limit: cut after it, true length kept
    + "名字 ünïcode\n".encode()
    + b"last line without newline"
)


@pytest.mark.spark
def test_read_lines_spark_text_source_gives_the_careful_readers_rows_for_gzip_files(spark, tmp_path):
    one = tmp_path / "one.jsonl.gz"
    one.write_bytes(gzip.compress(_MESSY))
    two = tmp_path / "two.jsonl.gz"  # two gzip members, lines crossing nothing
    two.write_bytes(gzip.compress(b"m1\nm2\n") + gzip.compress(b"\nm4\n\n"))
    empty = tmp_path / "empty.jsonl.gz"
    empty.write_bytes(gzip.compress(b""))
    files = [str(one), str(two), str(empty)]
    assert all(spark_readable(f) for f in files)
    with one_file_per_partition(spark):
        fast = read_lines(spark, files, 32)
        careful = read_lines(spark, files, 32, fast=False)
        assert fast.count() == 13
        assertDataFrameEqual(fast, careful)


def test_spark_readable_leaves_plain_files_odd_paths_and_misnamed_gzip_to_the_careful_reader(tmp_path):
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"x\n")
    fake = tmp_path / "b.jsonl.gz"
    fake.write_bytes(b"not gzip\n")
    odd = tmp_path / "c [1].jsonl.gz"
    odd.write_bytes(gzip.compress(b"x\n"))
    good = tmp_path / "d.jsonl.gz"
    good.write_bytes(gzip.compress(b"x\n"))
    assert [spark_readable(str(p)) for p in (plain, fake, odd, good, tmp_path / "gone.gz")] == [
        False,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.spark
def test_stage_falls_back_to_the_careful_reader_when_spark_meets_a_truncated_gzip(spark, settings, tmp_path):
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(gzip.compress(b"junk\n" * 3))
    cut = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"".join(b"junk line %d\n" % i for i in range(20000)))
    cut.write_bytes(whole[: len(whole) // 2])
    now = datetime.now(timezone.utc)
    job = IngestJob("r1", "jsonl", b"k" * 32, settings.lookup, MAX, settings.min_event_time, now, now.date())
    counts = {c["source_file"]: c for c in stage(spark, [str(good), str(cut)], job, [], tmp_path / "staging")}
    assert counts[str(good)]["lines_read"] == 3 and counts[str(good)]["read_error"] is None
    assert counts[str(cut)]["read_error"] == "truncated_gzip"
    assert 0 < counts[str(cut)]["lines_read"] < 20000
