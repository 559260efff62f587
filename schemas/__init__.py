"""Table definitions: the single source of every lake column (see schemas.tables)."""

from schemas.tables import DQ_RESULTS, INGEST_MANIFEST, LAKE_TABLES, LINES, QUARANTINE, REQUESTS, Col, Table

__all__ = ["Col", "Table", "REQUESTS", "QUARANTINE", "INGEST_MANIFEST", "DQ_RESULTS", "LINES", "LAKE_TABLES"]
