# IncidentDesk: `make run` starts the whole service with demo data; `make test` runs the suite.
# Only Python 3.11+ and make are needed: everything else goes into .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PYTEST_ARGS ?=

# PostgreSQL needs the psycopg2 driver (built from source against libpq); SQLite needs nothing.
ifneq ($(findstring postgres,$(DATABASE_URL)),)
DB_EXTRA := ,postgres
endif

.PHONY: run test lint format install install-dev clean bench screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-run$(DB_EXTRA): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable '.[run$(DB_EXTRA)]'
	touch $@

$(VENV)/.stamp-dev$(DB_EXTRA): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable '.[dev$(DB_EXTRA)]'
	touch $@

install: $(VENV)/.stamp-run$(DB_EXTRA)
install-dev: $(VENV)/.stamp-dev$(DB_EXTRA)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_interviews
	@echo "IncidentDesk on http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker, sweeper and scheduler)"
	PATH="$(CURDIR)/$(BIN):$$PATH" DESK_PORT=$(PORT) $(BIN)/honcho start --procfile Procfile.dev

test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# Every web figure under gunicorn with wrk, next to its ceiling (bench/suite.py; needs wrk and PostgreSQL).
# BENCH_ARGS="--size full" for 100k incidents and longer rounds, "--size 1m" for 1,000,000; add --with-scripts
# for the sweep, recurrence, import and report figures (bench/README.md). Writes bench/RESULTS.md.
BENCH_ARGS ?= --size quick
bench: install-dev
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

# The README's screenshots (docs/screenshots/), taken by Chromium (/usr/bin/chromium) from the demo data: seeds
# var/screenshots.sqlite3 (kept: a second run reuses it), serves it and signs in as the demo personas.
screenshots: install-dev
	$(BIN)/python scripts/screenshots.py

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var/celery-broker var/celerybeat-schedule*
