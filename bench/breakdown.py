"""Where one measured command spent its time, from the records the tools keep themselves.

- Prefect: flow and task runs with their start and end, read from the Prefect database in
  PREFECT_HOME after the command (the temporary server is gone by then, its SQLite file is not);
- Spark: the event log (spark.eventLog.enabled, switched on through PYSPARK_SUBMIT_ARGS): application
  start, and each job's submission and completion with its job group (set by `jobs.spans.span`);
- enumwatch's own spans (ENUMWATCH_PROFILE): session start, each GX suite, Data Docs.

`breakdown` turns them into a Markdown table; nothing here is estimated.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path


def event_log_args(events: Path) -> str:
    """PYSPARK_SUBMIT_ARGS that make each driver write an uncompressed event log into `events`.

    Not a SPARK_CONF_DIR: a directory with files on the driver's class path keeps Java's class sharing,
    and so the class archive enumwatch's drivers map (jobs/class_archive.py), out of the measured runs.
    """
    events.mkdir(parents=True, exist_ok=True)
    confs = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file://{events}",
        "spark.eventLog.compress": "false",
    }
    return " ".join(f"--conf {key}={value}" for key, value in confs.items()) + " pyspark-shell"


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def prefect_runs(prefect_home: Path, since: float) -> tuple[list[dict], list[dict]]:
    """Flow runs and task runs that started after `since` (epoch seconds), oldest first."""
    db = prefect_home / "prefect.db"
    if not db.exists():
        return [], []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        flows = [
            {"name": name, "start": _epoch(s), "end": _epoch(e)}
            for name, s, e in con.execute(
                "SELECT f.name, r.start_time, r.end_time FROM flow_run r JOIN flow f ON f.id = r.flow_id"
            )
        ]
        tasks = [
            {"name": name, "start": _epoch(s), "end": _epoch(e)}
            for name, s, e in con.execute("SELECT name, start_time, end_time FROM task_run")
        ]
    finally:
        con.close()
    keep = lambda rows: sorted((r for r in rows if r["start"] and r["start"] >= since), key=lambda r: r["start"])  # noqa: E731
    return keep(flows), keep(tasks)


def spark_events(events: Path) -> list[dict]:
    """Per application: its start, and its jobs with group and duration (seconds)."""
    apps = []
    # Spark 4 writes a directory per application (eventlog_v2_*) holding events_<n>_* files in order.
    for folder in sorted(p for p in events.iterdir() if p.is_dir()):
        app: dict = {"start": None, "end": None, "jobs": {}}
        logs = sorted(folder.glob("events_*"), key=lambda p: int(p.name.split("_")[1]))
        for line in (line for log in logs for line in log.open(encoding="utf-8")):
            try:
                ev = json.loads(line)
            except ValueError:  # the last line of a log still being written (or of a killed process)
                continue
            kind = ev.get("Event")
            if kind == "SparkListenerApplicationStart":
                app["start"] = ev["Timestamp"] / 1000
            elif kind == "SparkListenerApplicationEnd":
                app["end"] = ev["Timestamp"] / 1000
            elif kind == "SparkListenerJobStart":
                props = ev.get("Properties") or {}
                app["jobs"][ev["Job ID"]] = {
                    "group": props.get("spark.jobGroup.id") or "(no group: flow-level reads and writes)",
                    "start": ev["Submission Time"] / 1000,
                }
            elif kind == "SparkListenerJobEnd" and ev["Job ID"] in app["jobs"]:
                app["jobs"][ev["Job ID"]]["end"] = ev["Completion Time"] / 1000
        apps.append(app)
    return apps


def spans(path: Path) -> list[dict]:
    """enumwatch's own spans (see jobs/spans.py)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _base(name: str) -> str:
    # Prefect task keys look like "parse_files-1a2b3c"; the table groups them by task.
    head, _, tail = name.rpartition("-")
    return head if head and len(tail) >= 3 and all(c in "0123456789abcdef" for c in tail) else name


def breakdown(label: str, started: float, ended: float, prefect_home: Path, events: Path, span_file: Path) -> str:
    """The Markdown breakdown of one command run between `started` and `ended` (epoch seconds)."""
    flows, tasks = prefect_runs(prefect_home, started - 1)
    apps = spark_events(events)
    own = spans(span_file)
    rows: list[tuple[str, str, float, str]] = [("whole command", "bench", ended - started, "process start to exit")]
    if flows:
        first = min(f["start"] for f in flows)
        rows.append(
            (
                "Python start + Prefect start",
                "Prefect",
                first - started,
                "process start (watch: file landing) to first flow run",
            )
        )
        last = max(f["end"] or ended for f in flows)
        rows.append(("after the last flow run", "Prefect", ended - last, "temporary server and JVM shutdown"))
    for f in flows:
        rows.append((f"flow {f['name']}", "Prefect", (f["end"] or ended) - f["start"], ""))
    per_task: dict[str, list[float]] = defaultdict(list)
    for t in tasks:
        per_task[_base(t["name"])].append((t["end"] or ended) - t["start"])
    for name, secs in per_task.items():
        rows.append((f"task {name}", "Prefect", sum(secs), f"{len(secs)} run(s)"))
    per_span: dict[str, list[float]] = defaultdict(list)
    for s in own:
        if s["start"] >= started - 1:
            per_span[s["span"]].append(s["end"] - s["start"])
    for name, secs in per_span.items():
        rows.append((name, "span", sum(secs), f"{len(secs)} time(s)"))
    per_group: dict[str, list[float]] = defaultdict(list)
    for app in apps:
        for job in app["jobs"].values():
            if not started - 1 <= job["start"] <= ended:  # a long-lived process's jobs outside this window
                continue
            per_group[job["group"]].append(job.get("end", ended) - job["start"])
    for name, secs in sorted(per_group.items(), key=lambda kv: -sum(kv[1])):
        rows.append((f"Spark jobs {name}", "event log", sum(secs), f"{len(secs)} job(s)"))
    table = "\n".join(f"| {what} | {src} | {secs:.1f} | {note} |" for what, src, secs, note in rows)
    return f"\n#### Breakdown: {label}\n\n| step | measured by | seconds | note |\n|---|---|---|---|\n{table}\n"
