"""Alerts: the dedup policy and the message text (pure), and the outbox in a tmp lake (pyarrow, no Spark)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TEST_KEY

from core.lake import Lake
from core.pseudonym import watchlist_key
from core.settings import AlertSettings
from delivery import outbox

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
POLICY = AlertSettings()
WANG = watchlist_key(TEST_KEY.encode(), "王菲")
LI = watchlist_key(TEST_KEY.encode(), "李娜")


def make_flag(
    value="acct-1", severity="high", score=60, *, run="detect-20261127T100000Z-aaaaaa", at=T0, **extra
) -> dict:
    """A complete flagged_clients row for `client_id value`, with one many_distinct_ids evidence."""
    row = {
        "detect_run_id": run,
        "detected_at": at,
        "entity_type": "client_id",
        "entity_value": value,
        "members": None,
        "severity": severity,
        "score": score,
        "rules": ["many_distinct_ids"],
        "shadow": False,
        "first_seen": at - timedelta(hours=5),
        "last_seen": at - timedelta(hours=1),
        "lookups": 420,
        "distinct_ids": 391,
        "distinct_names": 2,
        "distinct_watchlist": 1,
        "hits": 37,
        "hit_ratio": 37 / 420,
        "watchlist_keys": [WANG, LI],
        "watchlist_hit_keys": [WANG],
        "masked_id_samples": ["110101********"],
        "evidence": [
            {
                "rule": "many_distinct_ids",
                "shadow": False,
                "window": "day",
                "window_start": datetime(2026, 11, 27, tzinfo=timezone.utc),
                "window_end": datetime(2026, 11, 28, tzinfo=timezone.utc),
                "observed": {"distinct_ids": 391.0},
                "threshold": {"distinct_ids": 50.0},
                "watchlist_keys": [WANG],
            }
        ],
        "detect_date": at.date(),
    }
    row.update(extra)
    return row


def publish_flags(lake: Lake, flags: list[dict]) -> None:
    """Append `flags` to flagged_clients through the lake's versioned publish, laid out as Spark writes it."""
    run = f"test-{uuid.uuid4().hex[:6]}"
    staged = lake.staging(run) / "flagged_clients"
    schema = outbox.FLAGS_SCHEMA
    for day in {f["detect_date"] for f in flags}:
        rows = [f for f in flags if f["detect_date"] == day]
        part = staged / f"detect_date={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=schema).drop_columns(["detect_date"])
        pq.write_table(table, part / f"part-{uuid.uuid4().hex}.parquet")
    with lake.lock():
        lake.publish(run, {"flagged_clients": lake.build_version("flagged_clients", run, add=[staged])})
        lake.recover()


def sent(value="acct-1", severity="high", at=T0) -> dict:
    """The outbox row an earlier alert left."""
    return outbox.build_alert(make_flag(value, severity, at=at), "new", None, at)


# --- policy ------------------------------------------------------------------------------------
def test_decide_alerts_an_entity_never_alerted_before_as_new():
    raised, suppressed = outbox.decide([make_flag()], [], T0, POLICY)
    assert [(f["entity_value"], why, prev) for f, why, prev in raised] == [("acct-1", "new", None)]
    assert suppressed == []


def test_decide_suppresses_the_same_severity_within_the_window():
    raised, suppressed = outbox.decide([make_flag()], [sent(at=T0 - timedelta(hours=23))], T0, POLICY)
    assert raised == [] and [f["entity_value"] for f in suppressed] == ["acct-1"]


def test_decide_re_alerts_at_once_when_the_severity_rose():
    raised, _ = outbox.decide([make_flag(severity="critical")], [sent(at=T0 - timedelta(minutes=5))], T0, POLICY)
    assert [(why, prev) for _, why, prev in raised] == [("severity_rose", "high")]


def test_decide_does_not_re_alert_when_the_severity_fell():
    raised, suppressed = outbox.decide([make_flag(severity="medium")], [sent(at=T0 - timedelta(hours=1))], T0, POLICY)
    assert raised == [] and len(suppressed) == 1


def test_decide_repeats_after_the_window_and_compares_with_the_latest_alert_only():
    history = [
        sent(severity="critical", at=T0 - timedelta(hours=30)),
        sent(severity="high", at=T0 - timedelta(hours=25)),
    ]
    raised, _ = outbox.decide([make_flag(severity="high")], history, T0, POLICY)
    assert [(why, prev) for _, why, prev in raised] == [("repeat", "high")]


@pytest.mark.parametrize(
    "hours, alerted",
    [
        (5, False),  # critical window is 6 h in this config: still suppressed
        (6, True),  # the window has passed
    ],
)
def test_decide_uses_the_suppression_window_of_the_flags_severity(hours, alerted):
    policy = AlertSettings(suppress_hours=(("low", 24.0), ("medium", 24.0), ("high", 24.0), ("critical", 6.0)))
    previous = [sent(severity="critical", at=T0 - timedelta(hours=hours))]
    raised, _ = outbox.decide([make_flag(severity="critical")], previous, T0, policy)
    assert bool(raised) is alerted


def test_decide_never_alerts_shadow_flags_or_flags_below_the_minimum_severity():
    flags = [make_flag("shadowy", shadow=True), make_flag("minor", severity="low")]
    raised, suppressed = outbox.decide(flags, [], T0, AlertSettings(min_severity="medium"))
    assert raised == [] and suppressed == []


# --- text --------------------------------------------------------------------------------------
def test_render_says_who_how_bad_why_what_was_exposed_and_how_to_investigate():
    alert = outbox.build_alert(make_flag(), "new", None, T0)
    text = outbox.render(alert, {WANG: "王菲", LI: "李娜"})
    assert text.splitlines() == [
        "[HIGH 60] client_id acct-1 - new",
        "seen 2026-11-27 05:00 .. 2026-11-27 09:00 UTC: 420 lookups, 391 distinct ID numbers",
        "rules:",
        "- many_distinct_ids [day from 2026-11-27 00:00 UTC]: distinct_ids 391 vs threshold 50",
        "exposed: 37 lookups returned data; watchlist people whose data was returned: 王菲",
        "also looked up (no data returned): 李娜",
        "investigate: enumwatch investigate client_id acct-1",
    ]


def test_build_alert_keeps_handles_not_names_and_quotes_the_investigate_command():
    alert = outbox.build_alert(make_flag("acct 1; rm"), "severity_rose", "medium", T0)
    assert alert["watchlist_hit_keys"] == [WANG] and "王菲" not in alert["summary"]
    assert alert["summary"] == (
        "high (score 60) client_id acct 1; rm: many_distinct_ids; 420 lookups, 391 distinct IDs, "
        "37 returned data, 1 watchlist people exposed (severity rose from medium)"
    )
    assert alert["investigate"] == "enumwatch investigate client_id 'acct 1; rm'"
    assert (alert["status"], alert["attempts"]) == ("pending", 0)


def test_render_names_a_campaigns_members_and_shows_handles_when_names_are_unknown():
    flag = make_flag("203.0.113.0/24", entity_type="campaign", members=[f"acct-{i}" for i in range(7)])
    text = outbox.render(outbox.build_alert(flag, "new", None, T0), {})
    assert text.startswith(
        "[HIGH 60] campaign 203.0.113.0/24 (7 accounts: acct-0, acct-1, acct-2, acct-3, acct-4 ...) - new"
    )
    assert f"watchlist people whose data was returned: {WANG}" in text
    assert "investigate: enumwatch investigate campaign 203.0.113.0/24" in text


# --- the outbox in a lake ----------------------------------------------------------------------
def test_outbox_round_trips_through_the_lakes_versioned_publish(tmp_path):
    lake = Lake(tmp_path / "lake")
    rows = [sent("acct-1"), sent("acct-2", "critical", at=T0 + timedelta(minutes=1))]
    outbox.write_outbox(lake, rows, "alerts-1")
    assert lake.current("alerts") is not None and not lake.staging_root.exists()
    assert outbox.read_outbox(lake) == rows
    assert [r["alert_id"] for r in outbox.undelivered(rows)] == [rows[1]["alert_id"], rows[0]["alert_id"]]
    # no watchlist name reaches the lake's files
    for path in (tmp_path / "lake").rglob("*.parquet"):
        assert "王菲".encode() not in path.read_bytes()


def test_read_flags_takes_the_named_run_the_latest_run_or_every_run_since(tmp_path):
    lake = Lake(tmp_path / "lake")
    old = make_flag("old", run="detect-20261126T100000Z-aaaaaa", at=T0 - timedelta(days=1))
    new = make_flag("new", run="detect-20261127T100000Z-bbbbbb")
    publish_flags(lake, [old])
    publish_flags(lake, [new])
    assert [f["entity_value"] for f in outbox.read_flags(lake)] == ["new"]
    assert [f["entity_value"] for f in outbox.read_flags(lake, old["detect_run_id"])] == ["old"]
    assert outbox.read_flags(lake, "detect-none") == []
    assert [f["entity_value"] for f in outbox.read_flags(lake, since=T0 - timedelta(hours=1))] == ["new"]
    assert outbox.read_flags(lake)[0]["evidence"][0]["threshold"] == {"distinct_ids": 50.0}


def test_read_outbox_and_read_flags_are_empty_before_the_first_publish(tmp_path):
    lake = Lake(Path(tmp_path / "lake"))
    assert outbox.read_outbox(lake) == [] and outbox.read_flags(lake) == []


@pytest.mark.spark
def test_outbox_reads_flags_that_spark_wrote_and_spark_reads_the_outbox(spark, tmp_path):
    from pyspark.testing import assertDataFrameEqual

    from schemas import LAKE_TABLES

    lake = Lake(tmp_path / "lake")
    staged = lake.staging("detect-1") / "flagged_clients"
    spark.createDataFrame([make_flag()], LAKE_TABLES["flagged_clients"].spark_schema()).write.partitionBy(
        "detect_date"
    ).parquet(str(staged))
    lake.publish("detect-1", {"flagged_clients": lake.build_version("flagged_clients", "detect-1", add=[staged])})
    assert outbox.read_flags(lake) == [make_flag()]
    alert = outbox.build_alert(make_flag(), "new", None, T0)
    outbox.write_outbox(lake, [alert], "alerts-1")
    schema = LAKE_TABLES["alerts"].spark_schema()
    assertDataFrameEqual(lake.read(spark, "alerts"), spark.createDataFrame([alert], schema))


def test_render_marks_evidence_from_shadow_rules_as_context():
    flag = make_flag()
    flag["evidence"] = flag["evidence"] + [
        dict(
            flag["evidence"][0],
            rule="population_outlier",
            shadow=True,
            observed={"distinct_ids": 391.0, "median": 1.0},
            threshold={"distinct_ids": 20.0},
        )
    ]
    lines = outbox.evidence_lines(outbox.build_alert(flag, "new", None, T0))
    assert (
        lines[1]
        == "- population_outlier (shadow rule, context only) [day from 2026-11-27 00:00 UTC]: distinct_ids 391 vs threshold 20, median 1"
    )


def test_write_outbox_waits_for_the_lake_lock_and_gives_up_with_a_clear_error(tmp_path):
    from core.lake import LakeError

    lake = Lake(tmp_path / "lake")
    with Lake(tmp_path / "lake").lock(run_id="ingest-1"):  # an ingest is publishing
        with pytest.raises(LakeError, match=r"holds the lake lock \(run ingest-1, pid \d+"):
            outbox.write_outbox(lake, [sent()], "alerts-1", wait_s=0)
    outbox.write_outbox(lake, [sent()], "alerts-1", wait_s=0)  # free again
    assert len(outbox.read_outbox(lake)) == 1
