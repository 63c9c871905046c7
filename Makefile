# make run   - install what is missing, migrate, serve at http://127.0.0.1:$(PORT) with gunicorn
# make test  - install what is missing and run the tests (make test-slow: the long fault runs)
# make dev   - flask's development server with hot reload
# make soak  - 1,000 clients for 10 minutes on two workers with Redis and PostgreSQL (SOAK_ARGS)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

VENDOR := static/vendor
VENDOR_FILES := node_modules/htmx.org/dist/htmx.min.js \
	node_modules/socket.io-client/dist/socket.io.min.js \
	node_modules/bootstrap/dist/css/bootstrap.min.css \
	node_modules/bootstrap/dist/js/bootstrap.bundle.min.js

.PHONY: install run dev test test-slow migrate lint clean test-postgres soak

install: $(VENV)/.installed $(VENDOR)/.built

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR)/.built: node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp $(VENDOR_FILES) $(VENDOR)/
	touch $@

instance/secret_key:
	mkdir -p instance
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > $@

migrate: install instance/secret_key
	$(BIN)/flask --app wsgi db upgrade

run: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

dev: migrate
	$(BIN)/flask --app wsgi run --debug --port $(PORT)

# Fuzzing scale of `make test` (a third of the cases); `make test-slow` fuzzes at full scale.
FUZZ_SCALE ?= 0.3

test: install
	@test -x "$${CHROMIUM:-/usr/bin/chromium}" || echo "make test: Chromium is not installed, so the browser tests (tests/browser) are skipped here and fail in CI. Install it with: sudo apt-get install -y chromium" >&2
	FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

# The long runs (about 10 minutes): kill -9, deploys, database and Redis outages, slow
# consumers, several workers and hosts, the soak and the benchmark smoke, then the fuzzing at
# full scale. CI runs them after `make test`.
test-slow: install
	$(BIN)/pytest -m slow $(PYTEST_ARGS)
	FUZZ_SCALE=1 $(BIN)/pytest tests/test_fuzz_http.py tests/test_fuzz_socket.py $(PYTEST_ARGS)

# The unit tests again on a fresh PostgreSQL database (needs TEST_POSTGRES_URL).
test-postgres: install
	TEST_DATABASE=postgres $(BIN)/pytest -m "not e2e" --ignore=tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules $(VENDOR)

# make bench - the fan-out benchmark beside two reference servers (bench/run.py; BENCH_ARGS="--smoke"
# for a quick check, "--baseline REF" to compare with another commit in the same run)
.PHONY: bench
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# make soak - the soak run (bench/soak.py): 0 lost, 0 duplicated, flat memory, no fd leak
soak: install
	$(BIN)/python bench/soak.py $(SOAK_ARGS)
