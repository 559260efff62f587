"""investigate: one entity's activity, flags, targets and relations, in the terminal and as a self-contained page."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re

import analyst_lake as tiny
import pytest
from conftest import TEST_KEY

from cli.main import main

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return tiny.build(tmp_path_factory.mktemp("investigate"))


@pytest.fixture(scope="module")
def config(lake):
    """Settings for the CLI that keep the shared test session at one shuffle partition."""
    path = lake.root.parent / "enumwatch.toml"
    path.write_text(f'[lake]\npath = "{lake.root}"\n[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n')
    return str(path)


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
    for name in ("ENUMWATCH_LAKE", "ENUMWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def acct_bad(spark, lake, config, tmp_path_factory):
    """One run of `investigate client_id acct-bad --html`: (stdout, stderr, page)."""
    page = tmp_path_factory.mktemp("page") / "acct-bad.html"
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["--config", config, "investigate", "client_id", "acct-bad", "--html", str(page)])
    assert rc == 0, err.getvalue()
    return out.getvalue(), err.getvalue(), page.read_text(encoding="utf-8")


def test_investigate_summary_says_when_how_much_and_which_rules_fired_why(acct_bad):
    out = acct_bad[0]
    assert out.startswith("client_id acct-bad\n")
    assert "first seen 2026-11-01 03:05 UTC, last seen 2026-11-01 04:30 UTC" in out
    assert "6 lookups, 5 distinct IDs, 2 distinct names, 2 hits (data returned, 33%), 4 misses" in out
    assert "from 1 device, 1 IP in 1 /24" in out
    assert f"in {tiny.RUN}, the latest detection run:" in out
    assert "[CRITICAL 90] client_id acct-bad" in out
    assert "- many_distinct_ids [hour from 2026-11-01 03:00]: distinct_ids 3 (>= 3)" in out
    assert "as a member of a flagged campaign:" in out and "[CRITICAL 85] campaign dev-farm" in out


def test_investigate_summary_shows_activity_per_hour(acct_bad):
    rows = [line.split() for line in acct_bad[0].splitlines() if line.startswith("  2026-11-01 0")]
    assert [r[:7] for r in rows] == [
        ["2026-11-01", "03:00", "4", "3", "1", "1", "3"],  # lookups, distinct IDs, names, hits, misses
        ["2026-11-01", "04:00", "2", "2", "1", "1", "1"],
    ]


def test_investigate_targets_are_watchlist_names_and_hashed_ids_never_numbers(acct_bad):
    out, _, page = acct_bad
    assert f"watchlist people: {tiny.WANG} (data returned), {tiny.LI}" in out
    victim_hash = tiny.keyed_hash(tiny.KEY, "id", tiny.VICTIM)[:12]
    assert re.search(rf"{victim_hash}  310104\*{{12}}\s+valid\s+1 lookup, 1 hit", out)
    for raw in tiny.IDS + [tiny.VICTIM]:
        assert raw not in out and raw[:14] not in out and raw not in page


def test_investigate_related_entities_by_device_ip_subnet_and_campaign(acct_bad):
    out = acct_bad[0].split("Related entities (from lookups)\n")[1]
    assert "same device: 1 entity\n    client_id acct-sib  via dev-farm  2 lookups" in out
    assert "same IP: 1 entity\n    client_ip 203.0.113.7  via 203.0.113.7  1 lookup  [flagged high]" in out
    assert "same /24 (other IPs): 1 entity\n    client_id acct-nb  via 203.0.113.0/24  1 lookup" in out
    assert "same campaign: device_account_farm via device_id dev-farm, 2 accounts  [flagged critical]: acct-sib" in out
    assert "acct-far" not in out


def test_investigate_html_is_self_contained_with_the_timeline_data(acct_bad):
    _, err, page = acct_bad
    assert "wrote" in err
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    assert len(page) > 1_000_000  # plotly.js itself is inlined
    assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", page, re.I)
    assert not re.search(r"<link[^>]+href=[\"']?(https?:)?//", page, re.I)
    assert '"x":["2026-11-01T03:00:00","2026-11-01T04:00:00"]' in page
    assert '"y":[4,2]' in page and '"y":[3,2]' in page and '"y":[3,5]' in page  # lookups, distinct IDs, so far
    assert tiny.WANG in page and "acct-sib" in page and "many_distinct_ids" in page


def test_investigate_a_campaign_covers_all_its_members(spark, lake, config, capsys):
    assert main(["--config", config, "investigate", "campaign", "dev-farm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("campaign dev-farm (3 member accounts)")
    assert "8 lookups, 6 distinct IDs" in out  # acct-bad's 6 and acct-sib's 2, one ID shared
    assert "[CRITICAL 85] campaign dev-farm" in out


def test_investigate_an_unknown_entity_fails_in_one_line_naming_who_used_that_ip(spark, lake, config, capsys):
    assert main(["--config", config, "investigate", "client_ip", "198.51.100.9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no lookups by client_ip 198.51.100.9" in err and "client_id acct-sib (2)" in err


def test_investigate_json_gives_the_same_findings_as_one_object(spark, lake, config, capsys):
    assert main(["--config", config, "investigate", "client_ip", "203.0.113.7", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["entity_type"], found["entity_value"]) == ("client_ip", "203.0.113.7")
    assert found["totals"]["lookups"] == 1 and found["totals"]["misses"] == 1
    assert found["flag"]["severity"] == "high" and found["flag_is_latest"]
    assert [(e["entity_value"], e["flagged"]) for e in found["related"]["ip"]["entities"]] == [("acct-bad", "critical")]


def test_investigate_an_unflagged_entity_shows_the_rules_that_came_closest(spark, lake, config, capsys, tmp_path):
    assert main(["--config", config, "investigate", "client_id", "acct-far", "--html", str(tmp_path / "p.html")]) == 0
    out = capsys.readouterr().out
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "Not flagged: the rules that came closest" in page and "suffix_brute_force: 10% of threshold" in page
    assert "not flagged itself in any detection run" in out
    assert "not flagged in the latest run; the rules that came closest (best window each):" in out
    closest = out.split("the rules that came closest (best window each):\n")[1].splitlines()
    assert closest[0] == (
        "    - suffix_brute_force: 10% of threshold (day from 2026-11-01 00:00): max_seqs_per_prefix 1 (< 10)"
    )
    assert any(
        "high_miss_share: 2% of threshold" in line and "miss_share 1 (>= 0.8), lookups 1 (< 50)" in line
        for line in closest
    )


def test_investigate_a_flagged_entity_shows_no_near_misses(acct_bad):
    assert "came closest" not in acct_bad[0]


def test_investigate_watchlist_name_shows_who_looked_the_person_up_hashing_it_first(
    spark, lake, config, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    assert main(["--config", config, "investigate", "watchlist", f" {tiny.WANG} "]) == 0  # normalized like ingest
    out, err = capsys.readouterr()
    handle = tiny.watchlist_key(tiny.KEY, tiny.WANG)
    assert out.splitlines()[:3] == [
        f"{tiny.WANG} ({handle})",
        "  looked up 1 time by 1 entity; data returned 1 time to 1 entity",
        "  client_id acct-bad: 1 lookup, 1 hit, 2026-11-01 03:20 UTC .. 2026-11-01 03:20 UTC  [flagged critical]",
    ]
    assert "2026-11-01  1 lookup, 1 entity, data returned to 1, flagged 1" in out
    assert tiny.WANG not in caplog.text and tiny.WANG not in err


def test_investigate_watchlist_name_never_looked_up_says_so(spark, lake, config, capsys):
    assert main(["--config", config, "investigate", "watchlist", "无名氏"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1] == "  never looked up"
    assert "not on the watchlist file: searched by name" in out
