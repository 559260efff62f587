"""How run summaries and rows are printed: the one-line run summaries and JSON-ready values."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal


def format_summary(summary: dict) -> str:
    """The short human summary of an ingest run."""
    if summary["files"]:
        head = (
            f"ingest {summary['run_id']}: {summary['files']} files, {summary['lines']} lines, "
            f"{summary['parsed']} parsed, {summary['quarantined']} quarantined, {summary['blank']} blank, "
            f"{summary['seconds']} s -> {summary['lake']}"
        )
    else:  # said plainly: a scheduled run over an empty incoming directory is normal, not a failure
        head = (
            f"ingest {summary['run_id']}: no new files in {summary.get('source', 'the source')}, {summary['seconds']} s"
        )
    lines = [head]
    if summary["files_already_ingested"]:
        lines.append(f"  {summary['files_already_ingested']} files already ingested with the same content: skipped")
    for item in summary["files_unreadable"]:
        lines.append(f"  unreadable, skipped: {item}")
    for item in summary["files_with_read_errors"]:
        lines.append(f"  read broke off, lines before the break kept: {item}")
    if summary["files_skipped"]:
        lines.append(f"  {summary['files_skipped']} files ignored for their extension")
    for warning in summary["warnings"]:
        lines.append(f"  warning: {warning}")
    if summary.get("data_docs"):
        lines.append(f"  data docs: {summary['data_docs']}")
    return "\n".join(lines)


def format_detect_summary(summary: dict) -> str:
    """One line about a detection run, and where its Data Docs are."""
    tables = summary["tables"]
    warnings = "".join(f"\n  warning: {w}" for w in summary.get("warnings", []))
    if not tables:
        return (
            f"detect {summary['run_id']}: nothing new to detect ({summary['mode']}), {summary['seconds']} s" + warnings
        )
    dates = summary["dates"]
    shown = ", ".join(dates[:5]) + (f" and {len(dates) - 5} more" if len(dates) > 5 else "")
    return (
        (
            f"detect {summary['run_id']} ({summary['mode']}, event dates {shown}): {tables['lookups']} lookups, "
            f"{tables['entity_windows']} entity windows, {tables['campaigns']} campaigns, "
            f"{tables['flagged_clients']} flagged ({tables['allowlisted_hits']} allowlisted kept for audit), "
            f"{tables['exposures']} exposures, {summary['seconds']} s -> {summary['lake']}"
        )
        + (f"\n  data docs: {summary['data_docs']}" if summary.get("data_docs") else "")
        + warnings
    )


def jsonable(value):
    """A Spark row value as something json.dumps takes: ISO times, floats, hex bytes, plain dicts."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "asDict"):
        return {k: jsonable(v) for k, v in value.asDict().items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
