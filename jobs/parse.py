"""Lines -> parsed requests or quarantine reasons, for the jsonl and the NCSA combined formats.

`classify` gives every line exactly one outcome: a request (reason null, blank false), a blank line
(blank true) or a quarantine reason. Nothing is dropped, so lines read = requests + quarantine + blank.
Spark 4 runs in ANSI mode, so every conversion here is a try_* function: bad input yields a reason,
never an exception that would stop the job.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

FORMATS = ("jsonl", "combined")
REQUIRED_JSON_FIELDS = ("ts", "client_ip", "path", "status")
OPTIONAL_STRING_FIELDS = ("request_id", "client_id", "device_id", "user_agent", "method")

# Quarantine reasons, with the detail shown to people. Values never appear in details.
REASONS = {
    "truncated_gzip": "the gzip stream ended early; lines before the break were kept",
    "corrupt_gzip": "the gzip stream is corrupt; lines before the corruption were kept",
    "unreadable": "the file could not be opened or read",
    "line_too_long": "line longer than max_line_bytes",
    "invalid_utf8": "line is not valid UTF-8",
    "invalid_json": "line is not valid JSON (truncated or junk)",
    "not_an_object": "JSON value is not an object",
    "bad_timestamp": "ts is neither RFC 3339 with an offset nor epoch milliseconds",
    "bad_status": "status is not an integer in 100-599",
    "implausible_timestamp": "event time outside the configured plausibility range",
    "combined_mismatch": "line does not match the NCSA combined/common log format",
    "bad_request_line": "request line is not 'METHOD URI [PROTOCOL]'",
}
for _field in REQUIRED_JSON_FIELDS:
    REASONS[f"missing_field:{_field}"] = f"required field '{_field}' is missing or null"

_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_EPOCH_MS = r"^\d{11,16}$"
_COMBINED = (
    r'^(\S+) \S+ (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\S+) (\S+)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?\s*$'
)
_REQUEST_LINE = r"^([A-Za-z]+) (\S+)(?: (\S+))?$"


def _first_reason(*checks: tuple[Column, str]) -> Column:
    """The reason of the first check that holds, else null."""
    expr = F.lit(None).cast("string")
    for cond, reason in reversed(checks):
        expr = F.when(cond, F.lit(reason)).otherwise(expr)
    return expr


def _status(text: Column) -> Column:
    return F.when(text.rlike(r"^\s*\d{1,3}\s*$"), F.trim(text).try_cast("int"))


def _unset_as_null(value: Column) -> Column:
    # nginx's escape=json logs an unset variable as "" (and many gateways as "-"): that is no value,
    # not one shared client called "".
    return F.when(~F.trim(value).isin("", "-"), value)


# Every field as text (a JSON number or object as its JSON text), converted below with try_* casts.
_FIELDS_AS_TEXT = StructType(
    [StructField(f, StringType()) for f in (*REQUIRED_JSON_FIELDS, "bytes_sent", "latency_ms", *OPTIONAL_STRING_FIELDS)]
)


def _json_fields(df: DataFrame) -> DataFrame:
    """Fields of a jsonl line; `try_parse_json` judges whether the line is JSON at all.

    The fields are read with `from_json` into text, not with `try_variant_get`: the variant reader
    builds a cast expression for every value it returns, which cost a fifth of the ingest job's time.
    """
    v = F.col("_v")
    text_fields = F.col("_f")

    def get(field: str, type_: str = "string") -> Column:
        value = text_fields[field]
        if type_ == "bigint":  # an integral number, or a fraction cut to its whole part, as the variant cast did
            return F.coalesce(value.try_cast("bigint"), value.try_cast("double").try_cast("bigint"))
        return value if type_ == "string" else value.try_cast(type_)

    ts = get("ts")
    # RFC 3339 allows a lower-case "t" and "z", which Spark's parser does not.
    event_time = F.when(ts.rlike(_RFC3339), F.try_to_timestamp(F.upper(ts))).when(
        ts.rlike(_EPOCH_MS), F.timestamp_millis(ts.try_cast("bigint"))
    )
    df = df.withColumn("_v", F.try_parse_json(F.col("_text"))).withColumn("_f", F.from_json("_text", _FIELDS_AS_TEXT))
    fields = {
        "event_time": event_time,
        "client_ip": get("client_ip"),
        "uri": get("path"),
        "status": _status(get("status")),
        "bytes_sent": get("bytes_sent", "bigint"),
        "latency_ms": get("latency_ms", "double"),
        **{f: _unset_as_null(get(f)) for f in OPTIONAL_STRING_FIELDS},
    }
    missing = [(get(f).isNull() | (F.trim(get(f)) == ""), f"missing_field:{f}") for f in REQUIRED_JSON_FIELDS]
    reason = _first_reason(
        (v.isNull(), "invalid_json"),
        (~F.col("_text").rlike(r"^\s*\{"), "not_an_object"),
        *missing,
        (fields["event_time"].isNull(), "bad_timestamp"),
        (fields["status"].isNull(), "bad_status"),
    )
    return df.select("*", *[c.alias(n) for n, c in fields.items()], reason.alias("_reason")).drop("_v", "_f")


def _combined_fields(df: DataFrame) -> DataFrame:
    text = F.col("_text")

    def group(i: int, source: Column = text, pattern: str = _COMBINED) -> Column:
        return F.regexp_extract(source, pattern, i)

    request = group(4)
    status_text = group(5)
    size = group(6)
    user_agent = group(8)
    fields = {
        "event_time": F.try_to_timestamp(group(3), F.lit("dd/MMM/yyyy:HH:mm:ss Z")),
        "client_ip": group(1),
        "uri": group(2, request, _REQUEST_LINE),
        "status": _status(status_text),
        "bytes_sent": F.when(size.rlike(r"^\d+$"), size.try_cast("bigint")),
        "latency_ms": F.lit(None).cast("double"),
        "request_id": F.lit(None).cast("string"),
        "client_id": F.when(~group(2).isin("-", ""), group(2)),
        "device_id": F.lit(None).cast("string"),
        "user_agent": F.when(~user_agent.isin("-", ""), user_agent),
        "method": F.upper(group(1, request, _REQUEST_LINE)),
    }
    reason = _first_reason(
        (~text.rlike(_COMBINED), "combined_mismatch"),
        (~request.rlike(_REQUEST_LINE), "bad_request_line"),
        (fields["event_time"].isNull(), "bad_timestamp"),
        (fields["status"].isNull(), "bad_status"),
    )
    return df.select("*", *[c.alias(n) for n, c in fields.items()], reason.alias("_reason"))


def classify(
    lines: DataFrame,
    fmt: str,
    *,
    max_line_bytes: int,
    min_event_time: datetime,
    max_event_time: datetime,
) -> DataFrame:
    """Add parsed fields plus `reason` (quarantine) and `blank` to every line of `schemas.LINES`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    df = lines.withColumn("_text", F.col("line").cast("string"))
    df = _json_fields(df) if fmt == "jsonl" else _combined_fields(df)
    # Any whitespace, not just spaces (F.trim): a tab-only line is blank, not invalid JSON.
    blank = F.col("read_error").isNull() & (F.col("line_bytes") <= max_line_bytes) & F.col("_text").rlike(r"^\s*$")
    status_ok = F.col("status").between(100, 599)
    plausible = F.col("event_time").between(F.lit(min_event_time), F.lit(max_event_time))
    reason = _first_reason(
        (F.col("read_error").isNotNull(), "__read_error__"),
        (F.col("line_bytes") > max_line_bytes, "line_too_long"),
        (~F.is_valid_utf8(F.col("_text")), "invalid_utf8"),
        (blank, "__blank__"),
        (F.col("_reason").isNotNull(), "__parse__"),
        (~status_ok, "bad_status"),
        (~plausible, "implausible_timestamp"),
    )
    reason = (
        F.when(reason == "__read_error__", F.col("read_error"))
        .when(reason == "__parse__", F.col("_reason"))
        .when(reason == "__blank__", F.lit(None))
        .otherwise(reason)
    )
    return df.withColumn("blank", blank).withColumn("reason", reason).drop("_reason")
