# Pulse: `make run` starts the whole stack locally, `make test` runs every test.
# Both install what they need first (a virtualenv, Python deps, PostgreSQL server binaries,
# the Kafka jars on first use). KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, when set, are used
# instead of starting local ones.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint bench demo install system-deps clean

install: $(INSTALLED) system-deps

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $@

# Java and Maven run the Kafka broker; Debian's postgresql package provides the server.
system-deps:
	@command -v java >/dev/null || { echo "error: java (17+) is required for the local Kafka broker"; exit 1; }
	@command -v mvn >/dev/null || { echo "error: mvn is required to fetch the Kafka jars"; exit 1; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's postgresql package ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else echo "error: install PostgreSQL server binaries (Debian: apt-get install postgresql)"; exit 1; fi; }

run: install
	$(BIN)/python -m deploy.local.run

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check services tests deploy bench
	$(BIN)/ruff format --check services tests deploy bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .local
