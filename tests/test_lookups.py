"""requests -> lookups: which rows are lookups, whose they are, their /24 and whether data came back."""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.lookups import ip_24, to_lookups
from schemas import LOOKUPS, REQUESTS
from schemas.table import spark_type

H1 = "a" * 64
H2 = "b" * 64
T0 = datetime(2026, 11, 1, 9, 41, 7)


def requests_frame(spark, ddl: str, rows: list[tuple]):
    """Requests rows from a few columns; every other `requests` column is null (or the row's defaults)."""
    df = spark.createDataFrame(rows, ddl)
    defaults = {
        "event_time": F.lit(T0),
        "path": F.lit("/api/v1/healthkit/lookup"),
        "is_lookup": F.lit(True),
        "source_file": F.lit("/logs/a.jsonl"),
        "ingest_run_id": F.lit("ingest-1"),
    }
    missing = {
        c.name: defaults.get(c.name, F.lit(None)).cast(spark_type(c.type))
        for c in REQUESTS.columns
        if c.name not in df.columns
    }
    return df.withColumns(missing).withColumn("event_date", F.to_date("event_time")).transform(REQUESTS.conform)


@pytest.mark.spark
def test_to_lookups_keys_by_client_id_then_device_id_then_ip(spark):
    requests = requests_frame(
        spark,
        "line_no bigint, client_id string, device_id string, client_ip string, status int, id_hash string",
        [
            (1, "u1", "dev1", "203.0.113.7", 200, H1),
            (2, None, "dev1", "203.0.113.7", 200, H1),
            (3, None, None, "203.0.113.7", 200, H1),
            (4, "u2", None, "198.51.100.1", 200, H1),
        ],
    )
    assertDataFrameEqual(
        to_lookups(requests).select("line_no", "entity_type", "entity_value"),
        spark.createDataFrame(
            [(1, "client_id", "u1"), (2, "device_id", "dev1"), (3, "client_ip", "203.0.113.7"), (4, "client_id", "u2")],
            "line_no bigint, entity_type string, entity_value string",
        ),
    )


@pytest.mark.spark
def test_to_lookups_marks_hits_and_misses_by_status(spark):
    requests = requests_frame(
        spark,
        "line_no bigint, client_ip string, status int, id_hash string",
        [
            (1, "203.0.113.7", 200, H1),
            (2, "203.0.113.7", 404, H1),
            (3, "203.0.113.7", 400, H1),
            (4, "203.0.113.7", 500, H1),
        ],
    )
    assertDataFrameEqual(
        to_lookups(requests).select("line_no", "hit", "miss"),
        spark.createDataFrame(
            [(1, True, False), (2, False, True), (3, False, False), (4, False, False)],
            "line_no bigint, hit boolean, miss boolean",
        ),
    )


@pytest.mark.spark
def test_to_lookups_drops_non_lookups_and_lookups_without_a_value(spark):
    requests = requests_frame(
        spark,
        "line_no bigint, is_lookup boolean, client_ip string, status int, id_hash string, name_hash string",
        [
            (1, True, "203.0.113.7", 200, H1, None),
            (2, True, "203.0.113.7", 200, None, H2),
            (3, False, "203.0.113.7", 200, None, None),
            (4, True, "203.0.113.7", 400, None, None),
        ],
    )
    assert sorted(r["line_no"] for r in to_lookups(requests).collect()) == [1, 2]


@pytest.mark.spark
def test_to_lookups_has_the_lookups_columns_with_hour_and_date(spark):
    requests = requests_frame(
        spark,
        "line_no bigint, event_time timestamp, client_id string, client_ip string, status int, id_hash string",
        [(1, datetime(2026, 11, 2, 23, 59, 59), "u1", "203.0.113.7", 200, H1)],
    )
    out = to_lookups(requests)
    assert [(f.name, f.dataType) for f in out.schema] == [(f.name, f.dataType) for f in LOOKUPS.spark_schema()]
    assertDataFrameEqual(
        out.select("event_hour", "event_date", "ip_24"),
        spark.createDataFrame(
            [(datetime(2026, 11, 2, 23), datetime(2026, 11, 2).date(), "203.0.113.0/24")],
            "event_hour timestamp, event_date date, ip_24 string",
        ),
    )


@pytest.mark.spark
@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        pytest.param("203.0.113.7", "203.0.113.0/24", id="an IPv4 address keeps its first three octets"),
        pytest.param("10.0.0.255", "10.0.0.0/24", id="the last host of a /24"),
        pytest.param("2001:db8::1", None, id="IPv6 has no /24"),
        pytest.param("unknown", None, id="a logged placeholder is not an address"),
        pytest.param("203.0.113.7:443", None, id="an address with a port is not parsed as one"),
    ],
)
def test_ip_24_groups_ipv4_addresses_by_their_slash_24(spark, ip, expected):
    got = spark.createDataFrame([(ip,)], "ip string").select(ip_24(F.col("ip")).alias("net")).first()["net"]
    assert got == expected
