"""Quality gate: suites load, and `validate` turns a GX run into one dq_results-shaped verdict per expectation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from jobs import quality
from jobs.quality import Verdict, load_suite, validate
from schemas import DQ_RESULTS, FLAGGED_CLIENTS, QUARANTINE, REQUESTS, TARGETS
from schemas.table import spark_type

UTC = dt.timezone.utc
H = "ab" * 32  # a well-formed 64-hex hash


def test_load_suite_names_the_file_and_line_of_broken_json(tmp_path, monkeypatch):
    (tmp_path / "broken.json").write_text('{\n  "name": "broken",\n  "expectations": [,]\n}\n')
    monkeypatch.setattr(quality, "EXPECTATIONS_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"broken\.json:3:"):
        load_suite("broken")


def test_verdict_fields_are_exactly_the_dq_results_columns():
    assert list(Verdict.__dataclass_fields__) == DQ_RESULTS.names


def _quarantine_rows(lines: list[str]) -> list[tuple]:
    return [
        ("invalid_json", "line is not valid JSON", text, len(text), "/src/a.jsonl", n, "run-q", dt.date(2026, 11, 1))
        for n, text in enumerate(lines, start=1)
    ]


def _request_row(**changes) -> dict:
    row = dict(
        event_time=dt.datetime(2026, 11, 1, 10, tzinfo=UTC),
        client_ip="203.0.113.7",
        client_id="u42",
        device_id=None,
        request_id=None,
        method="GET",
        path="/api/v1/healthkit/lookup",
        query_redacted="id=~",
        status=200,
        bytes_sent=10,
        latency_ms=1.0,
        user_agent="okhttp",
        is_lookup=True,
        id_hash=H,
        id_prefix_hash=H,
        id_seq=2,
        id_valid=True,
        id_masked="110105************",
        name_hash=None,
        watchlist_key=None,
        source_file="/src/a.jsonl",
        line_no=1,
        ingest_run_id="run-r",
        event_date=dt.date(2026, 11, 1),
    )
    row.update(changes)
    return row


def _requests_params(expected_rows: int) -> dict:
    return {
        "min_event_time": dt.datetime(2000, 1, 1, tzinfo=UTC),
        "max_event_time": dt.datetime(2030, 1, 1, tzinfo=UTC),
        "expected_requests": expected_rows,
    }


@pytest.mark.spark
def test_validate_gives_one_passing_verdict_per_expectation_for_clean_requests(spark):
    rows = [
        _request_row(line_no=1),
        _request_row(line_no=2, is_lookup=False, id_hash=None, id_prefix_hash=None, id_seq=None),
    ]
    df = spark.createDataFrame([tuple(r[c] for c in REQUESTS.names) for r in rows], REQUESTS.spark_schema())
    verdicts = validate(df, "requests", run_id="run-r", stage="ingest", parameters=_requests_params(2))
    spec = load_suite("requests")
    assert len(verdicts) == len(spec["expectations"])
    assert {(v.run_id, v.stage, v.suite) for v in verdicts} == {("run-r", "ingest", "requests")}
    assert [v for v in verdicts if not v.success] == []
    assert {v.severity for v in verdicts} == {e["severity"] for e in spec["expectations"]}
    assert "expect_column_values_to_not_be_null(status)" in {v.expectation for v in verdicts}
    # Parameters are shown with the values this validation used.
    assert "expect_table_row_count_to_equal(value=2)" in {v.expectation for v in verdicts}


@pytest.mark.spark
def test_validate_fails_the_critical_checks_a_bad_requests_batch_breaks(spark):
    rows = [
        _request_row(line_no=1, id_hash="not-a-hash"),
        _request_row(line_no=2, client_id="110105194912310021"),  # a raw ID number slipped through
        _request_row(line_no=3, event_time=dt.datetime(1999, 1, 1, tzinfo=UTC)),
    ]
    df = spark.createDataFrame([tuple(r[c] for c in REQUESTS.names) for r in rows], REQUESTS.spark_schema())
    verdicts = validate(df, "requests", run_id="run-r", stage="ingest", parameters=_requests_params(4))
    failed = {v.expectation: v for v in verdicts if not v.success}
    assert set(failed) == {
        "expect_column_values_to_match_regex(id_hash, regex=^[0-9a-f]{64}$)",
        "expect_column_values_to_not_match_regex(client_id, regex=[0-9]{17}[0-9Xx])",
        "expect_column_values_to_be_between(event_time, min_value=2000-01-01 00:00:00+00:00, "
        "max_value=2030-01-01 00:00:00+00:00)",
        "expect_table_row_count_to_equal(value=4)",
    }
    assert all(v.severity == "critical" for v in failed.values())
    assert failed["expect_column_values_to_match_regex(id_hash, regex=^[0-9a-f]{64}$)"].unexpected_count == 1
    assert failed["expect_table_row_count_to_equal(value=4)"].observed_value == "3"


@pytest.mark.spark
def test_validate_quarantine_warns_then_fails_on_the_quarantined_share(spark):
    df = spark.createDataFrame(_quarantine_rows(["{bad", "[1]", "x 123456 y"]), QUARANTINE.spark_schema())
    verdicts = validate(
        df,
        "quarantine",
        run_id="run-q",
        stage="ingest",
        parameters={"expected_quarantine": 3, "quarantine_warn_rows": 1, "quarantine_fail_rows": 2},
    )
    failed = sorted((v.expectation, v.severity) for v in verdicts if not v.success)
    assert failed == [
        ("expect_column_values_to_not_match_regex(line_masked, regex=[0-9]{6})", "critical"),
        ("expect_table_row_count_to_be_between(min_value=0, max_value=1)", "warning"),
        ("expect_table_row_count_to_be_between(min_value=0, max_value=2)", "critical"),
    ]
    assert len(verdicts) == len(load_suite("quarantine")["expectations"])
    assert all(v.validated_at.tzinfo is not None for v in verdicts)


def _requests_frame(spark, rows: list[dict]):
    # Nullable, as a staged table read back from Parquet is: a null where the schema says never must still be seen.
    schema = StructType([StructField(f.name, f.dataType, True) for f in REQUESTS.spark_schema()])
    return spark.createDataFrame([tuple(r[c] for c in REQUESTS.names) for r in rows], schema)


@pytest.mark.spark
def test_validate_stops_the_gate_on_a_raw_id_in_user_agent_a_null_event_time_and_a_wrong_row_count(spark):
    rows = [
        _request_row(line_no=1, user_agent="okhttp/4.9 11010519491231002X"),  # a raw ID number in the last column
        _request_row(line_no=2, event_time=None),
    ]
    verdicts = validate(
        _requests_frame(spark, rows), "requests", run_id="run-g", stage="ingest", parameters=_requests_params(3)
    )
    failed = {v.expectation: v for v in verdicts if not v.success}
    assert set(failed) == {
        "expect_column_values_to_not_match_regex(user_agent, regex=[0-9]{17}[0-9Xx])",
        "expect_column_values_to_not_be_null(event_time)",
        "expect_table_row_count_to_equal(value=3)",
    }
    assert [v.unexpected_count for v in failed.values()][:2] == [1, 1]
    assert not quality.gate_passed(verdicts)
    with pytest.raises(
        quality.QualityGateError, match=r"requests: expect_column_values_to_not_match_regex\(user_agent"
    ):
        quality.raise_if_failed(verdicts, "ingest")


@pytest.mark.spark
def test_validate_neither_caches_the_batch_nor_drops_what_others_cached(spark):
    from pyspark import StorageLevel

    mine = spark.range(5).persist(StorageLevel.MEMORY_ONLY)
    mine.count()
    batch = _requests_frame(spark, [_request_row()])
    verdicts = validate(batch, "requests", run_id="run-c", stage="ingest", parameters=_requests_params(1))
    assert quality.gate_passed(verdicts)
    assert batch.storageLevel == StorageLevel.NONE  # GX would persist() it and never let go
    assert mine.storageLevel == StorageLevel.MEMORY_ONLY
    mine.unpersist()


@pytest.mark.spark
def test_validate_runs_a_cross_table_check_query_once_and_fails_the_gate_on_its_row_count(spark, tmp_path, monkeypatch):
    query = "SELECT b.id FROM {batch} b LEFT ANTI JOIN quality_test_other o ON b.id = o.id"
    suite = {
        "name": "cross",
        "expectations": [
            {"type": "expect_no_unexpected_rows", "kwargs": {"unexpected_rows_query": query}, "severity": "critical"}
        ],
    }
    (tmp_path / "cross.json").write_text(json.dumps(suite))
    monkeypatch.setattr(quality, "EXPECTATIONS_DIR", tmp_path)
    spark.createDataFrame([(1,), (2,)], "id int").createOrReplaceTempView("quality_test_other")
    queries = []
    real_sql = type(spark).sql
    monkeypatch.setattr(
        type(spark), "sql", lambda self, text, *a, **k: queries.append(text) or real_sql(self, text, *a, **k)
    )

    verdicts = validate(spark.createDataFrame([(1,), (3,), (4,)], "id int"), "cross", run_id="run-x", stage="detect")

    assert [(v.expectation, v.severity, v.success, v.observed_value) for v in verdicts] == [
        (f"expect_no_unexpected_rows(unexpected_rows_query={query})", "critical", False, "2")
    ]
    assert len([q for q in queries if "quality_test_other" in q]) == 1  # GX's own check runs it twice
    assert not quality.gate_passed(verdicts)


def _pair_suite(tmp_path, monkeypatch) -> None:
    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    checks = [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
        {"type": pair, "kwargs": {"column_A": "a", "column_B": "b", "or_equal": True}},
        {"type": pair, "kwargs": {"column_A": "a", "column_B": "b"}},
        {"type": pair, "kwargs": {"column_A": "a", "column_B": "c", "ignore_row_if": "either_value_is_missing"}},
        # `mostly` makes the verdict hang on the filtered row count: 2 of 7 rows break b >= c, of which
        # 1 has neither value (left out by default: 2 of 6) and 4 miss one (2 of 3 when either is left out).
        {
            "type": pair,
            "kwargs": {"column_A": "b", "column_B": "c", "or_equal": True, "ignore_row_if": "neither", "mostly": 0.7},
        },
        {"type": pair, "kwargs": {"column_A": "b", "column_B": "c", "or_equal": True, "mostly": 0.68}},
        {
            "type": pair,
            "kwargs": {"column_A": "b", "column_B": "c", "ignore_row_if": "either_value_is_missing", "mostly": 0.5},
        },
    ]
    for name, chosen in (("pairs", checks), ("single", checks[:1])):
        suite = {"name": name, "expectations": [dict(c, severity="critical") for c in chosen]}
        (tmp_path / f"{name}.json").write_text(json.dumps(suite))
    monkeypatch.setattr(quality, "EXPECTATIONS_DIR", tmp_path)


@pytest.mark.spark
def test_pair_checks_count_in_the_column_checks_pass_and_agree_with_gx_own_spark_counts(spark, tmp_path, monkeypatch):
    from great_expectations.expectations import registry
    from great_expectations.expectations.metrics.column_pair_map_metrics.column_pair_values_greater import (
        ColumnPairValuesAGreaterThanB,
    )

    from jobs import gx_metrics

    _pair_suite(tmp_path, monkeypatch)
    # Missing values on either side, on both, equal values, and rows that break each check.
    rows = [(5, 3, 1), (2, 2, None), (None, None, 4), (None, 1, 2), (1, 4, None), (0, None, None), (3, 1, 7)]
    frame = spark.createDataFrame(rows, "a int, b int, c int")
    bundled = validate(frame, "pairs", run_id="run-p", stage="pairs-bundled")
    validate(frame, "single", run_id="run-p", stage="pairs-bundled")
    try:  # GX's own providers back for one validation
        monkeypatch.setattr(gx_metrics, "bundle_pair_counts", lambda: None)
        for summary in ("unexpected_count", "filtered_row_count"):
            monkeypatch.delitem(
                registry._registered_metrics, f"column_pair_values.a_greater_than_b.{summary}.aggregate_fn"
            )
        ColumnPairValuesAGreaterThanB._register_metric_functions()
        own = validate(frame, "pairs", run_id="run-p", stage="pairs-gx")
    finally:
        monkeypatch.undo()
        gx_metrics.bundle_pair_counts()

    def figures(verdicts):
        return [(v.expectation, v.success, v.observed_value, v.unexpected_count) for v in verdicts]

    assert figures(bundled) == figures(own)
    assert [(v.success, v.unexpected_count) for v in bundled[1:]] == [
        (False, 1),
        (False, 2),
        (False, 1),
        (True, 2),
        (False, 2),
        (False, 2),
    ]
    # GX runs two Spark jobs per pair check; bundled, the six add none to the single-column check's passes.
    tracker = spark.sparkContext.statusTracker()
    assert len(tracker.getJobIdsForGroup("gx:pairs-gx:pairs")) > 2 * 6
    single = tracker.getJobIdsForGroup("gx:pairs-bundled:single")
    assert len(tracker.getJobIdsForGroup("gx:pairs-bundled:pairs")) == len(single) <= 2


@pytest.mark.spark
def test_flagged_clients_suite_fails_each_flag_without_a_lookup_between_its_first_and_last_seen(spark):
    t0 = dt.datetime(2026, 11, 1, 10, tzinfo=UTC)
    lookups = [("client_id", "u-seen", t0), ("client_id", "u-earlier", t0 - dt.timedelta(days=2))]
    spark.createDataFrame(
        lookups, "entity_type string, entity_value string, event_time timestamp"
    ).createOrReplaceTempView("detect_lookups")
    spark.createDataFrame([], "entity_type string, entity_value string").createOrReplaceTempView("detect_allowlist")
    rows = [("u-seen", t0, t0), ("u-earlier", t0, t0), ("u-never", t0, t0)]
    given = spark.createDataFrame(rows, "entity_value string, first_seen timestamp, last_seen timestamp")
    fill = {
        c.name: F.lit(None).cast(spark_type(c.type)) for c in FLAGGED_CLIENTS.columns if c.name not in given.columns
    }
    flags = given.withColumns(fill).withColumn("entity_type", F.lit("client_id")).transform(FLAGGED_CLIENTS.conform)

    verdicts = validate(flags, "flagged_clients", run_id="run-f", stage="detect")

    (check,) = [v for v in verdicts if "detect_lookups" in v.expectation]
    assert (check.success, check.observed_value) == (False, "2")  # u-earlier's lookup is outside its window


@pytest.mark.spark
def test_targets_suite_fails_each_target_counting_flags_that_no_flagged_entity_looked_up_that_day(spark):
    day, next_day = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    spark.createDataFrame(
        [("u-bad", day, "wl-a", None), ("u-bad", day, None, "px-b"), ("u-calm", day, "wl-c", None)],
        "entity_value string, event_date date, watchlist_key string, id_prefix_hash string",
    ).withColumn("entity_type", F.lit("client_id")).createOrReplaceTempView("detect_lookups")
    spark.createDataFrame(
        [("client_id", "u-bad", True)], "entity_type string, entity_value string, flagged boolean"
    ).createOrReplaceTempView("detect_flagged")
    rows = [
        (day, "watchlist", "wl-a", 1),  # looked up by the flagged client that day
        (day, "id_prefix", "px-b", 1),
        (day, "watchlist", "px-b", 1),  # the prefix it looked up, counted as a watchlist person
        (day, "watchlist", "wl-c", 1),  # looked up by an unflagged client only
        (next_day, "watchlist", "wl-a", 1),  # looked up by the flagged client, but on another day
        (day, "watchlist", "wl-c", 0),  # counts no flags: nothing to explain
    ]
    given = spark.createDataFrame(rows, "event_date date, target_type string, target string, flagged_entities long")
    fill = {c.name: F.lit(None).cast(spark_type(c.type)) for c in TARGETS.columns if c.name not in given.columns}
    targets = given.withColumns(fill).transform(TARGETS.conform)

    verdicts = validate(targets, "targets", run_id="run-t", stage="detect")

    (check,) = [v for v in verdicts if "detect_flagged" in v.expectation]
    assert (check.success, check.observed_value) == (False, "3")
