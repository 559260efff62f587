"""Pseudonymization at the door: the key, the keyed hash, and the `requests` columns derived from a lookup."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import stat
from urllib.parse import quote, quote_plus

import pytest
from pyspark.testing import assertDataFrameEqual

from core.idnumber import is_valid, make_id
from core.pseudonym import (
    PseudonymKeyError,
    fingerprint,
    keyed_hash,
    load_key,
    normalize_id,
    normalize_name,
    watchlist_key,
)
from core.settings import load_settings
from core.watchlist import load_watchlist
from jobs.pseudonymize import pseudonymize, watchlist_frame
from jobs.session import get_spark
from schemas import REQUESTS

KEY = b"pseudonym-test-key-0123456789abcdef"


# --- the key ----------------------------------------------------------------------------------
def test_load_key_prefers_the_environment_variable_and_creates_no_file(tmp_path):
    settings = load_settings(env={"ENUMWATCH_PSEUDONYM_KEY": "from-env-key"}).with_overrides(
        key_file=tmp_path / "k.key"
    )
    assert load_key(settings) == b"from-env-key"
    assert not (tmp_path / "k.key").exists()


def test_load_key_creates_a_0600_key_file_once_says_where_and_reuses_it(tmp_path, capsys):
    path = tmp_path / "sub" / "pseudonym.key"
    settings = load_settings(env={}).with_overrides(key_file=path)
    first = load_key(settings)
    err = capsys.readouterr().err
    assert str(path) in err
    assert first.decode() not in err  # where the key is, never the key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_key(settings) == first
    assert capsys.readouterr().err == ""  # reused quietly


def test_load_key_refuses_a_key_file_that_is_too_short(tmp_path):
    path = tmp_path / "k.key"
    path.write_text("short\n")
    with pytest.raises(PseudonymKeyError, match=str(path)):
        load_key(load_settings(env={}).with_overrides(key_file=path))


def test_fingerprint_is_short_stable_and_differs_per_key():
    assert fingerprint(KEY) == fingerprint(KEY)
    assert fingerprint(KEY) != fingerprint(KEY + b"x")
    assert len(fingerprint(KEY)) == 16 and KEY.hex() not in fingerprint(KEY)


# --- the keyed hash ---------------------------------------------------------------------------
def test_keyed_hash_is_hmac_sha256_of_the_kind_tagged_value():
    expected = hmac.new(KEY, "name\x1f周杰伦".encode(), hashlib.sha256).hexdigest()
    assert keyed_hash(KEY, "name", "周杰伦") == expected


def test_keyed_hash_separates_kinds_so_a_prefix_never_hashes_like_an_id_or_name():
    value = "11010519491231"
    assert len({keyed_hash(KEY, kind, value) for kind in ("id", "prefix", "name")}) == 3


def test_keyed_hash_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown hash kind"):
        keyed_hash(KEY, "ip", "1.2.3.4")


def test_normalizers_fold_case_width_and_outer_whitespace():
    assert normalize_id(" 11010519491231002x ") == "11010519491231002X"
    assert normalize_name("\u3000ＪＡＣＫＩＥ ") == "JACKIE"
    assert watchlist_key(KEY, " ＪＡＣＫＩＥ") == watchlist_key(KEY, "JACKIE")
    assert watchlist_key(KEY, "JACKIE").startswith("wl-")


# --- pseudonymize(): the requests columns -----------------------------------------------------
PARSED_DDL = (
    "event_time timestamp, client_ip string, client_id string, device_id string, request_id string, "
    "method string, uri string, status int, bytes_sent bigint, latency_ms double, user_agent string, "
    "source_file string, line_no bigint, ingest_run_id string"
)
LOOKUP = "/api/v1/healthkit/lookup"
KNOWN = "11010519491231002X"
SIBLING = make_id("110105", dt.date(1949, 12, 31), 37)  # shares region + birth date with KNOWN
BAD_CHECK = KNOWN[:17] + ("0" if KNOWN[17] != "0" else "1")
FEB_30 = "110105194902300021"
STAR = "周杰伦"


def _parsed(spark, uris: list[str]):
    when = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.timezone.utc)
    rows = [
        (when, "203.0.113.7", "u42", None, None, "GET", uri, 200, 10, 1.0, "okhttp", "/src/a.jsonl", no, "run-1")
        for no, uri in enumerate(uris, start=1)
    ]
    return spark.createDataFrame(rows, PARSED_DDL)


def _pseudonymized(spark, settings, uris: list[str], watchlist=None):
    entries = watchlist if watchlist is not None else []
    return pseudonymize(
        _parsed(spark, uris), key=KEY, lookup=settings.lookup, watchlist=watchlist_frame(spark, entries)
    )


def _h(kind: str, value: str | None) -> str | None:
    return None if value is None else keyed_hash(KEY, kind, value)


@pytest.mark.spark
def test_pseudonymize_normalizes_ids_before_hashing(spark, settings):
    uris = [
        f"{LOOKUP}?id={KNOWN}",
        f"{LOOKUP}?id={KNOWN.lower()}",  # lower-case check x
        f"{LOOKUP}?id=+{KNOWN}+",  # '+'-encoded spaces around it
        f"{LOOKUP}?id=%20{KNOWN}%20",  # percent-encoded spaces
    ]
    result = _pseudonymized(spark, settings, uris).select("line_no", "id_hash", "id_prefix_hash", "id_seq")
    row = (_h("id", KNOWN), _h("prefix", KNOWN[:14]), 2)
    expected = spark.createDataFrame(
        [(n, *row) for n in range(1, 5)], "line_no bigint, id_hash string, id_prefix_hash string, id_seq int"
    )
    assertDataFrameEqual(result, expected)


@pytest.mark.spark
def test_pseudonymize_decodes_names_and_folds_full_width_before_hashing(spark, settings):
    uris = [
        f"{LOOKUP}?name={quote(STAR)}",  # percent-encoded UTF-8
        f"{LOOKUP}?name={quote_plus(' ' + STAR + ' ')}",  # quote_plus: spaces become '+'
        f"{LOOKUP}?name=Jackie+Chan",
        f"{LOOKUP}?name={quote('Ｊａｃｋｉｅ　Ｃｈａｎ')}",  # full-width letters and ideographic space
        f"{LOOKUP}?name={quote(chr(0x2F08) + '王')}",  # Kangxi radical folds to 人
    ]
    result = _pseudonymized(spark, settings, uris).select("line_no", "name_hash", "id_hash")
    expected = spark.createDataFrame(
        [
            (1, _h("name", STAR), None),
            (2, _h("name", STAR), None),
            (3, _h("name", "Jackie Chan"), None),
            (4, _h("name", "Jackie Chan"), None),
            (5, _h("name", "人王"), None),
        ],
        "line_no bigint, name_hash string, id_hash string",
    )
    assertDataFrameEqual(result, expected)


@pytest.mark.spark
def test_pseudonymize_derives_prefix_hash_sequence_validity_and_region_mask(spark, settings):
    ids = [KNOWN, SIBLING, BAD_CHECK, FEB_30, "12345"]
    result = _pseudonymized(spark, settings, [f"{LOOKUP}?id={i}" for i in ids]).select(
        "line_no", "id_hash", "id_prefix_hash", "id_seq", "id_valid", "id_masked"
    )
    expected = spark.createDataFrame(
        [
            (1, _h("id", KNOWN), _h("prefix", "11010519491231"), 2, True, "110105************"),
            (2, _h("id", SIBLING), _h("prefix", "11010519491231"), 37, True, "110105************"),
            (3, _h("id", BAD_CHECK), _h("prefix", "11010519491231"), 2, False, "110105************"),
            (4, _h("id", FEB_30), _h("prefix", "11010519490230"), 2, False, "110105************"),
            (5, _h("id", "12345"), None, None, False, "*****"),  # too short for a prefix or a sequence
        ],
        "line_no bigint, id_hash string, id_prefix_hash string, id_seq int, id_valid boolean, id_masked string",
    )
    assertDataFrameEqual(result, expected)
    assert [is_valid(i) for i in ids] == [True, True, False, False, False]
    # KNOWN and SIBLING share region + birth date: linked by prefix, still distinct IDs.
    assert KNOWN[:14] == SIBLING[:14] and _h("id", KNOWN) != _h("id", SIBLING)


@pytest.mark.spark
def test_pseudonymize_keeps_the_endpoint_but_not_the_sensitive_query_values(spark, settings):
    uris = [
        f"{LOOKUP}?id={KNOWN}&name={quote(STAR)}&lang=zh",
        f"{LOOKUP}/?id={KNOWN}",  # trailing slash is still the lookup endpoint
        "/api/v1/healthkit/me?id=110105194912310021",  # not the lookup endpoint: no hashes, digits masked
        "/api/v1/users/110105194912310021/profile",
        "/health",
    ]
    result = _pseudonymized(spark, settings, uris).select("line_no", "path", "query_redacted", "is_lookup", "id_hash")
    expected = spark.createDataFrame(
        [
            (1, LOOKUP, "id=~&name=~&lang=zh", True, _h("id", KNOWN)),
            (2, LOOKUP + "/", "id=~", True, _h("id", KNOWN)),
            (3, "/api/v1/healthkit/me", "id=~", False, None),
            (4, "/api/v1/users/******/profile", None, False, None),
            (5, "/health", None, False, None),
        ],
        "line_no bigint, path string, query_redacted string, is_lookup boolean, id_hash string",
    )
    assertDataFrameEqual(result, expected)


@pytest.mark.spark
def test_pseudonymize_records_the_watchlist_entry_a_lookup_targeted(spark, settings, tmp_path):
    csv_path = tmp_path / "watchlist.csv"
    csv_path.write_text(f"name,note\n{STAR},singer\n  Jackie Chan ,actor\n", encoding="utf-8")
    entries = load_watchlist(csv_path, KEY)
    uris = [
        f"{LOOKUP}?id={KNOWN}&name={quote(STAR)}",
        f"{LOOKUP}?name={quote('ＪＡＣＫＩＥ　ＣＨＡＮ'.title())}",  # full width: matches after NFKC
        f"{LOOKUP}?name=Jackie+Chan",
        f"{LOOKUP}?name={quote('王五')}",
        f"{LOOKUP}?id={KNOWN}",
    ]
    result = _pseudonymized(spark, settings, uris, entries).select("line_no", "watchlist_key")
    expected = spark.createDataFrame(
        [
            (1, watchlist_key(KEY, STAR)),
            (2, watchlist_key(KEY, "Jackie Chan")),
            (3, watchlist_key(KEY, "Jackie Chan")),
            (4, None),
            (5, None),
        ],
        "line_no bigint, watchlist_key string",
    )
    assertDataFrameEqual(result, expected)


@pytest.mark.spark
def test_pseudonymize_output_has_exactly_the_requests_schema(spark, settings):
    result = _pseudonymized(spark, settings, [f"{LOOKUP}?id={KNOWN}"])
    assert result.columns == REQUESTS.names
    assert [f.dataType for f in result.schema] == [f.dataType for f in REQUESTS.spark_schema()]


@pytest.mark.spark
def test_pseudonymize_plan_never_shows_the_key_or_its_hmac_pads(spark, settings):
    session = get_spark(settings)  # the pipeline's session settings, redaction included
    df = pseudonymize(
        _parsed(session, [f"{LOOKUP}?id={KNOWN}&name={quote(STAR)}"]),
        key=KEY,
        lookup=settings.lookup,
        watchlist=watchlist_frame(session, []),
    )
    block = KEY.ljust(64, b"\x00")
    secrets = [bytes(b ^ pad for b in block).hex() for pad in (0x36, 0x5C)] + [KEY.hex(), KEY.decode()]
    plan = df._jdf.queryExecution().toString()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        df.explain(mode="extended")
    for text in (plan, out.getvalue()):
        assert "Physical Plan" in text
        for secret in secrets:
            assert secret.lower() not in text.lower()
