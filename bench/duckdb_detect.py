"""DuckDB baseline for the end-to-end benchmark: ingest (as duckdb_ingest.py), then the core of detection.

Core of detection: lookups keyed by client_id / device_id / IP, distinct IDs and names per entity
per hour, day and sliding 7 days, and the threshold flags of `many_distinct_ids` and
`many_distinct_names`. No sketches to keep, no campaigns, no checks, no publish.
Usage: duckdb_detect.py LOGDIR WORKDIR
"""

import sys
from pathlib import Path

import duckdb
from duckdb_ingest import main as ingest

THRESHOLDS = {"hour": 30, "day": 50, "7d": 100}


def main(src: str, work: str) -> None:
    lake = Path(work) / "requests"
    lake.parent.mkdir(parents=True, exist_ok=True)
    ingest(src, str(lake))
    con = duckdb.connect()
    con.execute(
        f"""
        CREATE TABLE lookups AS
        SELECT coalesce(client_id, device_id, client_ip) AS entity, event_time, event_date,
               date_trunc('hour', event_time) AS hour, id_hash, name_hash
        FROM read_parquet('{lake}/**/*.parquet', hive_partitioning = true)
        WHERE path = '/api/v1/healthkit/lookup' AND (id_hash IS NOT NULL OR name_hash IS NOT NULL)
        """
    )
    con.execute(
        f"""
        COPY (
          WITH hourly AS (
            SELECT entity, 'hour' AS win, hour AS start, count(DISTINCT id_hash) AS ids, count(DISTINCT name_hash) AS names
            FROM lookups GROUP BY ALL
          ), daily AS (
            SELECT entity, 'day' AS win, event_date::TIMESTAMP AS start, count(DISTINCT id_hash), count(DISTINCT name_hash)
            FROM lookups GROUP BY ALL
          ), weekly AS (
            SELECT l.entity, '7d' AS win, d.day::TIMESTAMP AS start, count(DISTINCT l.id_hash), count(DISTINCT l.name_hash)
            FROM lookups l JOIN (SELECT DISTINCT event_date AS day FROM lookups) d
              ON l.event_date BETWEEN d.day - INTERVAL 6 DAY AND d.day
            GROUP BY ALL
          ), windows AS (SELECT * FROM hourly UNION ALL SELECT * FROM daily UNION ALL SELECT * FROM weekly)
          SELECT entity, list(DISTINCT win) AS windows, max(ids) AS max_ids, max(names) AS max_names
          FROM windows
          WHERE ids >= CASE win WHEN 'hour' THEN {THRESHOLDS["hour"]} WHEN 'day' THEN {THRESHOLDS["day"]} ELSE {THRESHOLDS["7d"]} END
             OR names >= CASE win WHEN 'hour' THEN {THRESHOLDS["hour"]} WHEN 'day' THEN {THRESHOLDS["day"]} ELSE {THRESHOLDS["7d"]} END
          GROUP BY entity
        ) TO '{Path(work) / "flags.parquet"}' (FORMAT parquet)
        """
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
