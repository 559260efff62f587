"""The tables ingest writes: parsed requests, quarantined lines, the file manifest, quality verdicts."""

from __future__ import annotations

from schemas.table import Col, Table

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
