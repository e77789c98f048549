# Farmlive: `make run` sets everything up and serves the demo; `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
VENDOR := shop/static/vendor
export TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: setup dev run test lint db seed vendor translations messages clean bench requirements

# What the server needs (also what deploy/ runs); `dev` adds the tools of tests and benchmarks.
setup: $(VENV)/.installed $(VENDOR)/.installed translations
dev: setup $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	@echo "==> Python packages for the server (pinned in requirements.txt)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	@echo "==> Python packages for tests and benchmarks (pinned in requirements-dev.txt)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

# After editing requirements.in or requirements-dev.in: pin them again (existing pins are kept;
# PIP_COMPILE_ARGS="--upgrade-package NAME" moves one).
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --allow-unsafe --strip-extras --no-emit-find-links \
	--no-emit-index-url --no-emit-trusted-host $(PIP_COMPILE_ARGS)
requirements: $(VENV)/.installed-dev
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --output-file=requirements-dev.txt requirements-dev.in

$(VENDOR)/.installed: package.json package-lock.json
	@echo "==> Front-end packages (pinned in package-lock.json), copied to $(VENDOR)"
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/socket.io-client/dist/socket.io.min.js $(VENDOR)/
	cp node_modules/hls.js/dist/hls.min.js $(VENDOR)/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/
	touch $@

translations: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d shop/translations

# After adding or changing _('...') strings: refresh the catalogs, then fill in the zh msgstr
# (tests/shop/test_i18n.py fails while any is missing or fuzzy; en stays empty = the msgid).
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o messages.pot --ignore-dirs='.venv node_modules' .
	$(VENV)/bin/pybabel update -i messages.pot -d shop/translations --ignore-obsolete
	rm -f messages.pot

db: setup
	@echo "==> Database schema (Alembic migrations)"
	$(FLASK) db upgrade

seed: db
	@echo "==> Demo data (idempotent; DEMO=1: its accounts share a public password)"
	DEMO=1 $(FLASK) seed-demo

run: seed
	@$(FLASK) demo-logins
	$(PY) wsgi.py

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: dev
	@echo "==> ruff"
	$(VENV)/bin/ruff check .
	@echo "==> pytest (SQLite always; PostgreSQL at $$TEST_DATABASE_URL, Redis and Chromium when present)"
	$(PY) -m pytest -rfEs $(PYTEST_ARGS)

bench: dev
	$(PY) -m bench.flash_sale

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache
