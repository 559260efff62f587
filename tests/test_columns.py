"""Column helpers: the Spark HMAC equals the Python one, ID checks, query decoding and masking."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from core.idnumber import is_valid, make_id
from core.pseudonym import keyed_hash, normalize_name
from jobs.columns import (
    hmac_sha256_hex,
    id_is_valid,
    mask_digits,
    mask_free_text,
    nfkc_trim,
    pseudonymize_identifier,
    query_param,
)

pytestmark = pytest.mark.spark

VALUES = ["11010519491231002X", "周杰伦", "Jackie Chan", "", "x" * 200]


@pytest.mark.parametrize(
    "key",
    [
        b"ascii-key-0123456789abcdef0123456789",
        "中文密钥：不是ASCII的钥匙".encode(),
        b"k" * 64,
        b"long-key-" * 20,
    ],
    ids=["ascii-key", "chinese-utf8-key", "key-of-exactly-one-block", "key-over-64-bytes-is-hashed-first"],
)
def test_hmac_sha256_hex_equals_python_keyed_hash_for_every_kind(spark, key):
    df = spark.createDataFrame([(v,) for v in VALUES] + [(None,)], "v string")
    result = df.select("v", *[hmac_sha256_hex(F.col("v"), key, kind).alias(kind) for kind in ("id", "prefix", "name")])
    expected = spark.createDataFrame(
        [(v, keyed_hash(key, "id", v), keyed_hash(key, "prefix", v), keyed_hash(key, "name", v)) for v in VALUES]
        + [(None, None, None, None)],
        "v string, id string, prefix string, name string",
    )
    assertDataFrameEqual(result, expected)


IDS = [
    "11010519491231002X",  # the standard's worked example
    make_id("440305", __import__("datetime").date(2000, 2, 29), 123),  # leap day exists in 2000
    "110105194912310021",  # wrong check character
    "110105194902300021",  # 1949-02-30 does not exist
    "110105190002290021",  # 1900 was not a leap year
    "110105194913310021",  # month 13
    "11010519491231002",  # 17 characters
    "11010519491231A02X",  # letter in the body
    "ABCDEFGHIJKLMNOPQR",  # 18 letters
]


def test_id_is_valid_agrees_with_python_is_valid(spark):
    df = spark.createDataFrame([(i,) for i in IDS], "id string")
    result = df.select("id", id_is_valid(F.col("id")).alias("valid"))
    expected = spark.createDataFrame([(i, is_valid(i)) for i in IDS], "id string, valid boolean")
    assertDataFrameEqual(result, expected)
    assert [i for i in IDS if is_valid(i)] == IDS[:2]  # the cases cover both outcomes


def test_id_is_valid_is_null_for_no_id(spark):
    assert spark.createDataFrame([(None,)], "id string").select(id_is_valid(F.col("id"))).first()[0] is None


QUERIES = [
    ("id=110105&name=%E5%91%A8%E6%9D%B0%E4%BC%A6", "110105", "周杰伦"),  # percent-encoded UTF-8
    ("name=Jackie+Chan&id=1", "1", "Jackie Chan"),  # '+' is a space
    ("xid=9&id=2&myname=no&name=yes", "2", "yes"),  # parameter names are matched whole
    ("id=&name=", None, None),  # empty values are absent
    ("other=1", None, None),  # absent
    ("name=%E5%91%A", None, "%E5%91%A"),  # broken escape: kept raw rather than failing the job
    ("id=1#frag&name=x", "1", "x"),
]


def test_query_param_decodes_values_and_treats_empty_as_absent(spark):
    df = spark.createDataFrame([(q,) for q, _, _ in QUERIES], "q string")
    result = df.select("q", query_param(F.col("q"), "id").alias("id"), query_param(F.col("q"), "name").alias("name"))
    expected = spark.createDataFrame(QUERIES, "q string, id string, name string")
    assertDataFrameEqual(result, expected)


def test_query_param_quotes_regex_characters_in_the_parameter_name(spark):
    df = spark.createDataFrame([("a.b=1&aXb=2",)], "q string")
    assert df.select(query_param(F.col("q"), "aXb"), query_param(F.col("q"), "a.b")).first() == ("2", "1")


def test_mask_digits_masks_runs_of_six_or_more_with_a_check_x(spark):
    texts = [
        ("okhttp/4.9.3 build 12345", "okhttp/4.9.3 build 12345"),  # five digits stay
        ("u159976144", "u******"),
        ("id 11010519491231002X end", "id ****** end"),
        ("a123456b1234567c", "a******b******c"),
    ]
    df = spark.createDataFrame([(t,) for t, _ in texts], "t string")
    assertDataFrameEqual(
        df.select("t", mask_digits(F.col("t")).alias("m")),
        spark.createDataFrame(texts, "t string, m string"),
    )


def test_mask_free_text_removes_lookup_values_escapes_non_ascii_and_digit_runs(spark):
    texts = [
        ('{"path":"/lookup?id=11010519491231002X&name=%E5%91%A8"}', '{"path":"/lookup?id=~&name=~"}'),
        ("NAME=Jackie+Chan other=1", "NAME=~ other=1"),
        ("raw 周杰伦 name", "raw ~ name"),
        ("escaped \\u5468\\u6770 name", "escaped \\u~ name"),
        ("percent %E5%91%A8 left", "percent %~ left"),
        ("number 110105194912310021", "number ******"),
    ]
    df = spark.createDataFrame([(t,) for t, _ in texts], "t string")
    assertDataFrameEqual(
        df.select("t", mask_free_text(F.col("t"), ("id", "name")).alias("m")),
        spark.createDataFrame(texts, "t string, m string"),
    )


def as_letters(hex_digits: str) -> str:
    return hex_digits.translate(str.maketrans("0123456789abcdef", "ghijklmnopqrstuv"))


def test_pseudonymize_identifier_replaces_only_values_carrying_an_id_like_number(spark):
    key = b"identifier-key-0123456789abcdef01"
    rows = ["u159976144", "110105194912310021", "dev-11010519491231002x", "203.0.113.7", None]
    df = spark.createDataFrame([(r,) for r in rows], "v string")
    result = df.select("v", pseudonymize_identifier(F.col("v"), key).alias("p"))
    expected = spark.createDataFrame(
        [
            ("u159976144", "u159976144"),  # 9 digits: an account number, not an ID
            ("110105194912310021", "pseud:" + as_letters(keyed_hash(key, "id", "110105194912310021")[:20])),
            ("dev-11010519491231002x", "pseud:" + as_letters(keyed_hash(key, "id", "dev-11010519491231002x")[:20])),
            ("203.0.113.7", "203.0.113.7"),
            (None, None),
        ],
        "v string, p string",
    )
    assertDataFrameEqual(result, expected)
    stand_ins = [p for (p,) in result.select("p").collect() if p and p.startswith("pseud:")]
    assert len(stand_ins) == 2 and not [p for p in stand_ins if any(ch.isdigit() for ch in p)]


def test_nfkc_trim_folds_full_width_and_compatibility_forms_and_trims(spark):
    names = [("ＪＡＣＫＩＥ　ＣＨＡＮ", "JACKIE CHAN"), ("\u3000周杰伦 ", "周杰伦"), ("\u2f08王", "人王"), (None, None)]
    df = spark.createDataFrame([(n,) for n, _ in names], "n string")
    assertDataFrameEqual(
        df.select("n", nfkc_trim(F.col("n")).alias("norm")),
        spark.createDataFrame(names, "n string, norm string"),
    )


def test_nfkc_trim_equals_python_normalize_name_for_ascii_and_non_ascii_text(spark):
    samples = [
        " plain ascii\t",
        "\x1c\x1fcontrol-space ascii\x0b",
        "ﬁ ligature ²",
        "\u00a0no-break\u2003em\u202f",
        "\x85next line\u2028\u2029",
        "\u3000全角\uff21\uff42\u3000",
        "e\u0301 combining",
        "\u2f08\u2fd4 radicals",
        "   ",
    ]
    df = spark.createDataFrame([(s,) for s in samples], "n string")
    result = dict(df.select("n", nfkc_trim(F.col("n"))).collect())
    assert result == {s: normalize_name(s) for s in samples}
