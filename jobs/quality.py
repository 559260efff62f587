"""Runs a GX expectation suite from `expectations/` against a DataFrame and returns `dq_results` rows.

Suites are JSON so they can be reviewed like rules. Each expectation carries a GX severity: a failed
`critical` one stops its stage from publishing; a failed `warning` one is recorded and reported.
Validations run one at a time per session (GX reuses fixed temp view names).

A Spark batch is validated where it lies (a staged Parquet table), not persisted: GX bundles a
suite's column checks into one aggregate pass that reads only the columns they name, while its
default persist() copied every column of every row into Spark's cache first (at 1.4M requests, half
the suite's time), and was never released. Cross-table checks count their query's rows once
(`expect_no_unexpected_rows`, `jobs/gx_expectations.py`).

The validations of one run share a GX context, so `build_data_docs` can render them as one Data Docs
site. Results keep counts and percentages only: GX would otherwise list sample unexpected values,
and the value that fails a "no raw ID number here" check is exactly what must never be written out.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from jobs.spans import span

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
_ONE_AT_A_TIME = threading.Lock()
# Counts and percentages only, never sample values (see the module docstring). GX edits the dict it is
# given, so each validation gets a copy. BASIC carries every figure dq_results keeps (observed value,
# unexpected and element counts) and spares SUMMARY's extra metrics: a third less time per suite.
SAFE_RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "include_unexpected_rows": False,
}
_DOCS_SITE = "run"
_KEPT_RUNS = 8  # contexts of runs whose docs were never built are dropped after this many newer runs


@dataclass
class _RunContext:
    """The GX context that collects one run's validations, and the suites already added to it."""

    context: Any
    suites: dict[str, Any] = field(default_factory=dict)


_RUNS: OrderedDict[str, _RunContext] = OrderedDict()


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


def gate_passed(verdicts: list[Verdict]) -> bool:
    """Whether every critical expectation held (warnings never stop a stage)."""
    return all(v.success for v in verdicts if v.severity == "critical")


def report_failures(verdicts: list[Verdict], logger: Any) -> None:
    """Log each failed expectation: critical ones as errors, warnings as warnings."""
    for v in verdicts:
        if not v.success:
            (logger.error if v.severity == "critical" else logger.warning)("expectation failed: %s", v.describe())


def raise_if_failed(verdicts: list[Verdict], what: str, data_docs: str | None = None) -> None:
    """Raise QualityGateError naming every failed critical expectation (and where the Data Docs are).

    One line, as every error a person can fix: the CLI prints it as is, and a page quotes it.
    """
    failed = [v.describe() for v in verdicts if not v.success and v.severity == "critical"]
    if failed:
        where = f" (data docs: {data_docs})" if data_docs else ""
        raise QualityGateError(f"{what} not published; critical expectations failed: " + "; ".join(failed) + where)


def load_suite(name: str) -> dict[str, Any]:
    """The suite `expectations/<name>.json` as a dict (tests check every file parses)."""
    path = EXPECTATIONS_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: {exc.msg}") from exc


def build_suite(spec: dict[str, Any]) -> Any:
    """The GX ExpectationSuite of a suite spec, enumwatch's own expectation types registered first.

    GX leaves out an expectation of a type it does not know without a word, so a suite that lost one
    is refused here, naming its file.
    """
    import great_expectations as gx

    import jobs.gx_expectations  # noqa: F401  (defining its classes registers their types with GX)
    from jobs.gx_metrics import bundle_pair_counts

    bundle_pair_counts()

    suite = gx.ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta"))
    if len(suite.expectations) != len(spec["expectations"]):
        known = {e.expectation_type for e in suite.expectations}
        unknown = sorted({e["type"] for e in spec["expectations"]} - known)
        raise ValueError(f"{EXPECTATIONS_DIR / spec['name']}.json: expectation types GX does not know: {unknown}")
    return suite


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


def preload() -> None:
    """Import GX in a background thread, to overlap its seconds of imports with a Spark job.

    The driver's main thread waits on the JVM while a job runs; `validate` later finds GX imported
    (or waits for the import to finish).
    """

    def load() -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        with span(None, "gx:import (background)"):
            import great_expectations  # noqa: F401

    threading.Thread(target=load, name="gx-preload", daemon=True).start()


def validate(
    df: Any, suite_name: str, *, run_id: str, stage: str, parameters: dict[str, Any] | None = None
) -> list[Verdict]:
    """Validate `df` (a Spark or a pandas DataFrame) with the named suite and return one verdict per expectation."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with span(None, "gx:import"):  # seconds on the first validation of a process, nothing after
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.base import ProgressBarsConfig

    spec = load_suite(suite_name)
    # A pandas frame (the retention check's few rows, validated without Spark) gets a pandas source.
    spark = isinstance(df, DataFrame)
    with _ONE_AT_A_TIME, span(df.sparkSession if spark else None, f"gx:{stage}:{suite_name}"):
        run = _RUNS.get(run_id)
        if run is None:
            run = _RUNS[run_id] = _RunContext(gx.get_context(mode="ephemeral"))
            run.context.variables.progress_bars = ProgressBarsConfig(globally=False)
            while len(_RUNS) > _KEPT_RUNS:
                _RUNS.popitem(last=False)
        context = run.context
        unique = f"{stage}_{suite_name}_{uuid.uuid4().hex[:8]}"  # a run may validate one suite twice
        source = (
            context.data_sources.add_spark(name=unique, persist=False)
            if spark
            else context.data_sources.add_pandas(name=unique)
        )
        asset = source.add_dataframe_asset(name=suite_name)
        batch = asset.add_batch_definition_whole_dataframe(name="whole")
        if spec["name"] not in run.suites:
            run.suites[spec["name"]] = context.suites.add(build_suite(spec))
        definition = gx.ValidationDefinition(name=unique, data=batch, suite=run.suites[spec["name"]])
        result = definition.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=parameters or {},
            result_format=dict(SAFE_RESULT_FORMAT),
            run_id=RunIdentifier(run_name=run_id, run_time=datetime.now(timezone.utc)),  # named in the docs
        )
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


def build_data_docs(run_id: str, site: Path) -> Path | None:
    """Render `run_id`'s validations as a Data Docs site in `site`; its index.html, or None if it validated nothing."""
    with _ONE_AT_A_TIME, span(None, "gx:data docs"):
        run = _RUNS.pop(run_id, None)
        if run is None:
            return None
        site = site.expanduser().absolute()
        run.context.add_data_docs_site(
            _DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        run.context.build_data_docs(site_names=[_DOCS_SITE])
    _share_static(site)
    return site / "index.html"


def _share_static(site: Path) -> None:
    # Every site carries the same 4 MB of fonts and styles: keep one copy per GX version beside the sites.
    import great_expectations as gx

    own = site / "static"
    if own.is_symlink() or not own.is_dir():
        return
    shared = site.parent / f"_static-{gx.__version__}"
    try:
        own.rename(shared)
    except OSError:  # already there (an earlier run, or another process just now)
        shutil.rmtree(own)
    own.symlink_to(os.path.relpath(shared, site))


def prune_data_docs(root: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest run sites under `root`; return the deleted ones."""
    if not root.is_dir():
        return []
    sites = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / "index.html").exists()]
    sites.sort(key=lambda p: (p / "index.html").stat().st_mtime, reverse=True)
    for old in sites[keep:]:
        shutil.rmtree(old)
    return sites[keep:]
