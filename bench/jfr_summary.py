"""Summarise a Java Flight Recorder file: where the sampled Java threads spent their time.

Record a Spark job's JVM with the JDK's own profiler, then summarise the recording:

    SPARK_SUBMIT_OPTS="-XX:FlightRecorderOptions:stackdepth=512 \
      -XX:StartFlightRecording=filename=/tmp/job.jfr,settings=profile,dumponexit=true" <command>
    .venv/bin/python bench/jfr_summary.py /tmp/job.jfr > bench/profiles/<name>.md

Self time is the frame on top of each sample; "inclusive" counts a sample for every distinct frame
on its stack. JIT-compiled generated code (whole-stage codegen) shows as `GeneratedIteratorForCodegenStage*`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import Counter


def samples(path: str) -> list[list[str]]:
    """Every execution sample's stack, top frame first, as `Class.method` names."""
    out = subprocess.run(
        ["jfr", "print", "--json", "--stack-depth", "512", "--events", "jdk.ExecutionSample", path],
        check=True,
        capture_output=True,
    ).stdout
    stacks = []
    for event in json.loads(out)["recording"]["events"]:
        trace = event["values"].get("stackTrace")
        if trace and trace["frames"]:
            stacks.append(
                [f["method"]["type"]["name"].split("/")[-1] + "." + f["method"]["name"] for f in trace["frames"]]
            )
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    stacks = samples(args.recording)
    n = len(stacks)
    own = Counter(s[0] for s in stacks)
    inclusive = Counter(frame for s in stacks for frame in set(s))
    print(f"# JFR execution samples: {args.recording}\n\n{n:,} samples.\n")
    for title, counts in (("Self time", own), ("Inclusive", inclusive)):
        print(f"## {title}\n\n| share | frame |\n|---|---|")
        for frame, c in counts.most_common(args.top):
            print(f"| {100 * c / n:.1f}% | `{frame}` |")
        print()


if __name__ == "__main__":
    main()
