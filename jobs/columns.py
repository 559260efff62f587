"""Column -> Column helpers: keyed hashing, ID checks, query parameters and masking, all in Spark SQL.

Everything here runs in the JVM, no per-row Python: a Python UDF anywhere in the ingest plan costs
every row a trip through a Python worker (measured: it tripled the cost of the name column), so
even the NFKC fold, which Spark SQL lacks, calls ICU, which Spark ships for its collations.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

from core.pseudonym import message_prefix

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_BLOCK = 64


def hmac_sha256_hex(value: Column, key: bytes, kind: str) -> Column:
    """HMAC-SHA256 of `<kind><US><value>` as lower-case hex; equals `core.pseudonym.keyed_hash`."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    ipad = F.lit(bytes(b ^ 0x36 for b in key))
    opad = F.lit(bytes(b ^ 0x5C for b in key))
    message = F.encode(F.concat(F.lit(message_prefix(kind)), value), "UTF-8")
    inner = F.unhex(F.sha2(F.concat(ipad, message), 256))
    return F.when(value.isNotNull(), F.sha2(F.concat(opad, inner), 256))


def id_is_valid(id_norm: Column) -> Column:
    """GB 11643: 18 characters, 17 digits, a real YYYYMMDD date and the ISO 7064 MOD 11-2 check."""
    total = sum(F.substring(id_norm, i + 1, 1).cast("int") * w for i, w in enumerate(_WEIGHTS))
    expected = F.substring(F.lit(_CHECK), (total % 11 + 1).cast("int"), 1)
    shaped = id_norm.rlike(r"^[0-9]{17}[0-9X]$")
    real_date = F.try_to_timestamp(F.substring(id_norm, 7, 8), F.lit("yyyyMMdd")).isNotNull()
    return F.when(id_norm.isNull(), None).otherwise(
        F.coalesce(shaped & real_date & (F.substring(id_norm, 18, 1) == expected), F.lit(False))
    )


def query_param(query: Column, name: str) -> Column:
    """The URL-decoded value of query parameter `name` ('+' is a space), or null when absent or empty."""
    raw = F.regexp_extract(query, r"(?:^|&)\Q" + name + r"\E=([^&#]*)", 1)
    decoded = F.coalesce(F.try_url_decode(raw), raw)
    return F.when(raw != "", decoded)


ID_LIKE = r"[0-9]{17}[0-9Xx]|[0-9]{15,}"


def pseudonymize_identifier(value: Column, key: bytes) -> Column:
    """An identifier that carries an ID-like number is replaced whole by a keyed hash, keeping it distinct."""
    # Hex digits spelled as letters, so the stand-in can never itself look like a number.
    letters = F.translate(F.substring(hmac_sha256_hex(value, key, "id"), 1, 20), "0123456789abcdef", "ghijklmnopqrstuv")
    hashed = F.concat(F.lit("pseud:"), letters)
    return F.when(value.rlike(ID_LIKE), hashed).otherwise(value)


def mask_digits(text: Column) -> Column:
    """Replace every run of 6 or more digits (with a trailing check X) by '******'."""
    return F.regexp_replace(text, r"[0-9]{6,}[Xx]?", "******")


def mask_free_text(text: Column, params: tuple[str, ...]) -> Column:
    """Mask anything in raw text that could be an ID number or a name: digit runs, lookup values, non-ASCII."""
    alternatives = "|".join(r"\Q" + p + r"\E" for p in params)
    masked = F.regexp_replace(text, r"(?i)\b(" + alternatives + r")=[^&\s\"']*", "$1=~")
    masked = F.regexp_replace(masked, r"(%[0-9A-Fa-f]{2}){2,}", "%~")
    masked = F.regexp_replace(masked, r"(\\u[0-9A-Fa-f]{4})+", r"\\u~")
    masked = F.regexp_replace(masked, r"[^\x00-\x7F]+", "~")
    return mask_digits(masked)


# The characters Python's str.isspace() accepts, so the trim equals core.pseudonym's str.strip().
_SPACE = r"[\t\n\x{0B}\f\r\x{1C}-\x{1F} \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"


def nfkc_trim(names: Column) -> Column:
    """NFKC-normalize and trim as `core.pseudonym.normalize_name` does, in the JVM.

    ASCII text is its own NFKC form, so only non-ASCII names go through ICU's NFKC (Normalizer.compose
    with compatibility on). ICU may know a newer Unicode version than Python's unicodedata; the two
    agree on every character assigned in the older one.
    """
    nfkc = F.call_function("reflect", F.lit("com.ibm.icu.text.Normalizer"), F.lit("compose"), names, F.lit(True))
    folded = F.when(names.rlike(r"[^\x00-\x7F]"), nfkc).otherwise(names)
    return F.regexp_replace(folded, f"^{_SPACE}+|{_SPACE}+$", "")
