# WindFlow developer commands. Each one first runs devtools/bootstrap.py (system python3), which
# installs what is missing (apt packages as root or with passwordless sudo, else the PyPI
# fallbacks; the venv in .venv) and takes well under a second when everything is there.
#   make run    start WindFlow with private PostgreSQL/Redis (and a Docker engine when the
#               machine has none) under var/; see devtools/runlocal.py
#   make test   run the test suite (its own PostgreSQL, Redis and Docker engine); PYTEST_ARGS="-k foo -x"
#   make lint   ruff check
#   make bench  run every benchmarks/*.py
#   make clean  remove caches and build leftovers (keeps .venv and var/, your dev data)

PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
BOOTSTRAP := $(PYTHON) devtools/bootstrap.py
PYTEST_ARGS ?=

.PHONY: venv run test lint bench clean

venv:
	@$(BOOTSTRAP) run

run:
	@$(BOOTSTRAP) run
	$(BIN)/python -m devtools.runlocal

test:
	@$(BOOTSTRAP) test
	$(BIN)/pytest $(PYTEST_ARGS)

lint:
	@$(BOOTSTRAP) lint
	$(BIN)/ruff check .

bench:
	@$(BOOTSTRAP) run
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
