# WindFlow developer commands. Everything runs from the project venv (.venv).
#   make run    start WindFlow with private PostgreSQL/Redis under var/ (see devtools/runlocal.py)
#   make test   run the test suite (it starts its own PostgreSQL/Redis); PYTEST_ARGS="-k foo -x"
#   make lint   ruff check
#   make bench  run every benchmarks/*.py
#   make clean  remove caches and build leftovers (keeps .venv and var/, your dev data)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv run test lint bench clean

venv: $(STAMP)

# Reinstall only when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/python -m devtools.runlocal

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: venv
	@set -e; found=0; \
	for script in benchmarks/*.py; do \
		[ -f "$$script" ] || continue; \
		found=1; echo "== $$script"; \
		$(BIN)/python "$$script"; \
	done; \
	[ $$found = 1 ] || echo "no benchmarks/*.py to run"

clean:
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info staticfiles
