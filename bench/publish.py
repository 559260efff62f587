"""Publish cost against the files already in a table: the lake's own API (core.lake), no Spark.

A year of 5-minute incremental ingests leaves ~288 small files a day in `requests`. This builds a
table of 1k, 10k and 100k such files (288 a day partition), then times publishing one more file into
the newest day through `Lake.build_version` + `Lake.publish`, the way every ingest does. For
comparison it also times what the former layout did on every publish: hard-link every file of the
current version into a new version directory.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from core.lake import Lake

PER_DAY = 288  # one file per 5-minute ingest
REPEATS = 3


def _stage(lake: Lake, run_id: str, files: list[str], data: bytes) -> Path:
    root = lake.staging(run_id) / "requests"
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _relink_all(current: Path, target: Path) -> None:
    """The former per-publish work: every file of the current version hard-linked into a new one."""
    for folder, _dirs, files in os.walk(current, followlinks=True):
        rel = Path(folder).relative_to(current)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(folder) / name, target / rel / name)


def measure(work: Path, files: int, data: bytes) -> dict:
    """Seconds to publish one file into a table that already holds `files` files (median of REPEATS)."""
    lake = Lake(work / f"lake-{files}", keep_versions=2)
    days = -(-files // PER_DAY)
    first = date(2025, 1, 1)
    names = [
        f"event_date={first + timedelta(days=i // PER_DAY)}/part-{i:06d}.parquet" for i in range(files)
    ]  # fmt: skip
    lake.publish(
        "run-0", {"requests": lake.build_version("requests", "run-0", add=[_stage(lake, "run-0", names, data)])}
    )
    lake.recover()
    newest = f"event_date={first + timedelta(days=days - 1)}"
    ours, former = [], []
    for n in range(1, REPEATS + 1):
        staged = _stage(lake, f"run-{n}", [f"{newest}/part-new-{n}.parquet"], data)
        start = time.perf_counter()
        lake.publish(f"run-{n}", {"requests": lake.build_version("requests", f"run-{n}", add=[staged])})
        ours.append(time.perf_counter() - start)
        lake.recover()
        start = time.perf_counter()
        _relink_all(lake.current("requests"), work / f"former-{files}-{n}")
        former.append(time.perf_counter() - start)
        shutil.rmtree(work / f"former-{files}-{n}")
    shutil.rmtree(lake.root)
    return {"files": files, "days": days, "ours": statistics.median(ours), "former": statistics.median(former)}


def bench_publish(work: Path, sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> str:
    """The publish benchmark as a Markdown section for bench/results.md."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = work / "sample.parquet"
    pq.write_table(pa.table({"line_no": [1]}), sample)  # a real (tiny) Parquet file, copied per file
    data = sample.read_bytes()
    rows = []
    for files in sizes:
        print(f"timing a publish into a table of {files:,} files ...", flush=True)
        r = measure(work, files, data)
        print(f"  {r['ours'] * 1000:.1f} ms (former layout: {r['former'] * 1000:.1f} ms)", flush=True)
        rows.append(
            f"| {r['files']:,} | {r['days']} | {r['ours'] * 1000:,.1f} | {r['former'] * 1000:,.1f} | "
            f"{r['former'] / r['ours']:,.0f}x |"
        )
    table = "\n".join(rows)
    return f"""
### Publish: one new file into `requests` holding N files ({PER_DAY} a day partition), median of {REPEATS}

| files already in the table | day partitions | publish ms (shared partitions) | ms to relink every file (former layout) | former / now |
|---|---|---|---|---|
{table}
"""
