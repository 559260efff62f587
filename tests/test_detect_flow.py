"""The `detect` flow: checks every detection table with its suite, publishes, and publishes nothing on a failed gate."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import TEST_KEY
from pyspark.sql import functions as F

import jobs.quality
from core.lake import Lake, parquet_files
from core.pseudonym import fingerprint
from jobs.quality import QualityGateError
from pipelines.detect import detect_flow
from schemas import REQUESTS
from schemas.table import spark_type

KEY = TEST_KEY
T0 = datetime(2026, 11, 1, 9)
SUITES = {"lookups", "entity_windows", "campaigns", "flagged_clients", "targets"}
FORCED = {
    "type": "expect_table_row_count_to_be_between",
    "kwargs": {"min_value": 0, "max_value": 0},
    "severity": "critical",
    "meta": {"why": "test: a check that the flags cannot pass"},
}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _requests(spark):
    """A small day of traffic: one enumerator, one verification partner, a citizen, an anonymous user, page views."""
    rows = []
    for i in range(60):  # 60 random IDs in 20 minutes, nothing found
        rows.append(("u-attacker", "36.112.1.9", T0 + timedelta(seconds=20 * i), True, 404, _hash(f"victim{i}")))
    for i in range(80):
        rows.append(("partner-01", "121.40.7.8", T0 + timedelta(minutes=i), True, 200, _hash(f"customer{i}")))
    for i in range(3):
        rows.append(("u-citizen", "39.144.2.3", T0 + timedelta(hours=3, minutes=i), True, 200, _hash(f"mum{i % 2}")))
    rows.append((None, "111.30.4.5", T0 + timedelta(hours=5), True, 200, _hash("me")))
    rows += [("u-citizen", "39.144.2.3", T0 + timedelta(hours=3, seconds=i), False, 200, None) for i in range(5)]
    df = spark.createDataFrame(
        [(i + 1, *r) for i, r in enumerate(rows)],
        "line_no bigint, client_id string, client_ip string, event_time timestamp, is_lookup boolean, status int, "
        "id_hash string",
    )
    fill = {
        "path": F.when(F.col("is_lookup"), "/api/v1/healthkit/lookup").otherwise("/static/app.js"),
        "id_valid": F.col("id_hash").isNotNull(),
        "source_file": F.lit("/logs/access-2026-11-01T09.jsonl.gz"),
        "ingest_run_id": F.lit("ingest-20261101T100000Z-test00"),
        "event_date": F.to_date("event_time"),
    }
    missing = {
        c.name: fill.get(c.name, F.lit(None)).cast(spark_type(c.type))
        for c in REQUESTS.columns
        if c.name not in df.columns
    }
    return df.withColumns(missing).transform(REQUESTS.conform)


def _table(lake: Lake, name: str) -> list[dict]:
    current = lake.current(name)
    if current is None or not any(parquet_files(current)):
        return []
    return pq.read_table(current).to_pylist()


@dataclass
class Detected:
    lake: Lake
    config: Path
    allowlist: Path
    summary: dict


@pytest.fixture(scope="module")
def detected(tmp_path_factory, spark, prefect_harness):
    """A lake holding one day of requests, after one detect run (the env stays set for the module's tests)."""
    tmp = tmp_path_factory.mktemp("detect_flow")
    config = tmp / "enumwatch.toml"
    config.write_text(
        f'[lake]\npath = "{tmp / "lake"}"\n[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n'
        f'[pseudonym]\nkey_file = "{tmp / "pseudonym.key"}"\n',
        encoding="utf-8",
    )
    allowlist = tmp / "allowlist.csv"
    allowlist.write_text("entity_type,entity_value,reason,expires\nclient_id,partner-01,verification partner,\n")
    lake = Lake(tmp / "lake")
    lake.open(fingerprint(KEY.encode()))
    staged = lake.staging("ingest-test") / "requests"
    _requests(spark).write.partitionBy(*REQUESTS.partition_by).parquet(str(staged))
    lake.publish("ingest-test", {"requests": lake.build_version("requests", "ingest-test", add=[staged])})
    lake.recover()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENUMWATCH_PSEUDONYM_KEY", KEY)
        for var in (
            "ENUMWATCH_LAKE",
            "SPARK_MASTER",
            "ENUMWATCH_CONFIG",
            "ENUMWATCH_KEY_FILE",
            "ENUMWATCH_WEBHOOK_URL",
        ):
            mp.delenv(var, raising=False)
        summary = detect_flow(lake=str(lake.root), allowlist=str(allowlist), config=str(config))
        yield Detected(lake, config, allowlist, summary)


@pytest.mark.spark
@pytest.mark.flow
def test_detect_flow_publishes_the_detection_tables(detected):
    tables = detected.summary["tables"]
    assert tables["lookups"] == 60 + 80 + 3 + 1
    flagged = _table(detected.lake, "flagged_clients")
    assert {(f["entity_type"], f["entity_value"]) for f in flagged if not f["shadow"]} == {("client_id", "u-attacker")}
    assert {f["detect_run_id"] for f in flagged} == {detected.summary["run_id"]}
    windows = _table(detected.lake, "entity_windows")
    assert {w["window"] for w in windows} == {"hour", "day", "7d"}


@pytest.mark.spark
@pytest.mark.flow
def test_detect_flow_sends_an_allowlisted_partner_to_audit_not_to_flags(detected):
    audit = _table(detected.lake, "allowlisted_hits")
    assert [(a["entity_value"], a["allow_reason"]) for a in audit] == [("partner-01", "verification partner")]
    assert "many_distinct_ids" in audit[0]["rules"]
    assert "partner-01" not in {f["entity_value"] for f in _table(detected.lake, "flagged_clients")}


@pytest.mark.spark
@pytest.mark.flow
def test_detect_flow_records_every_suite_in_dq_results_with_critical_checks_passing(detected):
    verdicts = [v for v in _table(detected.lake, "dq_results") if v["run_id"] == detected.summary["run_id"]]
    assert {v["stage"] for v in verdicts} == {"detect"}
    assert {v["suite"] for v in verdicts} == SUITES
    failed = [
        f"{v['suite']}: {v['expectation']} ({v['observed_value']})"
        for v in verdicts
        if v["severity"] == "critical" and not v["success"]
    ]
    assert not failed


@pytest.mark.spark
@pytest.mark.flow
def test_detect_flow_failed_critical_check_keeps_published_flags_and_records_the_failure(detected, monkeypatch):
    lake = detected.lake
    before = {name: lake.current(name) for name in ("flagged_clients", "entity_windows", "campaigns", "lookups")}
    flags_before = _table(lake, "flagged_clients")
    real = jobs.quality.load_suite

    def with_forced_failure(name: str) -> dict:
        suite = real(name)
        if name == "flagged_clients":
            suite = {**suite, "expectations": [*suite["expectations"], FORCED]}
        return suite

    monkeypatch.setattr(jobs.quality, "load_suite", with_forced_failure)
    with pytest.raises(QualityGateError, match=r"flagged_clients: expect_table_row_count_to_be_between"):
        # --full: an incremental run would find nothing new and not validate anything
        detect_flow(lake=str(lake.root), allowlist=str(detected.allowlist), config=str(detected.config), full=True)

    assert {name: lake.current(name) for name in before} == before
    assert _table(lake, "flagged_clients") == flags_before
    forced = [
        v
        for v in _table(lake, "dq_results")
        if v["run_id"] != detected.summary["run_id"]
        and v["suite"] == "flagged_clients"
        and v["expectation"].startswith("expect_table_row_count_to_be_between")
    ]
    assert [(v["stage"], v["severity"], v["success"]) for v in forced] == [("detect", "critical", False)]
    assert not (lake.staging_root.exists() and any(lake.staging_root.iterdir()))
