"""The ingest job (`jobs.ingest.stage`): staged requests and quarantine plus per-file counts, real logs included."""

from __future__ import annotations

import datetime as dt
import gzip

import pyarrow.dataset as ds
import pytest
from conftest import APACHE_SAMPLE, TEST_KEY
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from core.pseudonym import keyed_hash
from jobs.ingest import IngestJob, stage
from schemas import QUARANTINE, REQUESTS

pytestmark = pytest.mark.spark

UTC = dt.timezone.utc
KEY = TEST_KEY.encode()


def _job(settings, fmt: str) -> IngestJob:
    return IngestJob(
        run_id="ingest-test",
        fmt=fmt,
        key=KEY,
        lookup=settings.lookup,
        max_line_bytes=settings.max_line_bytes,
        min_event_time=settings.min_event_time,
        max_event_time=dt.datetime(2030, 1, 1, tzinfo=UTC),
        ingest_date=dt.date(2026, 11, 27),
    )


def _staged(spark, path, table):
    return spark.read.schema(table.spark_schema()).parquet(str(path))


def test_stage_writes_requests_quarantine_and_one_count_record_per_file(spark, settings, tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(
        b'{"ts":"2026-11-01T10:00:00Z","client_ip":"1.2.3.4","path":"/api/v1/healthkit/lookup?id=11010519491231002X","status":200}\n'
        b"\n"
        b'{"ts":"2026-11-02T10:00:00Z","client_ip":"1.2.3.4","path":"/x","status":"oops"}\n'
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    counts = stage(spark, [str(a), str(empty)], _job(settings, "jsonl"), [], tmp_path / "staging")
    assert sorted(counts, key=lambda c: c["source_file"]) == [
        dict(source_file=str(a), lines_read=3, lines_parsed=1, lines_quarantined=1, lines_blank=1, read_error=None),
        dict(source_file=str(empty), lines_read=0, lines_parsed=0, lines_quarantined=0, lines_blank=0, read_error=None),
    ]
    requests = _staged(spark, tmp_path / "staging" / "requests", REQUESTS).select(
        "source_file", "line_no", "event_date", "status", "id_hash", "ingest_run_id"
    )
    assertDataFrameEqual(
        requests,
        spark.createDataFrame(
            [(str(a), 1, dt.date(2026, 11, 1), 200, keyed_hash(KEY, "id", "11010519491231002X"), "ingest-test")],
            "source_file string, line_no bigint, event_date date, status int, id_hash string, ingest_run_id string",
        ),
    )
    quarantine = _staged(spark, tmp_path / "staging" / "quarantine", QUARANTINE).select(
        "source_file", "line_no", "reason", "ingest_date"
    )
    assertDataFrameEqual(
        quarantine,
        spark.createDataFrame(
            [(str(a), 3, "bad_status", dt.date(2026, 11, 27))],
            "source_file string, line_no bigint, reason string, ingest_date date",
        ),
    )


@pytest.fixture(scope="module")
def apache(spark, tmp_path_factory):
    """The real 10,000-line Apache combined log (gzip, from tests/data), staged once."""
    from core.settings import load_settings

    settings = load_settings(env={"ENUMWATCH_PSEUDONYM_KEY": TEST_KEY})
    staging = tmp_path_factory.mktemp("apache") / "staging"
    counts = stage(spark, [str(APACHE_SAMPLE)], _job(settings, "combined"), [], staging)
    return {"counts": counts, "staging": staging}


def test_stage_of_the_real_apache_log_accounts_for_every_line_and_parses_999_per_mille(apache):
    (count,) = apache["counts"]
    assert count["lines_read"] == 10_000 == sum(1 for _ in gzip.open(APACHE_SAMPLE))
    assert count["lines_read"] == count["lines_parsed"] + count["lines_quarantined"] + count["lines_blank"]
    assert count["lines_parsed"] >= 9_990
    requests = ds.dataset(apache["staging"] / "requests", partitioning="hive").count_rows()
    quarantine = ds.dataset(apache["staging"] / "quarantine", partitioning="hive").count_rows()
    assert (requests, quarantine) == (count["lines_parsed"], count["lines_quarantined"])


def test_stage_of_the_real_apache_log_parses_a_known_line_exactly(spark, apache):
    # Line 1: 83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/.../kibana-search.png HTTP/1.1" 200 203023 ...
    first = (
        _staged(spark, apache["staging"] / "requests", REQUESTS)
        .where(F.col("line_no") == 1)
        .select(
            "event_time",
            "event_date",
            "client_ip",
            "method",
            "path",
            "query_redacted",
            "status",
            "bytes_sent",
            "is_lookup",
        )
    )
    expected = spark.createDataFrame(
        [
            (
                dt.datetime(2015, 5, 17, 10, 5, 3, tzinfo=UTC),
                dt.date(2015, 5, 17),
                "83.149.9.216",
                "GET",
                "/presentations/logstash-monitorama-2013/images/kibana-search.png",
                None,
                200,
                203023,
                False,
            )
        ],
        "event_time timestamp, event_date date, client_ip string, method string, path string, "
        "query_redacted string, status int, bytes_sent bigint, is_lookup boolean",
    )
    assertDataFrameEqual(first, expected)


def test_stage_of_the_real_apache_log_quarantines_only_the_line_cut_short_in_the_sample(spark, apache):
    # Line 8899 of the sample ends inside its quoted user agent (the file itself is cut there).
    quarantine = _staged(spark, apache["staging"] / "quarantine", QUARANTINE).select("line_no", "reason")
    assertDataFrameEqual(
        quarantine, spark.createDataFrame([(8899, "combined_mismatch")], "line_no bigint, reason string")
    )
