# medmesh — one command each way: `make run`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)

.DEFAULT_GOAL := help

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if ! $(BIN)/uv --version 2>/dev/null | grep -q "$(UV_VERSION)"; then \
		$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null; \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	fi
	@$(BIN)/uv sync --frozen --all-extras --inexact --quiet --compile-bytecode
	@touch $@

install: $(STAMP) native ## Create .venv with every service and the dev tools (from uv.lock)

native: $(STAMP) ## Compile phi's hot modules with mypyc (nothing to do when the build matches the sources)
	@$(BIN)/python -m medmesh.cli.native_build

tools: ## Install kustomize and promtool into .tools/bin (deployment tests)
	@bash deploy/install-tools.sh $(TOOLS)

run: $(STAMP) native ## Start every service (SQLite in var/), seed demo data, print URLs and an admin token
	@$(BIN)/medmesh up

test: $(STAMP) tools native ## Run the whole test suite with coverage
	@mkdir -p var
	@$(BIN)/pytest --cov --cov-report=term --cov-report=xml:var/coverage.xml -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy --strict (src and tests), import contracts, OpenAPI and settings reference up to date
	@$(BIN)/ruff check src tests bench
	@$(BIN)/ruff format --check src tests bench
	@$(BIN)/mypy
	@$(BIN)/lint-imports
	@$(BIN)/medmesh openapi --check
	@$(BIN)/medmesh settings-doc --check

format: $(STAMP) ## Apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix src tests bench
	@$(BIN)/ruff format src tests bench

openapi: $(STAMP) ## Regenerate docs/openapi/<service>.json
	@$(BIN)/medmesh openapi

bench: $(STAMP) native ## Run the benchmarks (figures and ratios against a control)
	@$(BIN)/python bench/run.py

clean: ## Remove the virtualenv, tools and local data
	rm -rf $(VENV) $(TOOLS) var .mypy_cache .ruff_cache src/medmesh/_native

.PHONY: help install native tools run test lint format openapi bench clean
