"""`make bench`: times enumwatch against a DuckDB implementation of the same core job, same data, same machine.

Each measured command runs as its own process; wall time comes from a monotonic clock, peak RSS from
sampling the command's process tree in /proc (the largest process is, for enumwatch, the Spark
driver JVM). Every enumwatch command also gets a breakdown (bench/breakdown.py): Prefect's own flow
and task timings, Spark's event log summed per job group, enumwatch's spans (session start, GX
suites, Data Docs). Figures go to bench/results.md with the machine's core count. Rerun it to
compare: these machines are noisy, so the ratio within one run is the number to trust.

Suites (issue 7's targets): `ingest` (enumwatch ingest vs DuckDB read + hash + write), `run`
(enumwatch run vs DuckDB ingest + core detection, then one new hourly file on that lake vs the floor
of any Spark job, by a fresh `enumwatch run` and under a long-lived `enumwatch watch`), `big` (the run at 10x
the data: `make bench BENCH_BIG=1`, long).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from breakdown import breakdown, event_log_args
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


def _tree_rss(pid: int) -> tuple[float, float]:
    """RSS (MiB) of the largest process in `pid`'s tree, and of the whole tree, read from /proc now."""
    tree, todo, seen = _children(), [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += tree.get(p, [])
    sizes = [_rss_mib(p) for p in seen]
    return max(sizes), sum(sizes)


def timed(cmd: list[str], env: dict[str, str]) -> dict:
    """Run `cmd`; return wall seconds and the peak RSS (MiB) of its largest process and of its whole tree.

    The process tree is sampled from /proc every 0.2 s, because the Spark driver JVM is a grandchild
    that pyspark never waits for, so the kernel's per-child accounting would miss it.
    """
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    largest = total = 0.0
    while proc.poll() is None:
        now_largest, now_total = _tree_rss(proc.pid)
        largest, total = max(largest, now_largest), max(total, now_total)
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


def watched(cmd: list[str], env: dict[str, str], arrivals: list[tuple[Path, Path]], log: Path) -> dict:
    """Start `enumwatch watch`, let each (file, destination) arrive after the previous run, time each.

    Each arrival is timed from the hard link into the source to the watch's "run N done" line: what a
    user waits for between a file landing and its flags. Peak RSS covers the process's whole life.
    """
    lines: queue.Queue[str] = queue.Queue()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        largest = total = 0.0
        runs: list[dict] = []
        todo, started = list(arrivals), None
        while proc.poll() is None:
            now_largest, now_total = _tree_rss(proc.pid)
            largest, total = max(largest, now_largest), max(total, now_total)
            if "enumwatch watch: run " in log.read_text(errors="replace"):  # "... run N failed: why" (stderr)
                proc.kill()
                raise SystemExit(f"a watched run failed:\n{log.read_text()[-3000:]}")
            while not lines.empty():
                line = lines.get()
                if line.startswith("watch: run ") and " done " in line:
                    if started is not None:
                        runs.append({"wall": time.monotonic() - started[0], "epoch_start": started[1],
                                     "epoch_end": time.time()})  # fmt: skip
                    if not todo:
                        proc.send_signal(signal.SIGTERM)
                        break
                    os.link(*todo.pop(0))
                    started = (time.monotonic(), time.time())
            time.sleep(0.2)
        proc.wait()
    if proc.returncode != 0 or todo:
        raise SystemExit(f"enumwatch watch ended early ({proc.returncode}): {log.read_text()[-3000:]}")
    return {**runs[-1], "first": runs[0]["wall"], "rss_mib": largest, "tree_mib": total}


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


def split_last_hours(data: Path, work: Path, n: int) -> tuple[Path, list[tuple[Path, Path]]]:
    """Hard links: a source of every hourly file but the last `n`, and those `n` with where each goes later."""
    files = sorted((data / "logs").rglob("*.gz"))
    week = work / f"source-{data.name}"
    for f in files[:-n]:
        dest = week / f.relative_to(data / "logs")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, dest)
    return week, [(f, week / f.relative_to(data / "logs")) for f in files[-n:]]


class Bench:
    """Runs measured commands, each with its own Spark event log and span file, and keeps their breakdowns."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env, self.breakdowns, self.n = work, env, [], 0

    def measure(self, label: str, cmd: list[str], *, profile: bool = True) -> dict:
        self.n += 1
        env, events = self._profiled() if profile else (dict(self.env), None)
        print(f"timing {label} ...", flush=True)
        result = timed(cmd, env)
        print(f"  {result['wall']:.1f} s", flush=True)
        if profile:
            self._breakdown(label, result, env, events)
        return result

    def enumwatch(self, command: str, source: Path, data: Path, lake: Path, label: str) -> dict:
        """Time one enumwatch command over a source."""
        return self.measure(label, self._args(command, source, data, lake))

    def watch(self, source: Path, data: Path, lake: Path, arrivals: list[tuple[Path, Path]], label: str) -> dict:
        """Time files arriving one by one under a long-lived `enumwatch watch`; the breakdown is the last one's."""
        self.n += 1
        env, events = self._profiled()
        cmd = [*self._args("watch", source, data, lake), "--poll", "1", "--every", "3600"]
        print(f"timing {label} ...", flush=True)
        result = watched(cmd, env, arrivals, self.work / f"watch-{self.n:02d}.log")
        print(f"  {result['first']:.1f} s, then {result['wall']:.1f} s", flush=True)
        self._breakdown(label, result, env, events)
        return result

    def _profiled(self) -> tuple[dict[str, str], Path]:
        """The environment of a measured command with its own Spark event log and span file."""
        events = self.work / "events" / f"{self.n:02d}"
        env = dict(self.env, ENUMWATCH_PROFILE=str(self.work / "events" / f"{self.n:02d}.spans.jsonl"))
        env["PYSPARK_SUBMIT_ARGS"] = event_log_args(events)
        return env, events

    def _breakdown(self, label: str, result: dict, env: dict[str, str], events: Path) -> None:
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

    @staticmethod
    def _args(command: str, source: Path, data: Path, lake: Path) -> list[str]:
        args = [str(BIN / "enumwatch"), command]
        if command in ("ingest", "run", "watch"):
            args += ["--source", str(source), "--format", "jsonl"]
        args += ["--lake", str(lake), "--watchlist", str(data / "watchlist.csv")]
        if command in ("detect", "run", "watch"):
            args += ["--allowlist", str(data / "allowlist.csv")]
        return args

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
    """enumwatch run vs DuckDB on a week less its last three hourly files; then those files one by one:
    the first by a fresh `enumwatch run` (vs the floor), the other two under one `enumwatch watch`."""
    data, lines, gz = dataset(days, scale, b.env)
    week, arrivals = split_last_hours(data, b.work, 3)
    new_lines = [sum(1 for _ in gzip.open(f, "rb")) for f, _ in arrivals]
    lake = b.work / f"lake-run-{tag}"
    base = b.duck("duckdb_detect.py", week, b.work / f"duck-detect-{tag}")
    run = b.enumwatch("run", week, data, lake, f"enumwatch run {tag}, fresh lake")
    os.link(*arrivals[0])
    inc = b.enumwatch("run", week, data, lake, f"enumwatch run {tag}, one new hourly file")
    floor = b.measure(
        "floor: local Spark session, count one file, stop",
        [sys.executable, str(HERE / "floor.py"), str(arrivals[0][0])],
    )
    warm = b.watch(week, data, lake, arrivals[1:], f"enumwatch watch {tag}, one new hourly file, warm process")
    week_lines = lines - sum(new_lines)
    text = f"""
### Run {tag}: `generate --days {days} --scale {scale:g}` ({gz / 1e6:.1f} MB gzip) less its last three hourly files, then each of them

{HEAD}
{_row(f"enumwatch run (ingest + detect + checks + alerts), {tag}", run, week_lines)}
{_row(f"DuckDB ingest + core detection, {tag}", base, week_lines)}
{_row("enumwatch run, one new hourly file on that lake (ingest + incremental detect + alerts)", inc, new_lines[0])}
{_row("floor: local Spark session start, count one file, stop", floor, new_lines[0])}
{_row("enumwatch watch, the next hourly file, from landing to its run's end (warm process)", warm, new_lines[2])}

- enumwatch run / DuckDB, {tag}: {_verdict(run["wall"] / base["wall"], 3)}
- one new hourly file / floor, fresh `enumwatch run`: {inc["wall"]:.1f} s / {floor["wall"]:.1f} s = {_verdict(inc["wall"] / floor["wall"], 2.5)}
- one new hourly file / floor, warm `enumwatch watch`: {warm["wall"]:.1f} s / {floor["wall"]:.1f} s = {_verdict(warm["wall"] / floor["wall"], 2.5)} (the watch's first file, {new_lines[1]:,} lines: {warm["first"]:.1f} s; peak RSS over its life is the row's)
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
