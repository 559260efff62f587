"""`make bench`: times enumwatch against a DuckDB implementation of the same core job, same data, same machine.

Each measured command runs as its own process; wall time comes from a monotonic clock, peak RSS from
sampling the command's process tree in /proc (the largest process is, for enumwatch, the Spark
driver JVM). Figures go to bench/results.md with the machine's core count. Rerun it to compare:
these machines are noisy, so the ratio within one run is the number to trust.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from publish import bench_publish  # bench/publish.py, beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(cmd: list[str], env: dict[str, str]) -> dict:
    """Run `cmd`; return wall seconds and the peak RSS (MiB) of its largest process and of its whole tree.

    The process tree is sampled from /proc every 0.2 s, because the Spark driver JVM is a grandchild
    that pyspark never waits for, so the kernel's per-child accounting would miss it.
    """
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    largest = total = 0.0
    while proc.poll() is None:
        tree, todo, seen = _children(), [proc.pid], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo += tree.get(pid, [])
        sizes = [_rss_mib(pid) for pid in seen]
        largest, total = max(largest, max(sizes)), max(total, sum(sizes))
        time.sleep(0.2)
    wall = time.monotonic() - start
    stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return {"wall": wall, "rss_mib": largest, "tree_mib": total}


def dataset(days: int, scale: float, env: dict[str, str]) -> tuple[Path, int, int]:
    """Generate (once) and describe a data set: its directory, line count and gzip bytes."""
    data = HERE / "data" / f"d{days}-s{scale:g}"
    if not (data / "summary.json").exists():
        print(f"generating {data} ...", flush=True)
        subprocess.run(
            [str(BIN / "enumwatch"), "generate", "--out", str(data), "--days", str(days), "--scale", str(scale)],
            check=True,
            env=env,
        )
    lines = json.loads((data / "summary.json").read_text())["total_lines"]
    return data, lines, sum(p.stat().st_size for p in (data / "logs").rglob("*.gz"))


def enumwatch(command: str, data: Path, lake: Path, env: dict[str, str]) -> dict:
    """Time one enumwatch command over a data set."""
    args = [str(BIN / "enumwatch"), command]
    if command in ("ingest", "run"):
        args += ["--source", str(data / "logs"), "--format", "jsonl"]
    args += ["--lake", str(lake), "--watchlist", str(data / "watchlist.csv")]
    if command in ("detect", "run"):
        args += ["--allowlist", str(data / "allowlist.csv")]
    if command == "detect":
        args += ["--full"]  # the lake is already detected: recompute all of it
    print(f"timing enumwatch {command} on {data.name} ...", flush=True)
    result = timed(args, env)
    print(f"  {result['wall']:.1f} s", flush=True)
    return result


def duck(script: str, data: Path, out: Path, env: dict[str, str]) -> dict:
    """Time one DuckDB baseline script over a data set."""
    print(f"timing {script} on {data.name} ...", flush=True)
    result = timed([sys.executable, str(HERE / script), str(data / "logs"), str(out)], env)
    print(f"  {result['wall']:.1f} s", flush=True)
    return result


def _row(name: str, r: dict, lines: int) -> str:
    return f"| {name} | {lines:,} | {r['wall']:.1f} | {lines / r['wall']:,.0f} | {r['rss_mib']:,.0f} | {r['tree_mib']:,.0f} |"


HEAD = (
    "| command | lines | wall s | lines/s | peak RSS, largest process (driver JVM), MiB | peak RSS, all processes, MiB |\n"
    "|---|---|---|---|---|---|"
)


def bench_ingest(days: int, scale: float, work: Path, env: dict[str, str]) -> str:
    """Issue 2's figure: enumwatch ingest vs DuckDB read + hash + write on ~1.4M lines."""
    data, lines, gz = dataset(days, scale, env)
    base = duck("duckdb_ingest.py", data, work / "duck-ingest", env)
    ours = enumwatch("ingest", data, work / "lake-ingest", env)
    return f"""
### Ingest: `generate --days {days} --scale {scale:g}`, {gz / 1e6:.1f} MB gzip

{HEAD}
{_row("enumwatch ingest (Prefect flow, Spark, GX checks, publish)", ours, lines)}
{_row("DuckDB: read gzip JSON, hash lookup values, write Parquet", base, lines)}

Ratio enumwatch / DuckDB wall time: **{ours["wall"] / base["wall"]:.2f}x** (target: within 2x).
"""


def bench_end_to_end(days: int, scale: float, work: Path, env: dict[str, str]) -> str:
    """Issue 3's figures: detect alone, run (ingest + detect + checks) vs DuckDB, and at 10x the data."""
    rows, ratios, runs = [], [], {}
    for factor in (1, 10):
        data, lines, _ = dataset(days, scale * factor, env)
        lake = work / f"lake-run-{factor}"
        run = enumwatch("run", data, lake, env)
        detect = enumwatch("detect", data, lake, env)
        base = duck("duckdb_detect.py", data, work / f"duck-detect-{factor}", env)
        runs[factor] = (lines, run)
        rows += [
            _row(f"enumwatch run (ingest + detect + checks), x{factor}", run, lines),
            _row(f"enumwatch detect --full alone (lake already ingested), x{factor}", detect, lines),
            _row(f"DuckDB ingest + core detection, x{factor}", base, lines),
        ]
        ratios.append(f"x{factor}: enumwatch run / DuckDB = **{run['wall'] / base['wall']:.2f}x** (target <= 3x)")
    (l1, r1), (l10, r10) = runs[1], runs[10]
    table = "\n".join(rows)
    return f"""
### End to end: `generate --days {days} --scale {scale:g}` and x10

{HEAD}
{table}

{chr(10).join("- " + r for r in ratios)}
- 10x the data ({l10 / l1:.1f}x lines) cost **{r10["wall"] / r1["wall"]:.2f}x** the time of `enumwatch run` (target <= 10.5x).
- Peak RSS of the largest process (the Spark driver JVM): {r1["rss_mib"]:,.0f} MiB at x1, {r10["rss_mib"]:,.0f} MiB at x10.
"""


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmark suites and append their figures to bench/results.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("ingest", "e2e", "publish", "all"), default="all")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--ingest-scale", type=float, default=10.0, help="10 gives about 1.4M lines")
    parser.add_argument("--e2e-scale", type=float, default=1.0, help="x1 and x10 of this scale are run")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)

    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, ENUMWATCH_PSEUDONYM_KEY="bench-key-0123456789abcdef0123456789", SPARK_LOCAL_IP="127.0.0.1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = (
        f"\n## {stamp}\n\nMachine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}.\n"
    )
    if args.suite in ("ingest", "all"):
        report += bench_ingest(args.days, args.ingest_scale, work, env)
    if args.suite in ("e2e", "all"):
        report += bench_end_to_end(args.days, args.e2e_scale, work, env)
    if args.suite in ("publish", "all"):
        report += bench_publish(work)
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
