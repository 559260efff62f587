"""Builds the SparkSession from settings, so the master and tuning are configuration, not code."""

from __future__ import annotations

import os
import shutil
import sys
import time

from pyspark.sql import SparkSession

from core.settings import Settings
from jobs import class_archive
from jobs.spans import record


class JavaMissingError(RuntimeError):
    """Spark needs a Java 17 runtime on PATH (or JAVA_HOME)."""


# Binary literals of 64 bytes are HMAC pads derived from the pseudonym key: keep them out of plans.
_REDACT = r"(?i)X'[0-9A-F]{128}'|0x[0-9A-F]{128}"


def get_spark(
    settings: Settings, app_name: str = "enumwatch", *, hive: bool = False, extra: dict[str, str] | None = None
) -> SparkSession:
    """Get or create the session for `settings.spark_master` with UTC time and key redaction.

    `hive` enables the Hive catalog (the JDBC server needs it); `extra` adds or overrides settings. A new
    driver JVM gets `spark.driver_java_options` and maps the class archive when there is one
    (`jobs/class_archive.py`).
    """
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise JavaMissingError(
            "Java not found: Spark needs Java 17 (Debian: apt-get install -y openjdk-17-jre-headless)"
        )
    # Executors run our Python (the careful reader): the driver's interpreter unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.sql.redaction.string.regex", _REDACT)
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .config("spark.ui.showConsoleProgress", "true")
        # Off: pyspark 4 otherwise records the Python call site of every Column function in the JVM (about
        # five py4j round trips each) for error messages. A small detection: 55,594 -> 21,134 round trips,
        # 24.1 -> 20.1 s (bench/results.md). Spark's errors still name the failing expression.
        .config("spark.python.sql.dataFrameDebugging.enabled", "false")
    )
    if settings.spark_master.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false")
    # Spark prepends these to extraJavaOptions, which stay the user's.
    java = " ".join(o for o in (settings.driver_java_options, class_archive.java_options()) if o)
    if java:
        builder = builder.config("spark.driver.defaultJavaOptions", java)
    if hive:
        builder = builder.enableHiveSupport()
    for key, value in (extra or {}).items():
        builder = builder.config(key, value)
    started = time.time()
    fresh = SparkSession.getActiveSession() is None
    spark = builder.getOrCreate()
    if fresh:
        record("spark:session start (JVM)", started, time.time())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def generated_code(spark: SparkSession, input_bytes: int, settings: Settings) -> bool:
    """Compile the coming queries to Java bytecode when their input reaches `codegen_min_bytes`, else interpret.

    Spark compiles every new plan (whole-stage code generation, Janino) before it runs: that pays over
    millions of rows and costs more than it saves over one hourly file, where a run is dozens of short
    queries. Session-wide and set by each flow run, so a long-lived `watch` follows each run's size.
    """
    on = input_bytes >= settings.codegen_min_bytes
    spark.conf.set("spark.sql.codegen.wholeStage", "true" if on else "false")
    spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if on else "NO_CODEGEN")
    return on
