"""`enumwatch flagged`: the latest run's flags as a JSON array or a readable list, most severe first."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from conftest import TEST_KEY

from cli.main import main
from core.lake import Lake
from core.pseudonym import fingerprint, watchlist_key
from schemas import FLAGGED_CLIENTS

KEY = TEST_KEY
CELEBRITY = "林星澜"
OLD_RUN = "detect-20261126T090000Z-aaaaaa"
RUN = "detect-20261127T090000Z-bbbbbb"
DAY = datetime(2026, 11, 1)
WL = watchlist_key(KEY.encode(), CELEBRITY)


def _evidence(rule, observed, threshold, window="day", start=DAY, shadow=False, watchlist=()):
    return (rule, shadow, window, start, start + timedelta(days=1), observed, threshold, list(watchlist))


def _flag(
    run, value, severity, score, rules, evidence, *, entity_type="client_id", members=None, shadow=False, watchlist=()
):
    detected = datetime(2026, 11, 27, 9) if run == RUN else datetime(2026, 11, 26, 9)
    return (
        run,
        detected,
        entity_type,
        value,
        members,
        severity,
        score,
        rules,
        shadow,
        DAY + timedelta(hours=9),
        DAY + timedelta(hours=10),
        100,
        80,
        0,
        len(watchlist),
        10,
        0.1,
        list(watchlist),
        [],
        ["110101********"],
        evidence,
        detected.date(),
    )


FLAGS = [
    _flag(
        OLD_RUN,
        "u-old",
        "critical",
        90,
        ["many_distinct_ids"],
        [_evidence("many_distinct_ids", {"distinct_ids": 900.0}, {"distinct_ids": 50.0})],
    ),
    _flag(
        RUN,
        "u-medium",
        "medium",
        40,
        ["high_miss_share"],
        [_evidence("high_miss_share", {"miss_share": 0.9, "lookups": 60.0}, {"miss_share": 0.8, "lookups": 50.0})],
    ),
    _flag(
        RUN,
        "u-critical",
        "critical",
        95,
        ["watchlist_targeting"],
        [_evidence("watchlist_targeting", {"distinct_watchlist": 30.0}, {"distinct_watchlist": 3.0}, watchlist=[WL])],
        watchlist=[WL],
    ),
    _flag(
        RUN,
        "d-farm",
        "high",
        60,
        ["device_account_farm"],
        [
            _evidence(
                "device_account_farm",
                {"n_members": 25.0, "distinct_ids": 1000.0, "disjointness": 1.0},
                None,
                window="range",
            )
        ],
        entity_type="campaign",
        members=["u001", "u002"],
    ),
    _flag(
        RUN,
        "u-trial",
        "medium",
        40,
        ["population_outlier"],
        [_evidence("population_outlier", {"distinct_ids": 40.0}, {"distinct_ids": 30.0}, shadow=True)],
        shadow=True,
    ),
]


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory, spark):
    """A lake whose flagged_clients holds an older run and the latest one, with a remembered watchlist."""
    tmp = tmp_path_factory.mktemp("report")
    lake = Lake(tmp / "lake")
    lake.open(fingerprint(KEY.encode()))
    watchlist = tmp / "watchlist.csv"
    watchlist.write_text(f"name\n{CELEBRITY}\n", encoding="utf-8")
    lake.remember_watchlist(watchlist)
    staged = lake.staging("detect-test") / "flagged_clients"
    spark.createDataFrame(FLAGS, FLAGGED_CLIENTS.spark_schema()).coalesce(1).write.partitionBy("detect_date").parquet(
        str(staged)
    )
    lake.publish("detect-test", {"flagged_clients": lake.build_version("flagged_clients", "detect-test", add=[staged])})
    lake.recover()
    config = tmp / "enumwatch.toml"
    config.write_text(
        f'[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n[pseudonym]\nkey_file = "{tmp / "unused.key"}"\n',
        encoding="utf-8",
    )
    return lake.root, config


@pytest.fixture
def flagged(lake_dir, monkeypatch, capfd):
    """Run `enumwatch flagged ARGS...` against the test lake; return (exit code, stdout, stderr)."""
    root, config = lake_dir
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", KEY)
    monkeypatch.delenv("SPARK_MASTER", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main(["--config", str(config), "flagged", "--lake", str(root), *args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.mark.spark
def test_flagged_json_prints_only_a_json_array_of_the_latest_runs_flags(flagged):
    code, out, _ = flagged("--json")
    assert code == 0
    records = json.loads(out)
    assert [r["entity_value"] for r in records] == ["u-critical", "d-farm", "u-medium"]
    for record in records:
        assert list(record) == [*FLAGGED_CLIENTS.names, "watchlist_names"]
    critical = records[0]
    assert critical["detect_run_id"] == RUN
    assert critical["first_seen"] == "2026-11-01T09:00:00"
    assert critical["watchlist_keys"] == [WL]
    assert critical["watchlist_names"] == [CELEBRITY]
    assert critical["evidence"][0]["observed"] == {"distinct_watchlist": 30.0}
    assert critical["evidence"][0]["threshold"] == {"distinct_watchlist": 3.0}
    assert records[1]["members"] == ["u001", "u002"]


@pytest.mark.spark
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("--min-severity", "critical"), ["u-critical"], id="critical only"),
        pytest.param(("--min-severity", "high"), ["u-critical", "d-farm"], id="high and above"),
        pytest.param(("--shadow",), ["u-critical", "d-farm", "u-medium", "u-trial"], id="shadow flags on request"),
    ],
)
def test_flagged_json_filters_by_minimum_severity_and_shadow(flagged, args, expected):
    code, out, _ = flagged("--json", *args)
    assert code == 0
    assert [r["entity_value"] for r in json.loads(out)] == expected


@pytest.mark.spark
def test_flagged_readable_list_is_most_severe_first_with_each_rule_observed_against_threshold(flagged):
    code, out, _ = flagged()
    assert code == 0
    heads = [line for line in out.splitlines() if line.startswith("[")]
    assert heads == [
        "[CRITICAL 95] client_id u-critical",
        "[HIGH 60] campaign d-farm (2 accounts: u001, u002)",
        "[MEDIUM 40] client_id u-medium",
    ]
    assert "    - watchlist_targeting [day from 2026-11-01 00:00]: distinct_watchlist 30 (>= 3)" in out
    assert "    - high_miss_share [day from 2026-11-01 00:00]: lookups 60 (>= 50), miss_share 0.9 (>= 0.8)" in out
    assert f"    watchlist people targeted: {CELEBRITY}" in out
    assert "u-old" not in out and "u-trial" not in out


def test_flagged_without_detection_results_exits_1_with_one_line(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", KEY)
    code = main(["flagged", "--json", "--lake", str(tmp_path / "empty")])
    out, err = capfd.readouterr()
    assert code == 1
    assert out == ""
    assert err.startswith("enumwatch: no detection results in") and err.count("\n") == 1
