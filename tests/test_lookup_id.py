"""lookup-id: was this number looked up, by whom, when, was data returned; the number itself never comes back out."""

from __future__ import annotations

import io
import json
import logging

import analyst_lake as tiny
import pytest
from conftest import TEST_KEY

from analyst.lookup_id import mask_id
from cli.main import main


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return tiny.build(tmp_path_factory.mktemp("lookup-id"))


@pytest.fixture
def config(lake, monkeypatch, caplog):
    """CLI settings for the tiny lake (one shuffle partition), the test key, and every log record captured."""
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", TEST_KEY)
    for name in ("ENUMWATCH_LAKE", "ENUMWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG)
    path = lake.root.parent / "enumwatch.toml"
    path.write_text(f'[lake]\npath = "{lake.root}"\n[spark]\nmaster = "local[1]"\nshuffle_partitions = 1\n')
    return str(path)


def assert_never_echoed(raw: str, *texts: str) -> None:
    for text in texts:
        assert raw not in text and raw[:14] not in text  # neither the number nor its birth-date prefix


@pytest.mark.spark
def test_lookup_id_says_who_looked_it_up_when_and_whether_data_came_back(spark, config, capsys, caplog):
    assert main(["--config", config, "lookup-id", f" {tiny.VICTIM.lower()} "]) == 0  # normalized like ingest
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("ID 310104************ (check digit valid; hash ")
    assert lines[1].startswith(
        "  looked up 2 times by 2 entities, data returned 1 time; first 2026-11-01 04:05 UTC, last 2026-11-01 06:00 UTC"
    )
    assert lines[2] == (
        "  client_id acct-bad: 1 lookup, data returned 1 time (first 2026-11-01 04:05 UTC), "
        "2026-11-01 04:05 UTC .. 2026-11-01 04:05 UTC  [flagged critical]"
    )
    assert (
        lines[3]
        == "  client_ip 203.0.113.7: 1 lookup, no data returned, 2026-11-01 06:00 UTC .. 2026-11-01 06:00 UTC  [flagged high]"
    )
    assert_never_echoed(tiny.VICTIM, out, err, caplog.text)


@pytest.mark.spark
def test_lookup_id_of_a_number_never_looked_up_says_so_with_what_was_searched(spark, config, capsys, caplog):
    assert main(["--config", config, "lookup-id", tiny.NEVER]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"ID 440305************ (check digit valid; hash {tiny.keyed_hash(tiny.KEY, 'id', tiny.NEVER)[:12]})\n"
        "  not looked up (11 lookups from 2026-11-01 03:05 UTC to 2026-11-01 08:00 UTC searched)\n"
    )
    assert_never_echoed(tiny.NEVER, out, err, caplog.text)


@pytest.mark.spark
def test_lookup_id_reads_the_number_from_stdin_and_answers_in_json(spark, config, capsys, caplog, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(tiny.VICTIM + "\n"))
    assert main(["--config", config, "lookup-id", "-", "--json"]) == 0
    out, err = capsys.readouterr()
    answer = json.loads(out)
    assert answer["looked_up"] is True and answer["id_valid"] is True
    assert (answer["lookups"], answer["hits"], answer["id_masked"]) == (2, 1, "310104************")
    assert answer["id_hash"] == tiny.keyed_hash(tiny.KEY, "id", tiny.VICTIM)
    assert [(e["entity_type"], e["entity_value"], e["hits"]) for e in answer["entities"]] == [
        ("client_id", "acct-bad", 1),
        ("client_ip", "203.0.113.7", 0),
    ]
    assert_never_echoed(tiny.VICTIM, out, err, caplog.text)


def test_lookup_id_refuses_a_key_other_than_the_lakes_instead_of_answering_no(config, capsys, monkeypatch):
    monkeypatch.setenv("ENUMWATCH_PSEUDONYM_KEY", "another-key-0123456789abcdef-0123456789")
    assert main(["--config", config, "lookup-id", tiny.VICTIM]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "another pseudonym key" in err
    assert_never_echoed(tiny.VICTIM, out, err)


@pytest.mark.parametrize(
    "raw, masked",
    [
        ("310104198506150427", "310104************"),  # a full ID keeps its region only
        ("31010419850615", "**************"),  # anything else is masked whole
        ("x" * 40, "*" * 18),  # and never longer than an ID
    ],
)
def test_mask_id_keeps_at_most_the_region(raw, masked):
    assert mask_id(raw) == masked
