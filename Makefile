# The two commands: `make up` runs the platform, `make test` runs every check and test.
# Each sets up what it needs (virtual environment, dependencies) by itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test chat health services protos bench setup fmt clean

up: setup ## Run every service on loopback with seeded demo data (Ctrl-C stops all)
	$(BIN)/waybill up

test: setup ## Every check and test: ruff, mypy, buf lint/breaking/drift, pytest
	bash scripts/check.sh

chat: setup ## A terminal chat against the running platform
	$(BIN)/waybill chat

health: setup ## gRPC health of every service (exit 0 only when all SERVING)
	$(BIN)/waybill health

services: setup ## Services and methods found through reflection
	$(BIN)/waybill services

protos: setup ## Regenerate gen/ from protos/
	$(BIN)/buf format -w
	$(BIN)/python scripts/gen_protos.py

bench: setup ## The standard benchmark set (starts the mesh itself)
	$(BIN)/python -m bench --standard

fmt: setup ## Format code and contracts
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/buf format -w

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV) (first run takes a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .waybill .mypy_cache .ruff_cache .pytest_cache
