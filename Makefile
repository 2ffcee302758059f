# Pulse: `make run` starts the whole stack locally, `make test` runs every test.
# Both install what they need first (a virtualenv, Python deps, PostgreSQL server binaries,
# the Kafka jars on first use). KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, when set, are used
# instead of starting local ones.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SDKS := tests/js_sdks
PYTEST_ARGS ?=

.PHONY: run test lint bench bench-deps demo install system-deps test-deps clean

install: $(INSTALLED) system-deps

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $@

# Java (17+) and Maven run the Kafka broker; Debian's postgresql package provides the server.
# As root, what is missing is installed from Debian (maven brings a Java runtime with it).
system-deps:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's$$missing ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "error: install Java 17+, Maven and PostgreSQL's server (Debian: apt-get install$$missing)"; exit 1; fi; \
	fi

# The dashboard's browser test drives Debian's chromium (never a browser downloaded by Playwright);
# the deploy test checks the alert rules with promtool (Debian's prometheus package).
test-deps: $(SDKS)/node_modules/.installed
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium fonts-liberation"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's$$missing ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "error: install Debian's$$missing (apt-get install$$missing)"; exit 1; fi; \
	fi

# The JavaScript SDKs the tests run (posthog-js, analytics-next and RudderStack's in chromium;
# posthog-node, analytics-node and RudderStack's Node SDK by node), the versions the lockfile
# pins, from npm (Node.js from Debian where it is missing; no install scripts run).
$(SDKS)/node_modules/.installed: $(SDKS)/package.json $(SDKS)/package-lock.json
	@command -v npm >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's nodejs npm ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
		else echo "error: install Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; fi; }
	npm ci --prefix $(SDKS) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/python -m deploy.local.run

test: install test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# Needs a running stack (`make run` in another terminal); see deploy/demo.py for its env.
demo: $(INSTALLED)
	$(BIN)/python -m deploy.demo

lint: install
	$(BIN)/ruff check services tests deploy bench
	$(BIN)/ruff format --check services tests deploy bench
	$(BIN)/mypy

# vegeta (open-model HTTP load generator) for the ingest benchmark: Debian's package where the
# release has it (trixie and later), else built by `go install` from its Go module into .local/bin.
VEGETA_MODULE := github.com/tsenart/vegeta/v12@v12.13.0
bench-deps:
	@command -v vegeta >/dev/null || [ -x .local/bin/vegeta ] || { \
		if [ "$$(id -u)" = 0 ] && { apt-cache show vegeta >/dev/null 2>&1 || \
			{ apt-get update -qq && apt-cache show vegeta >/dev/null 2>&1; }; }; then \
			echo "Installing Debian's vegeta package ..."; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vegeta >/dev/null; \
		elif command -v go >/dev/null; then \
			echo "Building vegeta with go install ..."; \
			mkdir -p .local/bin && GOBIN="$$(pwd)/.local/bin" go install $(VEGETA_MODULE); \
		else echo "error: vegeta is required (Debian: apt-get install vegeta; or install Go)"; exit 1; fi; }

bench: install bench-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .local
