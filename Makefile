# Two commands: `make run` (demo on http://127.0.0.1:5000) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := kb:create_app

.PHONY: run test test-deep lint typecheck pytest browser clean

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

lint: $(STAMP)
	$(BIN)/ruff check kb tests bench

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

# The trust property test (tests/test_trust_properties.py) with many more and longer examples
# than in `make test`; KB_PROPERTY_EXAMPLES=N chooses how many. Prints the examples run.
test-deep: $(STAMP)
	KB_TEST_DATABASE_URL= KB_PROPERTY_PROFILE=deep $(BIN)/pytest -p no:cacheprovider -rP tests/test_trust_properties.py
	@if [ -n "$$KB_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$KB_TEST_DATABASE_URL"; \
		KB_PROPERTY_PROFILE=deep $(BIN)/pytest -p no:cacheprovider -rP tests/test_trust_properties.py; \
	fi

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
