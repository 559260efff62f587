"""Table definitions: the single source of every lake column, grouped by the stage that writes them.

`schemas.table` says how a table is declared; `ingest`, `detection`, `alerts` and `maintenance` declare them.
Everything else imports the tables from here.
"""

from schemas.alerts import ALERTS
from schemas.detection import (
    ALLOWLISTED_HITS,
    CAMPAIGN_MEMBER_DAYS,
    CAMPAIGNS,
    DETECT_RUNS,
    ENTITY_DAYS,
    ENTITY_HOURS,
    ENTITY_PREFIX_DAYS,
    ENTITY_PREFIX_HOURS,
    ENTITY_WINDOWS,
    EXPOSURES,
    FLAGGED_CLIENTS,
    LOOKUPS,
    TARGETS,
)
from schemas.ingest import DQ_RESULTS, INGEST_MANIFEST, LINES, QUARANTINE, REQUESTS
from schemas.maintenance import COMPACTION_LOG, PARTITION_AGES, RETENTION_LOG
from schemas.table import Col, Table

# Every table of the lake, in the order docs/tables.md lists them (LINES is internal to ingest, PARTITION_AGES to the retention check).
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
        ENTITY_DAYS,
        ENTITY_PREFIX_DAYS,
        ENTITY_WINDOWS,
        CAMPAIGN_MEMBER_DAYS,
        FLAGGED_CLIENTS,
        CAMPAIGNS,
        ALLOWLISTED_HITS,
        EXPOSURES,
        TARGETS,
        DETECT_RUNS,
        ALERTS,
        RETENTION_LOG,
        COMPACTION_LOG,
    )
}

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
    "ENTITY_DAYS",
    "ENTITY_PREFIX_DAYS",
    "ENTITY_WINDOWS",
    "CAMPAIGN_MEMBER_DAYS",
    "FLAGGED_CLIENTS",
    "CAMPAIGNS",
    "ALLOWLISTED_HITS",
    "EXPOSURES",
    "TARGETS",
    "DETECT_RUNS",
    "ALERTS",
    "RETENTION_LOG",
    "COMPACTION_LOG",
    "PARTITION_AGES",
    "LINES",
    "LAKE_TABLES",
]
