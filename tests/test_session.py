"""The Spark session: the driver JVM's configured options; generated code for large inputs, interpreted plans for small ones."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.session import generated_code

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[1]


def _plan_and_rows(spark):
    df = spark.range(10).groupBy((F.col("id") % 3).alias("k")).agg(F.sum("id").alias("n")).orderBy("k")
    return df._jdf.queryExecution().executedPlan().toString(), [tuple(r) for r in df.collect()]


def test_generated_code_compiles_inputs_from_the_configured_size_and_interprets_smaller_ones(spark, settings):
    configured = replace(settings, codegen_min_bytes=1_000)
    try:
        assert generated_code(spark, 999, configured) is False
        interpreted_plan, interpreted_rows = _plan_and_rows(spark)
        assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
        assert generated_code(spark, 1_000, configured) is True
        compiled_plan, compiled_rows = _plan_and_rows(spark)
        assert spark.conf.get("spark.sql.codegen.factoryMode") == "FALLBACK"
    finally:
        generated_code(spark, 0, configured)  # back to the tests' interpreted default (conftest)
    assert "*(" not in interpreted_plan  # Spark marks whole-stage generated operators with *(n)
    assert "*(" in compiled_plan
    assert interpreted_rows == compiled_rows == [(0, 18), (1, 12), (2, 15)]


_PROBE = """
import sys
from pathlib import Path
from core.settings import load_settings
from jobs.session import get_spark
jvm = get_spark(load_settings(Path(sys.argv[1])))._jvm
print(jvm.java.lang.System.getProperty("enumwatch.probe"))
"""


def test_a_new_driver_jvm_gets_the_configured_java_options(tmp_path):
    config = tmp_path / "enumwatch.toml"
    config.write_text('[spark]\nmaster = "local[1]"\ndriver_java_options = "-Denumwatch.probe=set -XX:+UseSerialGC"\n')
    got = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config)], capture_output=True, text=True, timeout=180, cwd=REPO
    )
    assert (got.returncode, got.stdout.strip().splitlines()[-1:]) == (0, ["set"]), got.stderr[-2000:]
