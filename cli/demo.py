"""`enumwatch demo`: a sample with planted attacks, run end to end on the embedded defaults.

It is what a new user runs first, so it shows the whole path: generate -> ingest -> detect ->
the flagged clients with their reasons, next to the generator's own labels.
"""

from __future__ import annotations

import csv
from pathlib import Path

from generator.generate import generate

DEMO_DAYS = 3
DEMO_SCALE = 0.2


def run_demo(out: Path, *, lake: str | None, config: Path | None) -> int:
    """Generate `out`, run ingest + detect into the lake and print the flags with their reasons."""
    from analyst.report import as_records, describe, latest_flags
    from cli.output import format_summary
    from core.lake import Lake
    from core.pseudonym import load_key
    from core.settings import load_settings
    from core.watchlist import watchlist_names
    from jobs.session import get_spark
    from pipelines.run import run_flow

    summary = generate(out, days=DEMO_DAYS, scale=DEMO_SCALE)
    print(f"generated {summary['total_lines']} lines in {summary['files']} hourly files under {out}/logs")
    result = run_flow(
        source=str((out / "logs").absolute()),
        fmt="jsonl",
        lake=lake,
        watchlist=str((out / "watchlist.csv").absolute()),
        allowlist=str((out / "allowlist.csv").absolute()),
        config=str(config) if config else None,
    )
    print(format_summary(result["ingest"]))
    settings = load_settings(config).with_overrides(lake=Path(lake) if lake else None)
    store = Lake(settings.lake)
    spark = get_spark(settings, "enumwatch-demo")
    rows = [
        r.asDict(recursive=True) for r in latest_flags(store.read(spark, "flagged_clients"), "low").toLocalIterator()
    ]
    records = as_records(rows, watchlist_names(store.watchlist_path(), load_key(settings)))
    with (out / "labels.csv").open(encoding="utf-8") as fh:
        planted = {(r["entity_type"], r["entity_value"]): r["scenario"] for r in csv.DictReader(fh)}
    print(
        f"\n{len(records)} flagged clients, most severe first (planted scenario from {out}/labels.csv in brackets):\n"
    )
    for record in records:
        print(describe(record) + f"\n    [planted: {_planted(record, planted)}]\n")
    print(f'query the lake: enumwatch sql "SELECT * FROM flagged_clients" --lake {store.root}')
    return 0


def _planted(record: dict, planted: dict[tuple[str, str], str]) -> str:
    """The planted scenario of a flag; a campaign named from the data (ua-start:...) by its members' labels."""
    own = planted.get((record["entity_type"], record["entity_value"]))
    if own or not record.get("members"):
        return own or "not planted"
    members = {planted.get(("client_id", m)) for m in record["members"]}
    return "not planted" if None in members else ", ".join(sorted(members))
