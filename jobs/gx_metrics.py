"""Spark providers that let GX count column-pair checks in the aggregate passes it makes anyway.

GX bundles the counts of single-column checks (and the row count) into `agg()` passes over the
batch, but for a column pair (`expect_column_pair_values_a_to_be_greater_than_b`) it registers the
unexpected count and the filtered row count as plain values: two Spark jobs per expectation, 18 of
a small detection's 49 validation jobs. `bundle_pair_counts` registers both as aggregates over the
column checks' domain, so they join those passes (49 -> 31 jobs). The verdicts are the same
figures: a row where either value is missing never counts as unexpected (the condition is null
there; with `or_equal`, two missing values are equal), and the filtered row count applies
`ignore_row_if` in the aggregate instead of as a filter.

Imported by `jobs/quality.py` only once GX itself is imported (GX loads lazily, see `preload`).
"""

from __future__ import annotations

import logging
from typing import Any

from great_expectations.compatibility.pyspark import functions as F
from great_expectations.core.metric_function_types import MetricFunctionTypes, MetricPartialFunctionTypes
from great_expectations.execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.metrics.column_pair_map_metrics.column_pair_values_greater import (
    ColumnPairValuesAGreaterThanB,
)
from great_expectations.expectations.metrics.metric_provider import MetricProvider
from great_expectations.expectations.registry import register_metric
from great_expectations.validator.metric_configuration import MetricConfiguration

# Pair metrics whose condition is null wherever either value is missing (see the module docstring).
PAIR_METRICS = {"column_pair_values.a_greater_than_b": ColumnPairValuesAGreaterThanB}
_PAIR_KEYS = ("column_A", "column_B", "ignore_row_if")
_AGGREGATE = MetricPartialFunctionTypes.AGGREGATE_FN.metric_suffix


def _column_domain(domain: dict) -> dict:
    """The pair's domain as the single-column checks' aggregate passes have it: no columns, no row filter."""
    return {k: v for k, v in domain.items() if k not in _PAIR_KEYS}


def _unexpected_count(
    cls: Any, execution_engine: Any, metric_domain_kwargs: dict, metric_value_kwargs: dict, metrics: dict, **kwargs
) -> tuple[Any, dict, dict]:
    unexpected, compute, accessor = metrics["unexpected_condition"]
    return F.count(F.when(unexpected, True)), _column_domain(compute), accessor


def _filtered_row_count(
    cls: Any, execution_engine: Any, metric_domain_kwargs: dict, metric_value_kwargs: dict, metrics: dict, **kwargs
) -> tuple[Any, dict, dict]:
    a, b = F.col(metric_domain_kwargs["column_A"]), F.col(metric_domain_kwargs["column_B"])
    mode = metric_domain_kwargs.get("ignore_row_if", "both_values_are_missing")
    kept = {
        "both_values_are_missing": a.isNotNull() | b.isNotNull(),
        "either_value_is_missing": a.isNotNull() & b.isNotNull(),
        "neither": F.lit(True),
    }[mode]
    accessor = {k: metric_domain_kwargs[k] for k in ("column_A", "column_B")}
    return F.count(F.when(kept, True)), _column_domain(metric_domain_kwargs), accessor


class _FilteredRowCount(MetricProvider):
    """`<pair metric>.filtered_row_count` resolved from its aggregate, as GX does for unexpected counts."""

    @classmethod
    def _get_evaluation_dependencies(
        cls,
        metric: MetricConfiguration,
        configuration: Any = None,
        execution_engine: Any = None,
        runtime_configuration: dict | None = None,
    ) -> dict:
        if metric.metric_name.endswith(_AGGREGATE):
            return {}
        value_kwargs = {k: v for k, v in metric.metric_value_kwargs.items() if k != "result_format"}
        partial = MetricConfiguration(f"{metric.metric_name}.{_AGGREGATE}", metric.metric_domain_kwargs, value_kwargs)
        return {"metric_partial_fn": partial}


def bundle_pair_counts() -> None:
    """Register the aggregate providers for `PAIR_METRICS` on Spark (idempotent)."""
    registry_log = logging.getLogger("great_expectations.expectations.registry")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # GX warns that a provider is replaced: that is the point here
    try:
        for name, metric_class in PAIR_METRICS.items():
            domain_keys, value_keys = metric_class.condition_domain_keys, metric_class.condition_value_keys
            for summary, provider, owner in (
                ("unexpected_count", _unexpected_count, metric_class),
                ("filtered_row_count", _filtered_row_count, _FilteredRowCount),
            ):
                for suffix, fn, fn_type in (
                    (f".{_AGGREGATE}", provider, MetricPartialFunctionTypes.AGGREGATE_FN),
                    ("", None, MetricFunctionTypes.VALUE),
                ):
                    register_metric(
                        metric_name=f"{name}.{summary}{suffix}",
                        metric_domain_keys=domain_keys,
                        metric_value_keys=value_keys,
                        execution_engine=SparkDFExecutionEngine,
                        metric_class=owner,
                        metric_provider=fn,
                        metric_fn_type=fn_type,
                    )
    finally:
        registry_log.setLevel(level)
