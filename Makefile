# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements.txt) consumers/requirements.txt frontend/requirements.txt requirements-dev.txt
# command:package pairs. `make run` needs Redis; the tests also drive Chromium.
RUN_PACKAGES := redis-server:redis-server
SYSTEM_PACKAGES := $(RUN_PACKAGES) chromium:chromium

.PHONY: run test bench train setup

setup: $(STAMP)

$(STAMP): $(REQUIREMENTS) consumers/requirements-nodeps.txt pyproject.toml
	@# Debian's python3 makes venvs only with python3-venv (ensurepip) installed.
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || scripts/ensure-system-packages --package python3-venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(addprefix -r ,$(REQUIREMENTS))
	$(BIN)/python -m pip install -q --no-deps -r consumers/requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: setup
	@scripts/ensure-system-packages $(RUN_PACKAGES)
	$(BIN)/python -m local_kiosk

test: setup
	@scripts/ensure-system-packages $(SYSTEM_PACKAGES)
	$(BIN)/python -m pytest tests

bench: setup
	@scripts/ensure-system-packages $(RUN_PACKAGES)
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.api_load

# make train DATA=../shared/datasets/nuclei (or KIOSK_TRAIN_DATA=...); without one: synthetic images only
train: setup
	$(BIN)/python -m training.train_nuclear_segmentation $(if $(DATA),--data $(DATA))
