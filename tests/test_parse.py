"""Parsing: every line gets exactly one outcome (request, blank or a quarantine reason), in both formats."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.parse import REASONS, classify
from schemas import LINES

pytestmark = pytest.mark.spark

MAX = 64 * 1024
UTC = timezone.utc
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2030, 1, 1, tzinfo=UTC)
GOOD = {"ts": "2026-11-01T10:00:00Z", "client_ip": "1.2.3.4", "path": "/api/v1/healthkit/me", "status": 200}


def _json(**changes) -> bytes:
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not _ABSENT}, ensure_ascii=False).encode()


_ABSENT = object()

# (id, the line's bytes, its true length when cut by the reader or None, read_error, expected reason)
JSONL_BAD = [
    ("truncated-json", b'{"ts":"2026-11-01T10:00:00Z","client_ip":"1.2', None, None, "invalid_json"),
    ("binary-junk", b"\x00\x01\x02\x1b[0m\x7f\x03junk", None, None, "invalid_json"),
    ("json-array-not-object", b'["2026-11-01T10:00:00Z","1.2.3.4","/x",200]', None, None, "not_an_object"),
    ("json-string-not-object", b'"just a string"', None, None, "not_an_object"),
    ("json-number-not-object", b"42", None, None, "not_an_object"),
    ("missing-ts", _json(ts=_ABSENT), None, None, "missing_field:ts"),
    ("missing-client-ip", _json(client_ip=_ABSENT), None, None, "missing_field:client_ip"),
    ("missing-path", _json(path=_ABSENT), None, None, "missing_field:path"),
    ("missing-status", _json(status=_ABSENT), None, None, "missing_field:status"),
    ("null-ts-counts-as-missing", _json(ts=None), None, None, "missing_field:ts"),
    ("empty-client-ip-counts-as-missing", _json(client_ip=" "), None, None, "missing_field:client_ip"),
    ("ts-in-words", _json(ts="yesterday"), None, None, "bad_timestamp"),
    ("ts-without-offset", _json(ts="2026-11-01T10:00:00"), None, None, "bad_timestamp"),
    ("ts-impossible-date", _json(ts="2026-11-31T25:61:00Z"), None, None, "bad_timestamp"),
    ("ts-epoch-seconds-not-ms", _json(ts=1762000000), None, None, "bad_timestamp"),
    ("status-word", _json(status="abc"), None, None, "bad_status"),
    ("status-fraction", _json(status=200.5), None, None, "bad_status"),
    ("status-below-100", _json(status=99), None, None, "bad_status"),
    ("status-above-599", _json(status=600), None, None, "bad_status"),
    (
        "non-utf8-bytes",
        b'{"ts":"2026-11-01T10:00:00Z","client_ip":"1.2.3.4","path":"/\xff\xfe","status":200}',
        None,
        None,
        "invalid_utf8",
    ),
    ("line-over-64-kib", b"{" + b"x" * MAX, MAX + 9000, None, "line_too_long"),
    ("ts-before-plausible-range", _json(ts="1999-12-31T23:59:59Z"), None, None, "implausible_timestamp"),
    ("ts-after-plausible-range", _json(ts="2031-01-01T00:00:00Z"), None, None, "implausible_timestamp"),
    ("gzip-break-marker", b'{"ts":"2026-11', None, "truncated_gzip", "truncated_gzip"),
    ("unreadable-marker", b"FileNotFoundError: No such file or directory", None, "unreadable", "unreadable"),
]


def _lines(spark, rows: list[tuple[bytes, int | None, str | None]], source: str = "/src/f.jsonl"):
    data = [
        (source, no, line, len(line) if size is None else size, error)
        for no, (line, size, error) in enumerate(rows, start=1)
    ]
    return spark.createDataFrame(data, LINES.spark_schema())


def _classify(lines, fmt: str = "jsonl"):
    return classify(lines, fmt, max_line_bytes=MAX, min_event_time=MIN_TIME, max_event_time=MAX_TIME)


@pytest.fixture(scope="module")
def bad_jsonl(spark) -> dict[int, dict]:
    """Every bad jsonl case classified in one Spark job, by line number."""
    lines = _lines(spark, [(line, size, error) for _, line, size, error, _ in JSONL_BAD])
    rows = _classify(lines).select("source_file", "line_no", "reason", "blank").collect()
    return {r.line_no: r.asDict() for r in rows}


@pytest.mark.parametrize(
    ("line_no", "expected"),
    [(i, case[4]) for i, case in enumerate(JSONL_BAD, start=1)],
    ids=[case[0] for case in JSONL_BAD],
)
def test_classify_jsonl_gives_each_bad_line_its_reason_with_file_and_line(bad_jsonl, line_no, expected):
    assert bad_jsonl[line_no] == {"source_file": "/src/f.jsonl", "line_no": line_no, "reason": expected, "blank": False}
    assert expected in REASONS


def test_classify_jsonl_parses_every_timestamp_encoding_of_the_contract_to_utc(spark):
    lines = _lines(
        spark,
        [
            (_json(ts="2026-11-01T10:00:00Z"), None, None),
            (_json(ts="2026-11-01T18:00:00.250+08:00"), None, None),
            (_json(ts=1761991200000), None, None),
            (_json(ts="1761991200000"), None, None),
            (_json(ts="2026-11-01 10:00:00z"), None, None),
            (_json(ts="2026-11-01t10:00:00Z"), None, None),
        ],
    )
    result = _classify(lines).select("line_no", "event_time", "reason")
    expected = spark.createDataFrame(
        [
            (1, datetime(2026, 11, 1, 10, 0, tzinfo=UTC), None),
            (2, datetime(2026, 11, 1, 10, 0, 0, 250000, tzinfo=UTC), None),
            (3, datetime(2025, 11, 1, 10, 0, tzinfo=UTC), None),
            (4, datetime(2025, 11, 1, 10, 0, tzinfo=UTC), None),
            (5, datetime(2026, 11, 1, 10, 0, tzinfo=UTC), None),  # RFC 3339 allows a space and a lower-case z
            (6, datetime(2026, 11, 1, 10, 0, tzinfo=UTC), None),  # ... and a lower-case t
        ],
        "line_no bigint, event_time timestamp, reason string",
    )
    assertDataFrameEqual(result, expected)


def test_classify_jsonl_takes_optional_fields_and_tolerates_unknown_ones(spark):
    line = _json(
        request_id="r-1",
        client_id="u42",
        device_id="d-9",
        user_agent="okhttp/4.9.3",
        method="GET",
        bytes_sent=1655,
        latency_ms=103.5,
        upstream_addr="10.0.0.1:8080",
        nested={"anything": [1, 2]},
        status="404",
    )
    result = _classify(_lines(spark, [(line, None, None)])).select(
        "client_ip",
        "uri",
        "status",
        "request_id",
        "client_id",
        "device_id",
        "user_agent",
        "method",
        "bytes_sent",
        "latency_ms",
        "reason",
        "blank",
    )
    expected = spark.createDataFrame(
        [
            (
                "1.2.3.4",
                "/api/v1/healthkit/me",
                404,
                "r-1",
                "u42",
                "d-9",
                "okhttp/4.9.3",
                "GET",
                1655,
                103.5,
                None,
                False,
            )
        ],
        "client_ip string, uri string, status int, request_id string, client_id string, device_id string, "
        "user_agent string, method string, bytes_sent bigint, latency_ms double, reason string, blank boolean",
    )
    assertDataFrameEqual(result, expected)


def test_classify_jsonl_reads_nginx_escape_json_output_where_numbers_are_strings(spark):
    # log_format ... escape=json '{"ts":"$time_iso8601","client_ip":"$remote_addr","path":"$request_uri",...}'
    line = (
        b'{"ts":"2026-11-01T18:00:00+08:00","client_ip":"203.0.113.7","method":"GET",'
        b'"path":"/api/v1/healthkit/lookup?id=110105194912310021&name=%E5%91%A8","status":"200",'
        b'"bytes_sent":"612","latency_ms":"0.004","user_agent":"curl/8.5.0","request_id":"",'
        b'"http_referer":"","upstream_response_time":"0.003"}'
    )
    result = _classify(_lines(spark, [(line, None, None)])).select(
        "event_time", "client_ip", "uri", "status", "bytes_sent", "reason"
    )
    expected = spark.createDataFrame(
        [
            (
                datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
                "203.0.113.7",
                "/api/v1/healthkit/lookup?id=110105194912310021&name=%E5%91%A8",
                200,
                612,
                None,
            )
        ],
        "event_time timestamp, client_ip string, uri string, status int, bytes_sent bigint, reason string",
    )
    assertDataFrameEqual(result, expected)


@pytest.mark.parametrize("fmt", ["jsonl", "combined"], ids=["jsonl-format", "combined-format"])
def test_classify_counts_whitespace_only_lines_as_blank_not_quarantine(spark, fmt):
    # Editors and log shippers leave tab-only lines too; they are blank, not invalid JSON.
    lines = _lines(spark, [(b"", None, None), (b"   ", None, None), (b"\t", None, None), (b" \t ", None, None)])
    result = _classify(lines, fmt).select("line_no", "reason", "blank")
    expected = spark.createDataFrame(
        [(n, None, True) for n in range(1, 5)], "line_no bigint, reason string, blank boolean"
    )
    assertDataFrameEqual(result, expected)


def test_classify_rejects_an_unknown_format(spark):
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        _classify(_lines(spark, [(b"x", None, None)]), "csv")


APACHE_LINE = (
    b'83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/'
    b'kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" '
    b'"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) '
    b'Chrome/32.0.1700.77 Safari/537.36"'
)
NGINX_LINE = (
    b'198.51.100.4 - alice [01/Nov/2026:18:00:00 +0800] "get /api/v1/healthkit/lookup?id=1&name=%E5%91%A8 HTTP/2.0" '
    b'404 0 "-" "curl/8.5.0"'
)
COMMON_LINE = b'10.0.0.1 - - [01/Nov/2026:10:00:00 +0000] "POST /login HTTP/1.0" 302 -'


def test_classify_combined_parses_apache_nginx_and_common_log_lines(spark):
    lines = _lines(spark, [(APACHE_LINE, None, None), (NGINX_LINE, None, None), (COMMON_LINE, None, None)])
    result = _classify(lines, "combined").select(
        "line_no",
        "event_time",
        "client_ip",
        "client_id",
        "method",
        "uri",
        "status",
        "bytes_sent",
        "user_agent",
        "reason",
    )
    expected = spark.createDataFrame(
        [
            (
                1,
                datetime(2015, 5, 17, 10, 5, 3, tzinfo=UTC),
                "83.149.9.216",
                None,
                "GET",
                "/presentations/logstash-monitorama-2013/images/kibana-search.png",
                200,
                203023,
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/32.0.1700.77 Safari/537.36",
                None,
            ),
            (
                2,
                datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
                "198.51.100.4",
                "alice",
                "GET",
                "/api/v1/healthkit/lookup?id=1&name=%E5%91%A8",
                404,
                0,
                "curl/8.5.0",
                None,
            ),
            (3, datetime(2026, 11, 1, 10, 0, tzinfo=UTC), "10.0.0.1", None, "POST", "/login", 302, None, None, None),
        ],
        "line_no bigint, event_time timestamp, client_ip string, client_id string, method string, uri string, "
        "status int, bytes_sent bigint, user_agent string, reason string",
    )
    assertDataFrameEqual(result, expected)


COMBINED_BAD = [
    ("not-a-log-line", b"this is not an access log line", "combined_mismatch"),
    ("cut-before-user-agent-ends", APACHE_LINE[:-20], "combined_mismatch"),
    ("dash-request-of-a-timeout", b'10.0.0.1 - - [01/Nov/2026:10:00:00 +0000] "-" 408 0 "-" "-"', "bad_request_line"),
    ("time-not-in-clf-format", b'10.0.0.1 - - [2026-11-01 10:00:00] "GET / HTTP/1.1" 200 1 "-" "-"', "bad_timestamp"),
    ("status-dash", b'10.0.0.1 - - [01/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" - 1 "-" "-"', "bad_status"),
    (
        "non-utf8-in-path",
        b'10.0.0.1 - - [01/Nov/2026:10:00:00 +0000] "GET /\xff HTTP/1.1" 200 1 "-" "-"',
        "invalid_utf8",
    ),
]


@pytest.fixture(scope="module")
def bad_combined(spark) -> dict[int, dict]:
    """Every bad combined case classified in one Spark job, by line number."""
    lines = _lines(spark, [(line, None, None) for _, line, _ in COMBINED_BAD], "/src/access.log")
    rows = _classify(lines, "combined").select("source_file", "line_no", "reason", "blank").collect()
    return {r.line_no: r.asDict() for r in rows}


@pytest.mark.parametrize(
    ("line_no", "expected"),
    [(i, case[2]) for i, case in enumerate(COMBINED_BAD, start=1)],
    ids=[case[0] for case in COMBINED_BAD],
)
def test_classify_combined_gives_each_bad_line_its_reason_with_file_and_line(bad_combined, line_no, expected):
    assert bad_combined[line_no] == {
        "source_file": "/src/access.log",
        "line_no": line_no,
        "reason": expected,
        "blank": False,
    }
    assert expected in REASONS


def test_classify_keeps_every_line_exactly_once_with_one_outcome(spark):
    cases = [(line, size, error) for _, line, size, error, _ in JSONL_BAD] + [(_json(), None, None), (b"", None, None)]
    result = _classify(_lines(spark, cases))
    outcomes = result.select(
        F.count(F.lit(1)).alias("lines"),
        F.count_if(F.col("reason").isNull() & ~F.col("blank")).alias("parsed"),
        F.count_if(F.col("reason").isNotNull()).alias("quarantined"),
        F.count_if(F.col("blank")).alias("blank"),
        F.count_if(F.col("reason").isNotNull() & F.col("blank")).alias("both"),
    ).first()
    assert outcomes.asDict() == {"lines": len(cases), "parsed": 1, "quarantined": len(JSONL_BAD), "blank": 1, "both": 0}
