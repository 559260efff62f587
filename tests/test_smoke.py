"""Smoke: every schema builds, every suite parses and loads in GX, every deployment entrypoint imports."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest
from pyspark.sql import types as T

from jobs.quality import EXPECTATIONS_DIR, build_suite, load_suite
from schemas import LAKE_TABLES, LINES, PARTITION_AGES

REPO = Path(__file__).resolve().parents[1]
SUITES = sorted(EXPECTATIONS_DIR.glob("*.json"))
TABLES = [*LAKE_TABLES.values(), LINES, PARTITION_AGES]
CHECKED = {t.name: t for t in TABLES}  # a suite may check an internal table (the retention check's ages)


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_schema_builds_a_spark_schema_with_documented_columns(table):
    schema = table.spark_schema()
    assert isinstance(schema, T.StructType)
    assert schema.fieldNames() == table.names
    assert len(set(table.names)) == len(table.names)
    assert all(c.doc.strip() for c in table.columns)
    assert set(table.partition_by) <= set(table.names)
    assert table.markdown().count("\n") == len(table.columns) + 1


def test_ingest_suites_exist_for_requests_and_quarantine():
    assert {p.stem for p in SUITES} >= {"requests", "quarantine"}


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_suite_file_parses_and_loads_as_a_gx_expectation_suite(path):
    spec = load_suite(path.stem)
    assert spec == json.loads(path.read_text(encoding="utf-8"))
    assert spec["name"] == path.stem
    assert all(e["severity"] in ("critical", "warning") for e in spec["expectations"])
    suite = build_suite(spec)
    assert len(suite.expectations) == len(spec["expectations"])
    table = CHECKED[spec["meta"]["table"]]
    columns = {e["kwargs"]["column"] for e in spec["expectations"] if "column" in e["kwargs"]}
    assert columns <= set(table.names), "a suite names a column its table does not have"


def _entrypoints() -> list[str]:
    path = REPO / "prefect.yaml"
    if not path.exists():
        return []
    import yaml

    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [d["entrypoint"] for d in spec.get("deployments") or [] if d.get("entrypoint")]


@pytest.mark.skipif(not (REPO / "prefect.yaml").exists(), reason="prefect.yaml not written yet")
@pytest.mark.parametrize("entrypoint", _entrypoints() or ["none"], ids=lambda e: e)
def test_prefect_yaml_entrypoint_imports_and_names_a_flow(entrypoint):
    from prefect import Flow

    assert entrypoint != "none", "prefect.yaml declares no deployment entrypoints"
    file, _, name = entrypoint.partition(":")
    assert (REPO / file).is_file(), f"{file} does not exist"
    module = importlib.import_module(Path(file).with_suffix("").as_posix().replace("/", "."))
    assert isinstance(getattr(module, name), Flow)


@pytest.mark.parametrize("module", ["jobs.ingest", "pipelines.ingest", "cli.main"], ids=lambda m: m)
def test_entry_module_imports(module):
    assert importlib.import_module(module).__doc__


def test_jobs_never_import_the_orchestrator():
    offenders = []
    for path in sorted((REPO / "jobs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("prefect", "pipelines")]
    assert offenders == []


def test_a_suite_with_an_expectation_type_gx_does_not_know_is_refused_naming_its_file():
    spec = load_suite("campaigns")
    spec["expectations"][0] = {**spec["expectations"][0], "type": "expect_column_values_to_be_spelt_wrong"}
    with pytest.raises(ValueError, match=r"campaigns\.json: expectation types GX does not know: .*spelt_wrong"):
        build_suite(spec)
