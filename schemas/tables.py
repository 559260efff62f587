"""Every lake table's columns, types and one-line meanings, in one place.

Jobs select exactly these columns in this order before writing, readers apply these schemas when
reading (so an empty table still has its columns), and `enumwatch schema` / the README render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import types as T

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_PRIMITIVES = {
    "string": T.StringType(),
    "binary": T.BinaryType(),
    "boolean": T.BooleanType(),
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


def spark_type(ddl: str) -> T.DataType:
    """Parse the small DDL subset the schemas use (primitives, array<>, map<,>, struct<>) without a JVM."""
    ddl = ddl.strip()
    if ddl in _PRIMITIVES:
        return _PRIMITIVES[ddl]
    if ddl.startswith("array<") and ddl.endswith(">"):
        return T.ArrayType(spark_type(ddl[6:-1]))
    if ddl.startswith("map<") and ddl.endswith(">"):
        key, value = _split_top(ddl[4:-1])
        return T.MapType(spark_type(key), spark_type(value))
    if ddl.startswith("struct<") and ddl.endswith(">"):
        fields = [f.split(":", 1) for f in _split_top(ddl[7:-1])]
        return T.StructType([T.StructField(n.strip(), spark_type(t)) for n, t in fields])
    raise ValueError(f"unsupported column type {ddl!r}")


@dataclass(frozen=True)
class Col:
    """One column: name, Spark SQL type, whether it may be null, and what it means."""

    name: str
    type: str
    doc: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    """A lake table: its columns, its partition columns and what one row is."""

    name: str
    doc: str
    columns: tuple[Col, ...]
    partition_by: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Column names in storage order."""
        return [c.name for c in self.columns]

    def spark_schema(self) -> T.StructType:
        """The Spark schema of the table, partition columns included."""
        return T.StructType([T.StructField(c.name, spark_type(c.type), c.nullable) for c in self.columns])

    def conform(self, df: DataFrame) -> DataFrame:
        """`df` with exactly this table's columns, in order, cast to their declared types."""
        from pyspark.sql import functions as F

        return df.select(*[F.col(c.name).cast(spark_type(c.type)).alias(c.name) for c in self.columns])

    def markdown(self) -> str:
        """A Markdown table of the columns, for the README and docs."""
        rows = [f"| `{c.name}` | {c.type} | {'' if c.nullable else 'yes'} | {c.doc} |" for c in self.columns]
        head = ["| column | type | required | meaning |", "|---|---|---|---|"]
        return "\n".join(head + rows)


_PROVENANCE = (
    Col("source_file", "string", "Absolute path of the file the line came from.", False),
    Col("line_no", "bigint", "1-based line number in the (decompressed) file.", False),
    Col("ingest_run_id", "string", "The ingest run that wrote this row.", False),
)

REQUESTS = Table(
    "requests",
    "One row per parsed request line. Lookup values are replaced by keyed hashes at the door.",
    (
        Col("event_time", "timestamp", "When the request happened, UTC.", False),
        Col("client_ip", "string", "Remote address of the client.", False),
        Col("client_id", "string", "Authenticated client/account id, when the gateway logs one."),
        Col("device_id", "string", "Device fingerprint, when logged."),
        Col("request_id", "string", "Gateway request id, when logged."),
        Col("method", "string", "HTTP method."),
        Col("path", "string", "Request path without the query string; 6+ digit runs masked.", False),
        Col("query_redacted", "string", "Query string with lookup values removed and 6+ digit runs masked."),
        Col("status", "int", "HTTP status code, 100-599.", False),
        Col("bytes_sent", "bigint", "Response size in bytes, when logged."),
        Col("latency_ms", "double", "Response time in milliseconds, when logged."),
        Col("user_agent", "string", "User agent; 6+ digit runs masked."),
        Col("is_lookup", "boolean", "The request hit the configured lookup endpoint.", False),
        Col("id_hash", "string", "HMAC-SHA256 (hex) of the normalized ID number looked up."),
        Col("id_prefix_hash", "string", "HMAC of the ID's first 14 characters (region + birth date)."),
        Col("id_seq", "int", "The ID's 3-digit sequence number (positions 15-17), when numeric."),
        Col("id_valid", "boolean", "The ID passes GB 11643: 18 characters, a real date, MOD 11-2 check."),
        Col("id_masked", "string", "The ID with everything after the 6-digit region masked."),
        Col("name_hash", "string", "HMAC-SHA256 (hex) of the NFKC-normalized, trimmed name looked up."),
        Col("watchlist_key", "string", "Handle of the watchlist entry the name matched, if any."),
        *_PROVENANCE,
        Col("event_date", "date", "UTC date of event_time (partition).", False),
    ),
    partition_by=("event_date",),
)

QUARANTINE = Table(
    "quarantine",
    "One row per input line that could not be parsed, with the reason.",
    (
        Col("reason", "string", "Machine-readable reason, e.g. invalid_json, missing_field:status.", False),
        Col("detail", "string", "Human-readable detail of the reason."),
        Col(
            "line_masked", "string", "The line, truncated to 512 characters, digit runs of 6+ and lookup values masked."
        ),
        Col("line_bytes", "bigint", "Length of the original line in bytes.", False),
        *_PROVENANCE,
        Col("ingest_date", "date", "UTC date of the ingest run (partition).", False),
    ),
    partition_by=("ingest_date",),
)

INGEST_MANIFEST = Table(
    "ingest_manifest",
    "One row per source file ingested: what was read and where it went.",
    (
        Col("source_file", "string", "Absolute path of the file.", False),
        Col("size_bytes", "bigint", "File size when ingested.", False),
        Col("sha256", "string", "SHA-256 of the file's bytes when ingested.", False),
        Col("format", "string", "Input format: jsonl or combined.", False),
        Col("lines_read", "bigint", "Lines read, blank lines and the gzip break marker included.", False),
        Col("lines_parsed", "bigint", "Lines written to requests.", False),
        Col("lines_quarantined", "bigint", "Lines written to quarantine.", False),
        Col("lines_blank", "bigint", "Blank lines, counted and skipped.", False),
        Col("read_error", "string", "Set when the file could not be read to the end, e.g. truncated_gzip."),
        Col("ingest_run_id", "string", "The run that ingested this version of the file.", False),
        Col("ingested_at", "timestamp", "When that run published, UTC.", False),
    ),
)

DQ_RESULTS = Table(
    "dq_results",
    "One row per expectation per validation: every data-quality verdict ever reached.",
    (
        Col("run_id", "string", "The run whose data was validated.", False),
        Col("stage", "string", "Pipeline stage, e.g. ingest.", False),
        Col("suite", "string", "GX expectation suite name.", False),
        Col(
            "expectation",
            "string",
            "Expectation type and its column, e.g. expect_column_values_to_not_be_null(status).",
            False,
        ),
        Col("severity", "string", "critical (fails the stage) or warning.", False),
        Col("success", "boolean", "Whether the expectation held.", False),
        Col("observed_value", "string", "What was observed (count, share, value), as text."),
        Col("unexpected_count", "bigint", "Rows that broke the expectation, when it is row-wise."),
        Col("validated_at", "timestamp", "When the validation ran, UTC.", False),
    ),
)

_ENTITY = (
    Col("entity_type", "string", "client_id, device_id or client_ip (the IP keys anonymous traffic only).", False),
    Col("entity_value", "string", "The client id, device id or IP.", False),
)

LOOKUPS = Table(
    "lookups",
    "One row per lookup request, keyed to the entity that made it (client_id, else device_id, else IP).",
    (
        Col("event_time", "timestamp", "When the lookup happened, UTC.", False),
        Col("event_hour", "timestamp", "event_time truncated to the hour.", False),
        *_ENTITY,
        Col("client_id", "string", "Client id, when logged."),
        Col("device_id", "string", "Device fingerprint, when logged."),
        Col("client_ip", "string", "Remote address.", False),
        Col("ip_24", "string", "The IPv4 /24 of client_ip, e.g. 203.0.113.0/24."),
        Col("user_agent", "string", "User agent (masked at ingest)."),
        Col("status", "int", "HTTP status.", False),
        Col("hit", "boolean", "Data was returned (status 200).", False),
        Col("miss", "boolean", "Nothing was found (status 404).", False),
        Col("id_hash", "string", "Keyed hash of the ID number looked up."),
        Col("id_prefix_hash", "string", "Keyed hash of its region + birth date prefix."),
        Col("id_seq", "int", "Its 3-digit sequence number."),
        Col("id_valid", "boolean", "It passes the GB 11643 check."),
        Col("id_masked", "string", "Region-only masked sample of it."),
        Col("name_hash", "string", "Keyed hash of the name looked up."),
        Col("watchlist_key", "string", "Watchlist entry the name matched."),
        Col("source_file", "string", "Provenance: source file.", False),
        Col("line_no", "bigint", "Provenance: line number.", False),
        Col("event_date", "date", "UTC date (partition).", False),
    ),
    partition_by=("event_date",),
)

ENTITY_HOURS = Table(
    "entity_hours",
    "One row per entity per hour: counts and mergeable HLL sketches that day and 7-day windows are built from.",
    (
        *_ENTITY,
        Col("hour_start", "timestamp", "Start of the hour, UTC.", False),
        Col("lookups", "bigint", "Lookups in the hour.", False),
        Col("hits", "bigint", "Lookups that returned data (200).", False),
        Col("misses", "bigint", "Lookups that found nothing (404).", False),
        Col("id_lookups", "bigint", "Lookups that carried an ID number.", False),
        Col("invalid_ids", "bigint", "Lookups whose ID number failed the GB 11643 check.", False),
        Col("sketch_ids", "binary", "HLL sketch of id_hash."),
        Col("sketch_names", "binary", "HLL sketch of name_hash."),
        Col("sketch_watchlist", "binary", "HLL sketch of watchlist_key."),
        Col("sketch_clients", "binary", "HLL sketch of client_id."),
        Col("sketch_devices", "binary", "HLL sketch of device_id."),
        Col("sketch_ips", "binary", "HLL sketch of client_ip."),
        Col("watchlist_keys", "array<string>", "Watchlist entries looked up."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned."),
        Col("id_samples", "array<string>", "Up to 5 region-only masked ID samples."),
        Col("first_seen", "timestamp", "First lookup in the hour.", False),
        Col("last_seen", "timestamp", "Last lookup in the hour.", False),
        Col("event_date", "date", "UTC date (partition).", False),
    ),
    partition_by=("event_date",),
)

ENTITY_PREFIX_HOURS = Table(
    "entity_prefix_hours",
    "One row per entity, hour and ID prefix: the exact set of sequence numbers tried under the prefix.",
    (
        *_ENTITY,
        Col("hour_start", "timestamp", "Start of the hour, UTC.", False),
        Col("id_prefix_hash", "string", "Keyed hash of the region + birth date prefix.", False),
        Col("seqs", "array<int>", "Distinct sequence numbers tried (at most 1000).", False),
        Col("event_date", "date", "UTC date (partition).", False),
    ),
    partition_by=("event_date",),
)

ENTITY_WINDOWS = Table(
    "entity_windows",
    "One row per entity per window (hour, day, sliding 7 days ending on a day): the features rules read.",
    (
        *_ENTITY,
        Col("window", "string", "hour, day or 7d.", False),
        Col("window_start", "timestamp", "Window start, UTC (inclusive).", False),
        Col("window_end", "timestamp", "Window end, UTC (exclusive).", False),
        Col("lookups", "bigint", "Lookups in the window.", False),
        Col("distinct_ids", "bigint", "Distinct ID numbers (HLL estimate, at most lookups).", False),
        Col("distinct_names", "bigint", "Distinct names (HLL estimate, at most lookups).", False),
        Col("distinct_watchlist", "bigint", "Distinct watchlist people looked up.", False),
        Col("hits", "bigint", "Lookups that returned data.", False),
        Col("misses", "bigint", "Lookups that found nothing.", False),
        Col("miss_share", "double", "misses / lookups.", False),
        Col("invalid_id_share", "double", "Share of ID lookups failing the GB 11643 check.", False),
        Col("max_seqs_per_prefix", "bigint", "Most distinct sequence numbers tried under one prefix.", False),
        Col("consecutive_share", "double", "Share of tried sequence numbers whose predecessor was also tried.", False),
        Col("distinct_clients", "bigint", "Distinct client ids linked to the entity.", False),
        Col("distinct_devices", "bigint", "Distinct devices linked to the entity.", False),
        Col("distinct_ips", "bigint", "Distinct IPs linked to the entity.", False),
        Col("active_days", "bigint", "Days with lookups in the window.", False),
        Col("watchlist_keys", "array<string>", "Watchlist entries looked up."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned."),
        Col("first_seen", "timestamp", "First lookup in the window.", False),
        Col("last_seen", "timestamp", "Last lookup in the window.", False),
        Col("window_date", "date", "UTC date of window_start (partition).", False),
    ),
    partition_by=("window", "window_date"),
)

_EVIDENCE = (
    "array<struct<rule:string,shadow:boolean,window:string,window_start:timestamp,window_end:timestamp,"
    "observed:map<string,double>,threshold:map<string,double>,watchlist_keys:array<string>>>"
)

FLAGGED_CLIENTS = Table(
    "flagged_clients",
    "One row per flagged entity per detection run, with severity, score and the evidence for each rule.",
    (
        Col("detect_run_id", "string", "The detection run.", False),
        Col("detected_at", "timestamp", "When the run published, UTC.", False),
        Col("entity_type", "string", "client_id, device_id, client_ip or campaign.", False),
        Col("entity_value", "string", "The entity; for a campaign, the shared device id or /24.", False),
        Col("members", "array<string>", "For a campaign, its client ids."),
        Col("severity", "string", "low, medium, high or critical.", False),
        Col("score", "int", "0-100.", False),
        Col("rules", "array<string>", "Names of the rules that fired.", False),
        Col("shadow", "boolean", "Only shadow rules fired: recorded, never alerted.", False),
        Col("first_seen", "timestamp", "First lookup by the entity.", False),
        Col("last_seen", "timestamp", "Last lookup by the entity.", False),
        Col("lookups", "bigint", "Lookups by the entity in the detection range.", False),
        Col("distinct_ids", "bigint", "Distinct ID numbers (HLL estimate).", False),
        Col("distinct_names", "bigint", "Distinct names (HLL estimate).", False),
        Col("distinct_watchlist", "bigint", "Distinct watchlist people looked up.", False),
        Col("hits", "bigint", "Lookups that returned data.", False),
        Col("hit_ratio", "double", "hits / lookups.", False),
        Col("watchlist_keys", "array<string>", "Watchlist entries targeted (names resolved only when shown)."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned."),
        Col("masked_id_samples", "array<string>", "Up to 5 ID samples masked at ingest (region only)."),
        Col("evidence", _EVIDENCE, "Per rule and window: observed values against thresholds.", False),
        Col("detect_date", "date", "UTC date of the run (partition).", False),
    ),
    partition_by=("detect_date",),
)

CAMPAIGNS = Table(
    "campaigns",
    "Groups of accounts acting together, with the attribute that links them; one row per campaign per run.",
    (
        Col("detect_run_id", "string", "The detection run.", False),
        Col("rule", "string", "The campaign rule that fired.", False),
        Col("link", "string", "device_id or subnet_user_agent.", False),
        Col("link_value", "string", "The shared device id, or the /24.", False),
        Col("user_agent", "string", "The shared user agent, for subnet campaigns."),
        Col("members", "array<string>", "Client ids in the campaign (at most 1000).", False),
        Col("n_members", "bigint", "Number of client ids.", False),
        Col("lookups", "bigint", "Lookups by all members.", False),
        Col("distinct_ids", "bigint", "Distinct ID numbers over all members (HLL).", False),
        Col("hits", "bigint", "Lookups that returned data.", False),
        Col("member_median_ids", "double", "Median distinct IDs per member."),
        Col("disjointness", "double", "Union of targets / sum of per-member targets (1 = fully disjoint)."),
        Col("first_seen", "timestamp", "First lookup by a member.", False),
        Col("last_seen", "timestamp", "Last lookup by a member.", False),
        Col("detect_date", "date", "UTC date of the run (partition).", False),
    ),
    partition_by=("detect_date",),
)

ALLOWLISTED_HITS = Table(
    "allowlisted_hits",
    "Allowlisted entities that would have been flagged: for audit, never sent to on-call.",
    tuple(c for c in FLAGGED_CLIENTS.columns if c.name != "detect_date")
    + (Col("allow_reason", "string", "Why the entity is allowlisted.", False), FLAGGED_CLIENTS.columns[-1]),
    partition_by=("detect_date",),
)

EXPOSURES = Table(
    "exposures",
    "Watchlist people whose data was returned (a hit) to a flagged entity: who got it and when, per run.",
    (
        Col("detect_run_id", "string", "The detection run that found the exposure.", False),
        Col(
            "watchlist_key",
            "string",
            "Handle of the watchlist person (names are resolved from the watchlist file).",
            False,
        ),
        Col("entity_type", "string", "client_id, device_id or client_ip that received the data.", False),
        Col("entity_value", "string", "The entity that received the data.", False),
        Col("campaign", "string", "The flagged campaign the entity belongs to, if it was flagged through one."),
        Col("severity", "string", "Severity of the flag.", False),
        Col("hits", "bigint", "Lookups of this person that returned data to the entity.", False),
        Col("first_hit", "timestamp", "First time the data was returned, UTC.", False),
        Col("last_hit", "timestamp", "Last time the data was returned, UTC.", False),
        Col("detect_date", "date", "UTC date of the run (partition).", False),
    ),
    partition_by=("detect_date",),
)

DETECT_RUNS = Table(
    "detect_runs",
    "One row per detection run: what it covered, so the next run recomputes only what new data touched.",
    (
        Col("detect_run_id", "string", "The detection run.", False),
        Col("mode", "string", "full, incremental or backfill.", False),
        Col("detected_at", "timestamp", "When it ran, UTC.", False),
        Col("ingest_runs", "array<string>", "Ingest runs whose requests it took in.", False),
        Col("dates", "array<date>", "Event dates whose lookups, hours and hour/day windows it recomputed.", False),
        Col("window_ends", "array<date>", "Days whose 7-day windows it recomputed.", False),
    ),
)

ALERTS = Table(
    "alerts",
    "On-call outbox: one row per alert sent (or still to send) about a flagged entity, with its delivery state.",
    (
        Col("alert_id", "string", "Stable id: the detection run and the entity, hashed (al-...).", False),
        Col("detect_run_id", "string", "The detection run whose flag raised the alert.", False),
        Col("created_at", "timestamp", "When the alert was raised, UTC.", False),
        Col("reason", "string", "new, severity_rose, or repeat (still flagged after the suppression window).", False),
        Col("previous_severity", "string", "Severity of the entity's previous alert, if any."),
        Col("entity_type", "string", "client_id, device_id, client_ip or campaign.", False),
        Col("entity_value", "string", "The entity; for a campaign, the shared device id or /24.", False),
        Col("members", "array<string>", "For a campaign, its client ids."),
        Col("severity", "string", "low, medium, high or critical.", False),
        Col("score", "int", "0-100.", False),
        Col("rules", "array<string>", "Names of the rules that fired.", False),
        Col("summary", "string", "One line for people; counts and handles only, never watchlist names.", False),
        Col(
            "evidence",
            _EVIDENCE,
            "Per rule and window: observed values against thresholds (as in flagged_clients).",
            False,
        ),
        Col("lookups", "bigint", "Lookups by the entity in the detection range.", False),
        Col("distinct_ids", "bigint", "Distinct ID numbers (HLL estimate).", False),
        Col("hits", "bigint", "Lookups that returned data.", False),
        Col(
            "watchlist_keys",
            "array<string>",
            "Watchlist handles targeted (names resolved only when a message is rendered).",
        ),
        Col("watchlist_hit_keys", "array<string>", "Watchlist handles whose data was returned."),
        Col("first_seen", "timestamp", "First lookup by the entity.", False),
        Col("last_seen", "timestamp", "Last lookup by the entity.", False),
        Col("investigate", "string", "The command that shows the entity in full.", False),
        Col("status", "string", "pending (not tried yet), delivered, or failed (retried on the next run).", False),
        Col("channel", "string", "Where it was delivered: webhook, or file when no webhook is configured."),
        Col("attempts", "int", "Delivery attempts so far (HTTP requests).", False),
        Col("last_error", "string", "The last delivery error, with the webhook's address (its path redacted)."),
        Col("last_attempt_at", "timestamp", "When delivery was last tried, UTC."),
        Col("delivered_at", "timestamp", "When it was delivered, UTC."),
    ),
)

LAKE_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        REQUESTS,
        QUARANTINE,
        INGEST_MANIFEST,
        DQ_RESULTS,
        LOOKUPS,
        ENTITY_HOURS,
        ENTITY_PREFIX_HOURS,
        ENTITY_WINDOWS,
        FLAGGED_CLIENTS,
        CAMPAIGNS,
        ALLOWLISTED_HITS,
        EXPOSURES,
        DETECT_RUNS,
        ALERTS,
    )
}

# The reader's output: one row per physical line, before parsing. Not a lake table.
LINES = Table(
    "lines",
    "Raw lines as read from the source files (internal to the ingest job).",
    (
        Col("source_file", "string", "Absolute path of the file.", False),
        Col("line_no", "bigint", "1-based line number.", False),
        Col("line", "binary", "The line's bytes without the newline (cut after max_line_bytes)."),
        Col("line_bytes", "bigint", "Length of the whole line in bytes.", False),
        Col("read_error", "string", "Set on the marker row of a file that broke off: truncated_gzip, unreadable."),
    ),
)
