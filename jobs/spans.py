"""Names the Spark jobs of each step, and records each step's wall time when a profile is asked for.

`span(spark, "detect:windows")` puts the Spark jobs run inside it in the job group `detect:windows`,
so Spark's event log (and its UI) say which step each job belongs to; `make bench` sums the job
durations per group from the event log. When `ENUMWATCH_PROFILE` names a file, the span's start and
end (seconds since the epoch) are appended to it as one JSON line, which also covers the steps that
are driver-side Python (GX, Data Docs) rather than Spark jobs. Without the variable it costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

PROFILE_ENV = "ENUMWATCH_PROFILE"


@contextmanager
def span(spark: SparkSession | None, name: str) -> Iterator[None]:
    """Run the body as the step `name`: its Spark jobs in that job group, its wall time in the profile."""
    sc = spark.sparkContext if spark is not None else None
    previous = sc.getLocalProperty("spark.jobGroup.id") if sc is not None else None
    if sc is not None:
        sc.setJobGroup(name, name)
    start = time.time()
    try:
        yield
    finally:
        end = time.time()
        if sc is not None:
            if previous:
                sc.setJobGroup(previous, previous)
            else:
                sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
                sc.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]
        record(name, start, end)


def record(name: str, start: float, end: float) -> None:
    """Append one step's wall time to the profile file, if one is asked for."""
    path = os.environ.get(PROFILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"span": name, "start": start, "end": end}) + "\n")
