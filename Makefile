# Developer commands. Every target installs the project into $(VENV) first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
BUF_VERSION := 1.75.0
BUF := .ci/buf/node_modules/.bin/buf

.PHONY: install dev demo test lint generate check-generated buf-lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

# Run hub, gateway, worker, relay and the Rapyd sandbox in one process, then
# send one demo payment through them.
dev: install
	$(BIN)/hub-dev --demo

# Send another demo payment to a running hub-dev.
demo: install
	$(BIN)/hub-demo

# Unit, integration and end-to-end tests; needs PostgreSQL and Redis on
# 127.0.0.1 (see README). Exit code 5 (no tests collected) counts as failure.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

generate: install
	$(BIN)/hub-codegen

check-generated: install
	$(BIN)/hub-codegen --check

$(BUF):
	npm install --silent --no-save --prefix .ci/buf @bufbuild/buf@$(BUF_VERSION)

buf-lint: $(BUF)
	$(BUF) lint

lint: install buf-lint check-generated
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
