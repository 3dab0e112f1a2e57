# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements.txt) consumers/requirements.txt frontend/requirements.txt requirements-dev.txt
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium

.PHONY: run test bench train setup

setup: $(STAMP)
	@scripts/ensure-system-packages $(SYSTEM_PACKAGES)

$(STAMP): $(REQUIREMENTS) consumers/requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(addprefix -r ,$(REQUIREMENTS))
	$(BIN)/python -m pip install -q --no-deps -r consumers/requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(BIN)/python -m local_kiosk

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python -m benchmarks.pipeline

train: setup
	$(BIN)/python -m training.train_nuclear_segmentation
