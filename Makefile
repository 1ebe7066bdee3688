# Two commands: `make run` (demo on http://127.0.0.1:5000) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := kb:create_app

.PHONY: run test lint typecheck pytest browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Creates the SQLite database and loads the demo sheets on first run, then serves.
run: $(STAMP)
	$(BIN)/kb init-db
	$(BIN)/kb load-fixtures --if-empty
	$(BIN)/kb index update
	$(BIN)/kb run --host 127.0.0.1 --port 5000

# ruff, then the layering contracts of pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check kb tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests (widgets on a partner page) drive Debian's Chromium: Playwright cannot
# download its own browsers here.
browser:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The suite on SQLite; again on PostgreSQL when KB_TEST_DATABASE_URL is set.
pytest: $(STAMP) browser
	$(BIN)/pytest -n 2 --dist loadfile
	@if [ -n "$$KB_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$KB_TEST_DATABASE_URL"; \
		$(BIN)/pytest -n 2 --dist loadfile; \
	fi

test: lint typecheck pytest

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
