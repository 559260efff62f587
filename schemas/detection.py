"""The tables detection writes: lookups, per-entity sketches and windows, flags, campaigns, exposures, runs."""

from __future__ import annotations

from schemas.table import Col, Table

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


def _entity_measures(span: str) -> tuple[Col, ...]:
    """The counts, sketches and sets an entity's row holds for one hour or one day."""
    return (
        Col("lookups", "bigint", f"Lookups in the {span}.", False),
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
        Col("watchlist_keys", "array<string>", "Watchlist entries looked up (sorted)."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned (sorted)."),
        Col("id_samples", "array<string>", "Up to 5 region-only masked ID samples, the first in sort order."),
        Col("first_seen", "timestamp", f"First lookup in the {span}.", False),
        Col("last_seen", "timestamp", f"Last lookup in the {span}.", False),
    )


_EVENT_DATE = Col("event_date", "date", "UTC date (partition).", False)
_SEQS = (
    Col("id_prefix_hash", "string", "Keyed hash of the region + birth date prefix.", False),
    Col("seqs", "array<int>", "Distinct sequence numbers tried (at most 1000; sorted).", False),
)

ENTITY_HOURS = Table(
    "entity_hours",
    "One row per entity per hour: counts and mergeable HLL sketches, merged into entity_days.",
    (
        *_ENTITY,
        Col("hour_start", "timestamp", "Start of the hour, UTC.", False),
        *_entity_measures("hour"),
        _EVENT_DATE,
    ),
    partition_by=("event_date",),
)

ENTITY_PREFIX_HOURS = Table(
    "entity_prefix_hours",
    "One row per entity, hour and ID prefix: the exact set of sequence numbers tried under the prefix.",
    (*_ENTITY, Col("hour_start", "timestamp", "Start of the hour, UTC.", False), *_SEQS, _EVENT_DATE),
    partition_by=("event_date",),
)

ENTITY_DAYS = Table(
    "entity_days",
    "One row per entity per day: its hours merged. Day and 7-day windows are built from these rows, so an "
    "incremental run merges stored days instead of their hours.",
    (*_ENTITY, *_entity_measures("day"), _EVENT_DATE),
    partition_by=("event_date",),
)

ENTITY_PREFIX_DAYS = Table(
    "entity_prefix_days",
    "One row per entity, day and ID prefix: the sequence numbers tried under the prefix that day.",
    (*_ENTITY, *_SEQS, _EVENT_DATE),
    partition_by=("event_date",),
)

CAMPAIGN_MEMBER_DAYS = Table(
    "campaign_member_days",
    "One row per day, account and link values (device, network, user agent): what campaign rules merge "
    "over the days a detection covers. Counts, sketches and sets cover lookups with an ID number or a "
    "watchlist person; an account's other lookups leave rows with no counts (they still tell its user agent).",
    (
        Col("client_id", "string", "The account.", False),
        Col("device_id", "string", "Device fingerprint, when logged."),
        Col("net", "string", "The /24 (IPv4) or /64 (IPv6) of the remote address."),
        Col("user_agent", "string", "User agent (masked at ingest), when logged."),
        Col("lookups", "bigint", "Lookups that carried an ID number or a watchlist person.", False),
        Col("hits", "bigint", "Of those, lookups that returned data.", False),
        Col("sketch_ids", "binary", "HLL sketch of id_hash."),
        Col("sketch_watchlist", "binary", "HLL sketch of watchlist_key."),
        Col("watchlist_keys", "array<string>", "Watchlist entries looked up (sorted)."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned (sorted)."),
        Col("first_seen", "timestamp", "First of those lookups (null when there is none)."),
        Col("last_seen", "timestamp", "Last of those lookups (null when there is none)."),
        _EVENT_DATE,
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
        Col("watchlist_keys", "array<string>", "Watchlist entries looked up (sorted)."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned (sorted)."),
        Col("first_seen", "timestamp", "First lookup in the window.", False),
        Col("last_seen", "timestamp", "Last lookup in the window.", False),
        Col("window_date", "date", "UTC date of window_start (partition).", False),
    ),
    partition_by=("window", "window_date"),
)

# The type of a flag's evidence list; the alerts outbox carries the same.
EVIDENCE = (
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
        Col("members", "array<string>", "For a campaign, its client ids (sorted)."),
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
        Col("watchlist_keys", "array<string>", "Watchlist entries targeted (names resolved only when shown; sorted)."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned (sorted)."),
        Col(
            "masked_id_samples",
            "array<string>",
            "Up to 5 ID samples masked at ingest (region only), the first in sort order.",
        ),
        Col("evidence", EVIDENCE, "Per rule and window: observed values against thresholds.", False),
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
        Col("link", "string", "device_id, subnet_user_agent or user_agent_start.", False),
        Col(
            "link_value",
            "string",
            "The shared device id; the /24 or /64; or ua-start:<first start>:<user agent hash> for accounts that started together.",
            False,
        ),
        Col("user_agent", "string", "The shared user agent, for subnet and start-together campaigns."),
        Col("members", "array<string>", "Client ids in the campaign (at most 1000; sorted).", False),
        Col("n_members", "bigint", "Number of client ids.", False),
        Col("lookups", "bigint", "Lookups by all members.", False),
        Col("distinct_ids", "bigint", "Distinct ID numbers over all members (HLL).", False),
        Col("hits", "bigint", "Lookups that returned data.", False),
        Col("member_median_ids", "double", "Median distinct IDs per member."),
        Col("disjointness", "double", "Union of targets / sum of per-member targets (1 = fully disjoint)."),
        Col("distinct_watchlist", "bigint", "Distinct watchlist people over all members (HLL)."),
        Col("watchlist_member_share", "double", "Share of members that looked up a watchlist person."),
        Col(
            "watchlist_disjointness",
            "double",
            "Distinct watchlist people / sum of per-member watchlist people (1 = each person by one member).",
        ),
        Col("hit_share", "double", "hits / lookups."),
        Col("start_spread_hours", "double", "Hours between the first and the last member's first lookup."),
        Col("watchlist_keys", "array<string>", "Watchlist entries the members looked up (sorted)."),
        Col("watchlist_hit_keys", "array<string>", "Watchlist entries whose data was returned to a member (sorted)."),
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

TARGETS = Table(
    "targets",
    "The victims' side: one row per watchlist person or ID prefix and day, with who looked them up.",
    (
        Col("target_type", "string", "watchlist (a watchlist person) or id_prefix (region + birth date).", False),
        Col("target", "string", "The watchlist handle (wl-...) or the keyed hash of the ID prefix.", False),
        Col("lookups", "bigint", "Lookups of the target that day.", False),
        Col("hits", "bigint", "Of those, lookups that returned data.", False),
        Col(
            "distinct_entities", "bigint", "Distinct entities that looked the target up (HLL, at most lookups).", False
        ),
        Col("hit_entities", "bigint", "Distinct entities the target's data was returned to (HLL).", False),
        Col(
            "flagged_entities",
            "bigint",
            "Distinct entities among them flagged by the run, directly or through a campaign (HLL).",
            False,
        ),
        Col("sketch_entities", "binary", "HLL sketch of the entities, to merge days without rescanning lookups."),
        Col("rules", "array<string>", "Target rules that fired for the row (config/rules.yaml `targets`).", False),
        Col("detect_run_id", "string", "The detection run that computed the row.", False),
        Col("event_date", "date", "UTC date (partition).", False),
    ),
    partition_by=("event_date",),
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
        Col(
            "campaign_rules",
            "string",
            "Digest of the campaign rules it applied and of the code that grouped: a later run carries its campaigns over only under the same.",
        ),
        Col(
            "campaign_days",
            "array<date>",
            "Event dates of the campaign_member_days rows its campaigns grouped: a later run carries them over "
            "only when it groups the same days.",
        ),
    ),
)
