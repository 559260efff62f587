"""A class-data-sharing archive of the JVM classes a Spark run loads, mapped by every later driver JVM.

A local Spark driver loads and verifies some 14,000 classes from jars on every start: about half of the
8 s that starting a session, running two small jobs and stopping takes on 2 cores. Java 17 can write the
classes a JVM loaded into an archive when it exits (`-XX:ArchiveClassesAtExit`) and map that archive
into later JVMs (`-XX:SharedArchiveFile`): the same session then takes about 4 s. Every `enumwatch`
command and every test JVM starts a driver, so this is fixed cost saved many times over.

The archive belongs to one Java build and one pyspark, so it lives in the virtual environment under a
name derived from both; `python -m jobs.class_archive` builds it once (make does it before the demo,
the tests and the benchmarks; it does nothing when the archive is there). Without it, Spark starts as
before. A JVM that finds an archive unusable ignores it (`-Xshare:auto`, Java's default); its warnings
go to stderr, never to stdout, where `--json` output goes. A half-written archive crashes the JVM that
maps it, so it is written under a temporary name and renamed only after the training JVM has exited.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

# JVM warnings (an archive from another Java build, say) to stderr, not into stdout.
_WARNINGS_TO_STDERR = "-Xlog:disable -Xlog:all=warning:stderr"
_TRAIN = "--train"


def archive_path() -> Path | None:
    """Where this Java and this pyspark keep their archive (None without Java)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    java = os.path.realpath(java)
    libjvm = Path(java).parents[1] / "lib" / "server" / "libjvm.so"
    build = os.stat(libjvm if libjvm.exists() else java)  # an upgraded Java replaces these files
    ident = f"{java} {build.st_size} {build.st_mtime_ns} pyspark {version('pyspark')}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return Path(sys.prefix) / "var" / "enumwatch" / f"spark-classes-{digest}.jsa"


def java_options(path: Path | None = None) -> str:
    """The driver JVM options that map the archive, or "" when there is none to map.

    A SPARK_CONF_DIR that holds files puts a non-empty directory on the JVM's class path, which Java
    17's class sharing refuses: Spark then starts without the archive, as before.
    """
    conf = os.environ.get("SPARK_CONF_DIR")
    if conf and os.path.isdir(conf) and os.listdir(conf):
        return ""
    path = path or archive_path()
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} {_WARNINGS_TO_STDERR}"


def build(path: Path | None = None) -> Path:
    """Write the archive by running a small training job that touches what a run does; return its path.

    Does nothing when the archive exists. Archives of earlier Java builds or pysparks are removed.
    """
    path = path or archive_path()
    if path is None:
        raise RuntimeError("Java not found: Spark needs Java 17 (Debian: apt-get install -y openjdk-17-jre-headless)")
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    done = spark_submit(
        Path(__file__), _TRAIN, java_options=f"-XX:ArchiveClassesAtExit={partial} {_WARNINGS_TO_STDERR}"
    )
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"{__file__}: the training job failed (exit {done.returncode}): {done.stderr[-2000:]}")
    for old in path.parent.glob("spark-classes-*.jsa"):
        old.unlink()
    os.replace(partial, path)
    return path


def spark_submit(app: Path, *args: str, java_options: str) -> subprocess.CompletedProcess[str]:
    """Run the Python `app` under the wheel's spark-submit (local[2], UI off) with these driver JVM options,
    none from SPARK_SUBMIT_OPTS and no SPARK_CONF_DIR; its output is captured."""
    from pyspark.find_spark_home import _find_spark_home

    return subprocess.run(
        [
            str(Path(_find_spark_home()) / "bin" / "spark-submit"),
            *("--master", "local[2]", "--conf", "spark.ui.enabled=false", "--driver-java-options", java_options),
            *(str(app), *args),
        ],
        env={
            **{k: v for k, v in os.environ.items() if k != "SPARK_CONF_DIR"},  # the class path drivers start with
            **dict(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, SPARK_SUBMIT_OPTS=""),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def train(spark, workdir: Path) -> None:
    """Read gzip JSON lines, pass them through Python (Arrow), hash, write and re-read partitioned
    Parquet, merge HLL sketches, rank in windows, explode sets, join every way and write Parquet and
    JSON: the kinds of work `enumwatch run` does."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    source = workdir / "in" / "2026-01-01T00.jsonl.gz"
    source.parent.mkdir(parents=True)
    with gzip.open(source, "wt", encoding="utf-8") as fh:
        for i in range(200):
            fh.write(json.dumps({"ts": f"2026-01-01T00:{i % 60:02d}:00Z", "client": f"c{i % 7}", "id": str(i)}) + "\n")
    text = spark.read.text(str(source.parent)).select("value", F.col("_metadata.file_path").alias("file"))
    lines = text.mapInArrow(lambda batches: batches, text.schema)
    rows = lines.select("file", F.from_json("value", "ts string, client string, id string").alias("r")).select(
        "file", "r.*"
    )
    hashed = rows.select(
        "client",
        F.sha2(F.concat_ws("|", "client", "id"), 256).alias("h"),
        F.to_date(F.try_to_timestamp("ts")).alias("event_date"),
    )
    hashed.write.partitionBy("event_date").parquet(str(workdir / "lake"))
    stored = spark.read.parquet(str(workdir / "lake"))
    days = stored.groupBy("client", "event_date").agg(F.hll_sketch_agg("h").alias("sketch"), F.count("*").alias("n"))
    week = days.groupBy("client").agg(F.hll_sketch_estimate(F.hll_union_agg("sketch")).alias("distinct_ids"))
    ranked = days.withColumn("rank", F.row_number().over(Window.partitionBy("event_date").orderBy(F.desc("n"))))
    ranked = ranked.withColumn("previous", F.lag("n").over(Window.partitionBy("client").orderBy("event_date")))
    members = stored.groupBy("event_date").agg(F.collect_set("client").alias("members"))
    exploded = members.select("event_date", F.explode("members").alias("client"), F.size("members").alias("size"))
    listed = spark.createDataFrame([("c1",)], "client string")
    result = (
        week.join(ranked, "client")
        .join(F.broadcast(exploded), ["client", "event_date"])
        .join(listed, "client", "left_anti")
        .unionByName(week.join(ranked, "client").join(exploded, ["client", "event_date"]).limit(1))
        .orderBy("client", "event_date")
    )
    result.write.parquet(str(workdir / "out"))
    result.write.json(str(workdir / "json"))
    spark.read.parquet(str(workdir / "out")).count()


def main() -> None:
    """`python -m jobs.class_archive`: build the archive; under spark-submit with --train: the training job."""
    if _TRAIN in sys.argv:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName("enumwatch-class-archive").getOrCreate()
        with tempfile.TemporaryDirectory() as workdir:
            train(spark, Path(workdir))
        spark.stop()
        return
    print(f"class archive: {build()}")


if __name__ == "__main__":
    main()
