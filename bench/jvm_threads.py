"""Where a command's Java CPU goes: each Java thread's CPU seconds, summed by thread kind.

A sampled profile (bench/jfr_summary.py) shows what the task threads ran; it does not show what the
JVM spent beside them. This reads every Java thread's CPU time from /proc while the command runs
(Linux only) and sums it by thread name, numbers dropped, so the JIT compilers, the garbage collector
and the py4j threads that plan queries for Python each get one line next to the task threads:

    .venv/bin/python bench/jvm_threads.py -- .venv/bin/enumwatch run --source ... --lake ... \
      > bench/profiles/<name>.md
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _java_threads() -> dict[tuple[str, str], tuple[str, float]]:
    """(pid, tid) -> (thread name, CPU seconds so far) for every thread of every running java process."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"java" not in (proc / "cmdline").read_bytes()[:300]:
                continue
            for task in (proc / "task").iterdir():
                raw = (task / "stat").read_text()
                name = raw[raw.index("(") + 1 : raw.rindex(")")]
                fields = raw[raw.rindex(")") + 2 :].split()
                found[(proc.name, task.name)] = (name, (int(fields[11]) + int(fields[12])) / _TICK)
        except (OSError, ValueError):  # a process or thread that ended while it was read
            continue
    return found


def kind(name: str) -> str:
    """A thread's kind: its name (15 characters at most on Linux) without a trailing number ("GC Thread#1" -> "GC Thread")."""
    return re.sub(r"[\s#-]*\d+$", "", name) or name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="+", help="the command to run (after --)")
    parser.add_argument("--every", type=float, default=0.3, help="seconds between samples")
    args = parser.parse_args()
    last: dict[tuple[str, str], tuple[str, float]] = {}
    started = time.monotonic()
    child = subprocess.Popen(args.command, stdout=sys.stderr)  # stdout is the table's
    while child.poll() is None:
        last.update(_java_threads())  # a thread's last sample before it ends is its total
        time.sleep(args.every)
    wall = time.monotonic() - started
    by_kind: dict[str, float] = defaultdict(float)
    for name, cpu in last.values():
        by_kind[kind(name)] += cpu
    total = sum(by_kind.values())
    print(f"Command: `{' '.join(args.command)}`, exit {child.returncode}, {wall:.1f} s wall.\n")
    print("| Java threads | CPU s | share |\n|---|---|---|")
    for name, cpu in sorted(by_kind.items(), key=lambda item: -item[1]):
        if cpu >= 0.05:
            print(f"| {name} | {cpu:.1f} | {cpu / total:.0%} |")
    print(f"| all | {total:.1f} | 100% |")
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
