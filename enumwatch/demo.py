"""`enumwatch demo`: a sample with planted attacks, run end to end on the embedded defaults.

It is what a new user runs first, so it shows the whole path: generate -> ingest -> query.
"""

from __future__ import annotations

from pathlib import Path

from enumwatch.generate import generate

DEMO_DAYS = 2
DEMO_SCALE = 0.3

TOP_CLIENTS = """
SELECT coalesce(client_id, device_id, client_ip) AS client,
       count(*) AS lookups,
       count(DISTINCT id_hash) AS distinct_ids,
       count(DISTINCT name_hash) AS distinct_names,
       count(DISTINCT watchlist_key) AS watchlist_people
FROM requests WHERE is_lookup
GROUP BY 1 ORDER BY distinct_ids DESC, distinct_names DESC LIMIT 10
"""


def run_demo(out: Path, *, lake: str | None, config: Path | None) -> int:
    """Generate `out`, ingest it into the lake and print the clients with the most distinct targets."""
    from enumwatch.cli import format_summary
    from enumwatch.lake import Lake
    from enumwatch.settings import load_settings
    from jobs.session import get_spark
    from pipelines.ingest import ingest_flow

    summary = generate(out, days=DEMO_DAYS, scale=DEMO_SCALE)
    print(f"generated {summary['total_lines']} lines in {summary['files']} files under {out}/logs")
    result = ingest_flow(
        source=str((out / "logs").absolute()),
        fmt="jsonl",
        lake=lake,
        watchlist=str((out / "watchlist.csv").absolute()),
        config=str(config) if config else None,
    )
    print(format_summary(result))
    settings = load_settings(config).with_overrides(lake=Path(lake) if lake else None)
    spark = get_spark(settings, "enumwatch-demo")
    Lake(settings.lake).read(spark, "requests").createOrReplaceTempView("requests")
    print("clients with the most distinct ID numbers looked up (planted attackers are in", out / "labels.csv", "):")
    spark.sql(TOP_CLIENTS).show(truncate=False)
    return 0
