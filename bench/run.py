"""`make bench`: times enumwatch against a DuckDB implementation of the same core job, same data, same machine.

Each measured command runs as its own process; wall time comes from a monotonic clock, peak RSS from
sampling the command's process tree in /proc (the largest process is, for enumwatch, the Spark
driver JVM). Every enumwatch command also gets a breakdown (bench/profile.py): Prefect's own flow
and task timings, Spark's event log summed per job group, enumwatch's spans (session start, GX
suites, Data Docs). Figures go to bench/results.md with the machine's core count. Rerun it to
compare: these machines are noisy, so the ratio within one run is the number to trust.

Suites (issue 7's targets): `ingest` (enumwatch ingest vs DuckDB read + hash + write), `run`
(enumwatch run vs DuckDB ingest + core detection, then one new hourly file on that lake vs the floor
of any Spark job), `big` (the run at 10x the data: `make bench BENCH_BIG=1`, long).
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

from breakdown import breakdown, spark_conf_dir
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
    return {
        "wall": wall,
        "rss_mib": largest,
        "tree_mib": total,
        "epoch_start": time.time() - wall,
        "epoch_end": time.time(),
    }


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


def split_last_hour(data: Path, work: Path) -> tuple[Path, Path, Path]:
    """Hard links: a source of every hourly file but the last, the last file alone, and where it goes later."""
    files = sorted((data / "logs").rglob("*.gz"))
    week = work / f"source-{data.name}"
    for f in files[:-1]:
        dest = week / f.relative_to(data / "logs")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, dest)
    return week, files[-1], week / files[-1].relative_to(data / "logs")


class Bench:
    """Runs measured commands, each with its own Spark event log and span file, and keeps their breakdowns."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env, self.breakdowns, self.n = work, env, [], 0

    def measure(self, label: str, cmd: list[str], *, profile: bool = True) -> dict:
        self.n += 1
        env = dict(self.env)
        if profile:
            events = self.work / "events" / f"{self.n:02d}"
            env["SPARK_CONF_DIR"] = str(spark_conf_dir(self.work / "conf" / f"{self.n:02d}", events))
            env["ENUMWATCH_PROFILE"] = str(self.work / "events" / f"{self.n:02d}.spans.jsonl")
        print(f"timing {label} ...", flush=True)
        result = timed(cmd, env)
        print(f"  {result['wall']:.1f} s", flush=True)
        if profile:
            self.breakdowns.append(
                breakdown(
                    label,
                    result["epoch_start"],
                    result["epoch_end"],
                    Path(env["PREFECT_HOME"]),
                    events,
                    Path(env["ENUMWATCH_PROFILE"]),
                )
            )
        return result

    def enumwatch(self, command: str, source: Path, data: Path, lake: Path, label: str) -> dict:
        """Time one enumwatch command over a source."""
        args = [str(BIN / "enumwatch"), command]
        if command in ("ingest", "run"):
            args += ["--source", str(source), "--format", "jsonl"]
        args += ["--lake", str(lake), "--watchlist", str(data / "watchlist.csv")]
        if command in ("detect", "run"):
            args += ["--allowlist", str(data / "allowlist.csv")]
        return self.measure(label, args)

    def duck(self, script: str, source: Path, out: Path) -> dict:
        """Time one DuckDB baseline script over a source."""
        return self.measure(script, [sys.executable, str(HERE / script), str(source), str(out)], profile=False)


def _row(name: str, r: dict, lines: int) -> str:
    return f"| {name} | {lines:,} | {r['wall']:.1f} | {lines / r['wall']:,.0f} | {r['rss_mib']:,.0f} | {r['tree_mib']:,.0f} |"


HEAD = (
    "| command | lines | wall s | lines/s | peak RSS, largest process (driver JVM), MiB | peak RSS, all processes, MiB |\n"
    "|---|---|---|---|---|---|"
)


def _verdict(value: float, target: float) -> str:
    return f"**{value:.2f}x** (target <= {target:g}x: {'met' if value <= target else 'NOT met'})"


def bench_ingest(b: Bench, days: int, scale: float) -> str:
    """enumwatch ingest vs DuckDB read + hash + write on ~1.4M lines."""
    data, lines, gz = dataset(days, scale, b.env)
    base = b.duck("duckdb_ingest.py", data / "logs", b.work / "duck-ingest")
    ours = b.enumwatch("ingest", data / "logs", data, b.work / "lake-ingest", "enumwatch ingest, fresh lake")
    return f"""
### Ingest: `generate --days {days} --scale {scale:g}`, {gz / 1e6:.1f} MB gzip

{HEAD}
{_row("enumwatch ingest (Prefect flow, Spark, GX checks, publish)", ours, lines)}
{_row("DuckDB: read gzip JSON, hash lookup values, write Parquet", base, lines)}

- enumwatch ingest / DuckDB read + hash + write: {_verdict(ours["wall"] / base["wall"], 2)}
"""


def bench_run(b: Bench, days: int, scale: float, tag: str) -> tuple[str, dict, int]:
    """enumwatch run vs DuckDB on a week less its last hourly file; then that file alone vs the floor."""
    data, lines, gz = dataset(days, scale, b.env)
    week, last, dest = split_last_hour(data, b.work)
    last_lines = sum(1 for _ in __import__("gzip").open(last, "rb"))
    lake = b.work / f"lake-run-{tag}"
    base = b.duck("duckdb_detect.py", week, b.work / f"duck-detect-{tag}")
    run = b.enumwatch("run", week, data, lake, f"enumwatch run {tag}, fresh lake")
    os.link(last, dest)
    inc = b.enumwatch("run", week, data, lake, f"enumwatch run {tag}, one new hourly file")
    floor = b.measure(
        "floor: local Spark session, count one file, stop", [sys.executable, str(HERE / "floor.py"), str(last)]
    )
    week_lines = lines - last_lines
    text = f"""
### Run {tag}: `generate --days {days} --scale {scale:g}` ({gz / 1e6:.1f} MB gzip) less its last hourly file, then that file

{HEAD}
{_row(f"enumwatch run (ingest + detect + checks + alerts), {tag}", run, week_lines)}
{_row(f"DuckDB ingest + core detection, {tag}", base, week_lines)}
{_row("enumwatch run, one new hourly file on that lake (ingest + incremental detect + alerts)", inc, last_lines)}
{_row("floor: local Spark session start, count one file, stop", floor, last_lines)}

- enumwatch run / DuckDB, {tag}: {_verdict(run["wall"] / base["wall"], 3)}
- one new hourly file / floor: {inc["wall"]:.1f} s / {floor["wall"]:.1f} s = {_verdict(inc["wall"] / floor["wall"], 2.5)}
- peak RSS of the driver JVM: {run["rss_mib"]:,.0f} MiB (target <= 1,536 MiB)
"""
    return text, run, week_lines


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmark suites and append their figures and breakdowns to bench/results.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("ingest", "run", "publish", "all"), default="all")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=float, default=10.0, help="10 gives about 1.4M lines")
    parser.add_argument("--big", action="store_true", help="also the run at 10x the data (about 14M lines; long)")
    parser.add_argument("--stages", action="store_true", help="also split the ingest job into read/parse/hash/write")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)

    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, ENUMWATCH_PSEUDONYM_KEY="bench-key-0123456789abcdef0123456789", SPARK_LOCAL_IP="127.0.0.1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A user's PREFECT_HOME persists between commands (~/.prefect); the bench keeps its own the same way.
    env.setdefault("PREFECT_HOME", str(HERE / "data" / "prefect-home"))
    b = Bench(work, env)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = (
        f"\n## {stamp}\n\nMachine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}.\n"
    )
    if args.suite in ("ingest", "all"):
        report += bench_ingest(b, args.days, args.scale)
    if args.stages:
        data, _, _ = dataset(args.days, args.scale, env)
        print("timing the ingest job step by step (bench/ingest_stages.py) ...", flush=True)
        table = subprocess.run(
            [sys.executable, str(HERE / "ingest_stages.py"), str(data / "logs"), str(data / "watchlist.csv")],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        report += f"\n### The ingest Spark job step by step (cumulative runs, noop sink; `--stages`)\n\n{table}"
    if args.suite in ("run", "all"):
        text, r1, l1 = bench_run(b, args.days, args.scale, "x1")
        report += text
        if args.big:
            text, r10, l10 = bench_run(b, args.days, args.scale * 10, "x10")
            report += text + (
                f"\n- 10x the data ({l10 / l1:.1f}x lines) cost {_verdict(r10['wall'] / r1['wall'], 10.5)} the time\n"
                f"- driver JVM peak RSS {r1['rss_mib']:,.0f} MiB at x1, {r10['rss_mib']:,.0f} MiB at x10 "
                "(target <= 1,536 MiB and flat)\n"
            )
    if args.suite in ("publish", "all"):
        report += bench_publish(work)
    report += "\n### Where the time went\n" + "".join(b.breakdowns)
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
