# Two entry points a new machine needs: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench eval clean check-java class-archive

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"' \
		|| { echo "enumwatch needs Python 3.11 ($(PYTHON) is not); set PYTHON=/path/to/python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

check-java:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || { \
		echo "Java not found: Spark needs Java 17. On Debian: apt-get install -y openjdk-17-jre-headless"; exit 1; }

# The JVM classes a run loads, archived once per Java build and pyspark so every later driver maps them
# (jobs/class_archive.py): about 4 s off each JVM start. Nothing to do when the archive is there.
class-archive: $(STAMP) check-java
	$(BIN)/python -m jobs.class_archive

demo: class-archive
	$(BIN)/enumwatch demo

# One worker per core (the tests are CPU-bound: more workers only contend), a test module per worker (its
# module-scoped runs stay shared), modules handed out longest first (tests/conftest.py), not by test count.
test: class-archive
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(BIN)/pytest -m "not spark and not flow and not slow"

# Style (ruff) and the layers contract (import-linter, [tool.importlinter] in pyproject.toml); CI runs it.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# BENCH_BIG=1 adds the run at 10x the data (about 14M lines; long); BENCH_STAGES=1 splits the ingest job
# into read/parse/hash/write; BENCH_ARGS passes more (see bench/run.py).
bench: class-archive
	$(BIN)/python bench/run.py $(if $(BENCH_BIG),--big) $(if $(BENCH_STAGES),--stages) $(BENCH_ARGS)

# Precision and recall of every rule on labelled generated traffic, several seeds and scales -> bench/eval.md.
eval: class-archive
	$(BIN)/python bench/eval.py

clean:
	rm -rf lake demo bench/data bench/work spark-warehouse metastore_db derby.log
