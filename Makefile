# The two commands: `make up` runs the platform, `make test` runs every check and test.
# Each sets up what it needs (virtual environment, dependencies) by itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY_DIRS := cli embeddings gateway guardrails ledger llm_pool orders retrieval router runtime workers tests bench scripts examples


.PHONY: up up-triton test chat health services protos contracts bench setup fmt clean

up: ## Run every service on loopback with seeded demo data (Ctrl-C stops all)
	bash scripts/setup.sh up
	$(BIN)/waybill up

up-triton: ## Like up, with a real Triton server (CPU test model) at the head of the tracking chain
	WAYBILL_WITH_TRITON=1 bash scripts/setup.sh up
	$(BIN)/waybill up --triton

test: ## Every check and test: ruff, mypy, buf lint/breaking/drift, pytest
	bash scripts/setup.sh test
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
	-$(BIN)/python scripts/build_contracts.py --check

contracts: setup ## Build the waybill-contracts wheel (generated stubs for other teams) into dist/
	$(BIN)/python scripts/build_contracts.py

bench: setup ## The standard benchmark set (each run starts its own mesh)
	$(BIN)/python -m bench --standard --scenario skeleton --rates 50,200
	$(BIN)/python -m bench --standard --scenario tracking --rates 100,200,300

fmt: setup ## Format code and contracts
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)
	$(BIN)/buf format -w

setup: ## Virtual environment, dependencies, model files (idempotent)
	bash scripts/setup.sh up

clean:
	rm -rf $(VENV) .venv-triton .waybill dist .mypy_cache .ruff_cache .pytest_cache
