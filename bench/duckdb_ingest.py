"""DuckDB baseline for the ingest benchmark: read the gzip JSON lines, hash the lookup values, write Parquet.

It does the core of what `enumwatch ingest` does (parse, keyed hash of id, id prefix and name as two
nested SHA-256 calls like HMAC, URL decoding, date-partitioned Parquet) and nothing else: no
quarantine with reasons, no line numbers, no checks, no publish. Usage: duckdb_ingest.py LOGDIR OUTDIR
"""

import sys

import duckdb

KEY_I = "36" * 32
KEY_O = "5c" * 32


def hmac(expr: str, kind: str) -> str:
    return f"sha256('{KEY_O}' || sha256('{KEY_I}' || '{kind}' || {expr}))"


def main(src: str, out: str) -> None:
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
          WITH raw AS (
            SELECT * FROM read_json('{src}/**/*.jsonl.gz', format='newline_delimited', ignore_errors=true,
              columns={{ts: 'VARCHAR', client_ip: 'VARCHAR', path: 'VARCHAR', status: 'VARCHAR',
                        client_id: 'VARCHAR', device_id: 'VARCHAR', request_id: 'VARCHAR',
                        user_agent: 'VARCHAR', method: 'VARCHAR', bytes_sent: 'VARCHAR', latency_ms: 'VARCHAR'}})
          ), p AS (
            SELECT *,
              CASE WHEN ts SIMILAR TO '[0-9]+' THEN make_timestamp(try_cast(ts AS BIGINT) * 1000)
                   ELSE try_cast(ts AS TIMESTAMPTZ)::TIMESTAMP END AS event_time,
              upper(trim(url_decode(nullif(regexp_extract(path, '[?&]id=([^&]*)', 1), '')))) AS id_raw,
              trim(nfc_normalize(url_decode(replace(nullif(regexp_extract(path, '[?&]name=([^&]*)', 1), ''), '+', ' ')))) AS name_raw
            FROM raw
          )
          SELECT event_time, client_ip, client_id, device_id, request_id, method,
                 regexp_extract(path, '^[^?]*') AS path, try_cast(status AS INT) AS status,
                 try_cast(bytes_sent AS BIGINT) AS bytes_sent, try_cast(latency_ms AS DOUBLE) AS latency_ms, user_agent,
                 {hmac("id_raw", "id")} AS id_hash, {hmac("substr(id_raw, 1, 14)", "prefix")} AS id_prefix_hash,
                 {hmac("name_raw", "name")} AS name_hash, event_time::DATE AS event_date
          FROM p WHERE event_time IS NOT NULL AND try_cast(status AS INT) IS NOT NULL
        ) TO '{out}' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE)
        """
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
