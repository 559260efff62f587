"""Column -> Column helpers: keyed hashing, ID checks, query parameters and masking, all in Spark SQL.

Everything here runs in the JVM (no per-row Python) except the NFKC fold, which Spark lacks.
"""

from __future__ import annotations

import hashlib

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

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


@F.pandas_udf(StringType())
def nfkc_trim(names: pd.Series) -> pd.Series:
    """NFKC-normalize and trim (Spark SQL has no Unicode normalization)."""
    return names.str.normalize("NFKC").str.strip()
