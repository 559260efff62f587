"""The Spark session's per-run tuning: generated code for large inputs, interpreted plans for small ones."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pyspark.sql import functions as F

from jobs.session import generated_code

pytestmark = pytest.mark.spark


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
