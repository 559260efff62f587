"""Runs a GX expectation suite from `expectations/` against a DataFrame and returns `dq_results` rows.

Suites are JSON so they can be reviewed like rules. Each expectation carries a GX severity: a failed
`critical` one stops its stage from publishing; a failed `warning` one is recorded and reported.
Validations run one at a time per session (GX reuses fixed temp view names) and the batch GX
persists is released afterwards (GX never unpersists it).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
_ONE_AT_A_TIME = threading.Lock()


class QualityGateError(RuntimeError):
    """A critical expectation failed, so the stage did not publish."""


@dataclass(frozen=True)
class Verdict:
    """One expectation's outcome, shaped like a `dq_results` row."""

    run_id: str
    stage: str
    suite: str
    expectation: str
    severity: str
    success: bool
    observed_value: str | None
    unexpected_count: int | None
    validated_at: datetime

    def describe(self) -> str:
        """One line for people: what failed and what was seen."""
        seen = f"unexpected {self.unexpected_count}" if self.unexpected_count else f"observed {self.observed_value}"
        return f"{self.suite}: {self.expectation} [{self.severity}] {seen}"


def load_suite(name: str) -> dict[str, Any]:
    """The suite `expectations/<name>.json` as a dict (tests check every file parses)."""
    path = EXPECTATIONS_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: {exc.msg}") from exc


def _label(config: Any) -> str:
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    args = [str(kwargs.pop("column"))] if "column" in kwargs else []
    for name, value in kwargs.items():
        if isinstance(value, dict) and "$PARAMETER" in value:
            value = "$" + value["$PARAMETER"]
        args.append(f"{name}={value}")
    return f"{config.type}({', '.join(args)})"


def _observed(item: Any) -> str | None:
    res = item.result or {}
    if item.exception_info and item.exception_info.get("raised_exception"):
        return f"error: {item.exception_info.get('exception_message')}"
    if res.get("observed_value") is not None:
        return str(res["observed_value"])
    if res.get("element_count") is not None:
        return f"{res.get('unexpected_count', 0)} unexpected of {res['element_count']}"
    return None


def validate(
    df: DataFrame, suite_name: str, *, run_id: str, stage: str, parameters: dict[str, Any] | None = None
) -> list[Verdict]:
    """Validate `df` with the named suite and return one verdict per expectation."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    spec = load_suite(suite_name)
    with _ONE_AT_A_TIME:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_spark(name=f"{stage}_{suite_name}").add_dataframe_asset(name=suite_name)
        batch = asset.add_batch_definition_whole_dataframe(name="whole")
        suite = context.suites.add(
            gx.ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta"))
        )
        definition = gx.ValidationDefinition(name=f"{stage}_{suite_name}", data=batch, suite=suite)
        try:
            result = definition.run(
                batch_parameters={"dataframe": df}, expectation_parameters=parameters or {}, result_format="SUMMARY"
            )
        finally:
            df.sparkSession.catalog.clearCache()
    now = datetime.now(timezone.utc)
    verdicts = []
    for item in result.results:
        config = item.expectation_config
        res = item.result or {}
        verdicts.append(
            Verdict(
                run_id=run_id,
                stage=stage,
                suite=suite_name,
                expectation=_label(config),
                severity=str(getattr(config.severity, "value", config.severity)),
                success=bool(item.success),
                observed_value=_observed(item),
                unexpected_count=res.get("unexpected_count"),
                validated_at=now,
            )
        )
    return verdicts
