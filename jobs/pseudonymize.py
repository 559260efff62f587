"""Parsed requests -> the `requests` table: lookup values become keyed hashes before anything is stored.

The raw ID number and name exist only inside this transform's expressions; the output columns hold
hashes, the ID's sequence digits, a validity flag and a masked sample (region only).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from core.settings import LookupSpec
from core.watchlist import WatchlistEntry
from jobs.columns import (
    hmac_sha256_hex,
    id_is_valid,
    mask_digits,
    mask_free_text,
    nfkc_trim,
    pseudonymize_identifier,
    query_param,
)
from schemas import REQUESTS


def watchlist_frame(spark: SparkSession, entries: list[WatchlistEntry]) -> DataFrame:
    """The watchlist as (name_hash, watchlist_key): hashes only, names stay on the driver."""
    return spark.createDataFrame([(e.name_hash, e.key) for e in entries], "wl_name_hash string, watchlist_key string")


def pseudonymize(
    parsed: DataFrame, *, key: bytes, lookup: LookupSpec, watchlist: DataFrame, keep: tuple[str, ...] = ()
) -> DataFrame:
    """Split the URI, hash lookup values, flag ID validity and attach the watchlist entry; `keep` passes through."""
    uri = F.col("uri")
    path = F.regexp_extract(uri, r"^([^?#]*)", 1)
    query = F.regexp_extract(uri, r"^[^?#]*\?([^#]*)", 1)
    endpoint = lookup.endpoint.rstrip("/")
    df = parsed.withColumn("_path", path).withColumn("_query", query)
    is_lookup = F.regexp_replace(F.col("_path"), "/+$", "") == endpoint
    raw_id = F.when(is_lookup, query_param(F.col("_query"), lookup.id_param))
    raw_name = F.when(is_lookup, query_param(F.col("_query"), lookup.name_param))
    df = df.withColumn("is_lookup", is_lookup).withColumn("_id", F.upper(F.regexp_replace(raw_id, r"^\s+|\s+$", "")))
    df = df.withColumn("_name", nfkc_trim(raw_name))
    df = df.withColumn("_name", F.when(F.col("_name") != "", F.col("_name")))
    id_ = F.col("_id")
    df = df.select(
        "*",
        hmac_sha256_hex(id_, key, "id").alias("id_hash"),
        hmac_sha256_hex(F.when(F.length(id_) >= 14, F.substring(id_, 1, 14)), key, "prefix").alias("id_prefix_hash"),
        F.when(F.length(id_) == 18, F.substring(id_, 15, 3).try_cast("int")).alias("id_seq"),
        id_is_valid(id_).alias("id_valid"),
        F.when(F.length(id_) == 18, F.concat(F.substring(id_, 1, 6), F.lit("*" * 12)))
        .when(id_.isNotNull(), F.repeat(F.lit("*"), F.least(F.length(id_), F.lit(18))))
        .alias("id_masked"),
        hmac_sha256_hex(F.col("_name"), key, "name").alias("name_hash"),
    )
    df = df.join(F.broadcast(watchlist), F.col("name_hash") == F.col("wl_name_hash"), "left")
    params = (lookup.id_param, lookup.name_param)
    redacted_query = F.regexp_replace(
        F.col("_query"), r"(^|&)(\Q" + lookup.id_param + r"\E|\Q" + lookup.name_param + r"\E)=[^&]*", "$1$2=~"
    )
    return df.select(
        F.col("event_time"),
        pseudonymize_identifier(F.col("client_ip"), key).alias("client_ip"),
        pseudonymize_identifier(F.col("client_id"), key).alias("client_id"),
        pseudonymize_identifier(F.col("device_id"), key).alias("device_id"),
        pseudonymize_identifier(F.col("request_id"), key).alias("request_id"),
        F.col("method"),
        mask_free_text(F.col("_path"), params).alias("path"),
        F.when(F.col("_query") != "", mask_free_text(redacted_query, params)).alias("query_redacted"),
        F.col("status"),
        F.col("bytes_sent"),
        F.col("latency_ms"),
        mask_digits(F.col("user_agent")).alias("user_agent"),
        F.col("is_lookup"),
        "id_hash",
        "id_prefix_hash",
        "id_seq",
        "id_valid",
        "id_masked",
        "name_hash",
        "watchlist_key",
        "source_file",
        "line_no",
        "ingest_run_id",
        F.to_date(F.col("event_time")).alias("event_date"),
        *keep,
    ).select(*REQUESTS.names, *keep)
