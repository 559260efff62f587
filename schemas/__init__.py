"""Table definitions: the single source of every lake column (see schemas.tables)."""

from schemas.tables import (
    ALLOWLISTED_HITS,
    CAMPAIGNS,
    DQ_RESULTS,
    ENTITY_HOURS,
    ENTITY_PREFIX_HOURS,
    ENTITY_WINDOWS,
    FLAGGED_CLIENTS,
    INGEST_MANIFEST,
    LAKE_TABLES,
    LINES,
    LOOKUPS,
    QUARANTINE,
    REQUESTS,
    Col,
    Table,
)

__all__ = [
    "Col",
    "Table",
    "REQUESTS",
    "QUARANTINE",
    "INGEST_MANIFEST",
    "DQ_RESULTS",
    "LOOKUPS",
    "ENTITY_HOURS",
    "ENTITY_PREFIX_HOURS",
    "ENTITY_WINDOWS",
    "FLAGGED_CLIENTS",
    "CAMPAIGNS",
    "ALLOWLISTED_HITS",
    "LINES",
    "LAKE_TABLES",
]
