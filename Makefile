# Set-up and run targets. Needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HOMICIDE_DATA_DIR ?= $(CURDIR)/data
SCALE ?= tiny
SEED ?= 1

.PHONY: install spark-env demo test ui bench lint sample lock clean-data chromium serve bench-latency

$(BIN)/activate: pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(BIN)/activate

# Imports read compiled bytecode. uv installs without it, and where PYTHONDONTWRITEBYTECODE is set
# (CI images, this machine) Python then compiles every imported module from source in every
# process: about 4,000 modules, 4-6 s of each `homicide-assets build` (Great Expectations alone
# 4.4 s from source, 2.0 s from bytecode). The package's own modules are compiled on every install
# (compileall skips those unchanged); a stale .pyc is ignored by Python, never wrong.
$(VENV)/.bytecode: $(BIN)/activate
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null
	@touch $@

install: $(BIN)/activate $(VENV)/.bytecode
	@$(BIN)/python -m compileall -q homicide_assets >/dev/null

# Write the committed sample deliveries into the landing folder and build the whole graph.
demo: install
	@bash scripts/ensure_key.sh
	@. ./scripts/key_env.sh && mkdir -p "$(HOMICIDE_DATA_DIR)/landing" && \
	  cp -R seeds/sample_deliveries/landing/. "$(HOMICIDE_DATA_DIR)/landing/" && \
	  $(BIN)/homicide-assets build

# The report's browser test opens both editions in Debian's headless Chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed (needs root for apt-get): the browser test will skip and say so"

# Splink on local Spark runs in its own environment: with pyspark installed, Great
# Expectations imports pyspark.sql.connect, which exits Dagster's run workers (see pyproject).
SPARK_VENV := .venv-spark
$(SPARK_VENV)/bin/activate: pyproject.toml requirements-spark.lock $(BIN)/activate
	$(PYTHON) -m venv $(SPARK_VENV)
	$(BIN)/uv pip sync --quiet --python $(SPARK_VENV)/bin/python requirements-spark.lock
	$(BIN)/uv pip install --quiet --python $(SPARK_VENV)/bin/python --no-deps -e .
	$(SPARK_VENV)/bin/python -m compileall -q -j 0 $(SPARK_VENV)/lib >/dev/null
	@touch $(SPARK_VENV)/bin/activate

spark-env: $(SPARK_VENV)/bin/activate

# Two workers (pytest-xdist), each taking whole test files so a module's fixtures build once:
# 6m38s against 13m04s one at a time on this 2-core machine in a slow spell (16:30-16:53, 2026-12-03).
test: install chromium spark-env
	$(BIN)/python -m pytest -q -n 2 --dist loadfile homicide_assets_tests
	$(SPARK_VENV)/bin/python -m pytest -q -p no:cacheprovider homicide_assets_tests/test_linkage_spark.py

ui: install
	@bash scripts/ensure_key.sh
	@. ./scripts/key_env.sh && mkdir -p "$(HOMICIDE_DATA_DIR)" && \
	  DAGSTER_HOME=$${DAGSTER_HOME:-$(HOMICIDE_DATA_DIR)/dagster_home} && mkdir -p $$DAGSTER_HOME && \
	  DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# --- serve / bench-latency (issue 9) ---------------------------------------------------
# Dagster's daemon and webserver as separate processes on 127.0.0.1 (PORT, default 3000).
# HOMICIDE_DAGSTER_YAML=deploy/dagster.postgres.yaml (with DAGSTER_PG_*) runs on PostgreSQL.
PORT ?= 3000
serve: install
	@bash scripts/ensure_key.sh
	@. ./scripts/key_env.sh && $(BIN)/python scripts/serve.py --port $(PORT)

# File-to-output latency over DROPS deliveries through a real daemon and webserver.
DROPS ?= 5
bench-latency: install
	@bash scripts/ensure_key.sh
	@. ./scripts/key_env.sh && $(BIN)/python -m homicide_assets.bench_latency --drops $(DROPS)
# --- end serve / bench-latency -----------------------------------------------------------

bench: install
	@bash scripts/ensure_key.sh
	@. ./scripts/key_env.sh && $(BIN)/python -m homicide_assets.bench --scale $(SCALE) --seed $(SEED)

lint: install
	$(BIN)/ruff check homicide_assets homicide_assets_tests

# Regenerate the committed tiny sample (deterministic).
sample: install
	rm -rf seeds/sample_deliveries
	$(BIN)/homicide-assets synth --scale tiny --seed 3 --out seeds/sample_deliveries

# Re-resolve the lock file (needs uv in the venv).
lock: install
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev --extra spark pyproject.toml \
	  -c requirements.lock -o requirements-spark.lock

clean-data:
	rm -rf "$(HOMICIDE_DATA_DIR)"
