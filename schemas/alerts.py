"""The on-call outbox: one row per alert, with its delivery state."""

from __future__ import annotations

from schemas.detection import EVIDENCE
from schemas.table import Col, Table

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
            EVIDENCE,
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
