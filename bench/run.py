"""`make bench`: times enumwatch against a DuckDB implementation of the same core job, same data, same machine.

Each measured command runs as its own process; wall time comes from a monotonic clock, peak RSS from
the kernel's accounting of the largest finished child process (for enumwatch that is the Spark
driver JVM). Figures go to bench/results.md with the machine's core count. Rerun it to compare:
these machines are noisy, so the ratio within one run is the number to trust.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> dict:
    """Run `cmd` in a fresh process; return wall seconds and the peak RSS of its largest process (MiB)."""
    # Each measurement runs under a small Python wrapper so RUSAGE_CHILDREN covers only that command.
    wrapper = (
        "import resource,subprocess,sys,time,json;t=time.monotonic();"
        "r=subprocess.run(sys.argv[1:]);w=time.monotonic()-t;"
        "print(json.dumps({'rc':r.returncode,'wall':w,"
        "'rss_mib':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024}),file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True)
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"benchmark command failed ({result['rc']}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return result


def count_lines(summary_file: Path) -> int:
    return json.loads(summary_file.read_text())["total_lines"]


def main(argv: list[str] | None = None) -> int:
    """Generate the data once, then time enumwatch ingest and the DuckDB baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=float, default=10.0, help="10 gives about 1.4M lines")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)

    data = HERE / "data" / f"d{args.days}-s{args.scale:g}"
    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, ENUMWATCH_PSEUDONYM_KEY="bench-key-0123456789abcdef0123456789", SPARK_LOCAL_IP="127.0.0.1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not (data / "summary.json").exists():
        print(f"generating {data} ...", flush=True)
        subprocess.run(
            [str(BIN / "enumwatch"), "generate", "--out", str(data), "--days", str(args.days), "--scale", str(args.scale)],
            check=True,
            env=env,
        )
    lines = count_lines(data / "summary.json")
    gz_bytes = sum(p.stat().st_size for p in (data / "logs").rglob("*.gz"))
    print(f"{lines:,} lines, {gz_bytes / 1e6:.1f} MB gzip", flush=True)

    print("timing duckdb baseline ...", flush=True)
    duck = timed([sys.executable, str(HERE / "duckdb_ingest.py"), str(data / "logs"), str(work / "duck")], env)
    print(f"  {duck['wall']:.1f} s", flush=True)
    print("timing enumwatch ingest ...", flush=True)
    ingest = timed(
        [str(BIN / "enumwatch"), "ingest", "--source", str(data / "logs"), "--format", "jsonl",
         "--lake", str(work / "lake"), "--watchlist", str(data / "watchlist.csv")],
        env,
    )
    print(f"  {ingest['wall']:.1f} s", flush=True)

    rows = [
        ("enumwatch ingest (Prefect flow, Spark local[*], GX checks, publish)", ingest),
        ("DuckDB: read gzip JSON, hash lookup values, write Parquet", duck),
    ]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join(
        f"| {name} | {r['wall']:.1f} | {lines / r['wall']:,.0f} | {r['rss_mib']:,.0f} |" for name, r in rows
    )
    report = f"""
## Ingest, {stamp}

Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}.
Data: `enumwatch generate --days {args.days} --scale {args.scale:g}`: {lines:,} lines in hourly gzip files, {gz_bytes / 1e6:.1f} MB.

| command | wall s | lines/s | peak RSS of largest process, MiB |
|---|---|---|---|
{table}

Ratio enumwatch / DuckDB wall time: **{ingest['wall'] / duck['wall']:.2f}x** (target: within 2x).
"""
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
