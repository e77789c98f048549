# Farmlive: `make run` sets everything up and serves the demo; `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
VENDOR := shop/static/vendor
export TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: setup run test lint db seed vendor translations messages clean bench

setup: $(VENV)/.installed $(VENDOR)/.installed translations

$(VENV)/.installed: requirements.txt
	@echo "==> Python packages (pinned in requirements.txt)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

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
	@echo "==> Demo data (idempotent)"
	$(FLASK) seed-demo

run: seed
	@$(FLASK) demo-logins
	$(PY) wsgi.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup
	@echo "==> ruff"
	$(VENV)/bin/ruff check .
	@echo "==> pytest (SQLite always; PostgreSQL at $$TEST_DATABASE_URL, Redis and Chromium when present)"
	$(PY) -m pytest -rfEs $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.flash_sale

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache
