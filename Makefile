# Two commands: `make run` (demo on http://127.0.0.1:5000; `make run PORT=8000 HOST=0.0.0.0`)
# and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Plain assignments: only the command line changes them (a shell's own HOST is ignored).
HOST = 127.0.0.1
PORT = 5000
# What running needs, then what testing needs on top: two stamps.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# axe-core (accessibility rules run in Chromium by the tests), from the npm registry.
AXE_VERSION := 4.14.1
AXE_STAMP := $(VENV)/axe/.axe-core-$(AXE_VERSION)
export FLASK_APP := kb:create_app

.PHONY: run test test-deep lint typecheck pytest browser axe clean

$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "== Installation de ce qu'il faut pour faire tourner le site, dans $(VENV) (une fois)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet -e .
	@touch $@

$(TEST_STAMP): $(RUN_STAMP) pyproject.toml
	@echo "== Installation des outils de test dans $(VENV) : pytest, pytest-xdist, mypy, ruff, import-linter, playwright, aiosmtpd, feedparser"
	@$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# Creates the SQLite database and loads the demo sheets on first run, then serves; prints
# "Prêt : http://HOST:PORT" when the site answers.
run: $(RUN_STAMP)
	@$(BIN)/kb serve --host $(HOST) --port $(PORT)

# ruff, then the layering contracts of pyproject.toml ([tool.importlinter]).
lint: $(TEST_STAMP)
	$(BIN)/ruff check kb tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
# Installing it takes apt-get, hence root; without it the browser tests are skipped, and say so.
browser:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "== Installation de Chromium (paquet Debian, apt-get) pour les tests dans un navigateur"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "== Chromium absent : l'installer (apt-get install chromium) demande les droits root."; \
		echo "   Les tests dans un navigateur seront ignorés ; pour les avoir : sudo make browser"; \
	fi

axe: $(AXE_STAMP)
$(AXE_STAMP):
	@if command -v npm >/dev/null; then \
		echo "== Installation d'axe-core $(AXE_VERSION) (registre npm) dans $(VENV)/axe pour les tests d'accessibilité"; \
		npm install --prefix $(VENV)/axe --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION) && touch $@; \
	else \
		echo "== npm absent : axe-core non installé, les tests d'accessibilité seront ignorés (apt-get install npm)"; \
	fi

# The suite on SQLite (the variable emptied for this run), again on PostgreSQL when
# KB_TEST_DATABASE_URL is set.
pytest: $(TEST_STAMP) browser axe
	KB_TEST_DATABASE_URL= $(BIN)/pytest -n 2 --dist loadfile
	@if [ -n "$$KB_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$KB_TEST_DATABASE_URL"; \
		$(BIN)/pytest -n 2 --dist loadfile; \
	fi

test: lint typecheck pytest

# The trust property test (tests/test_trust_properties.py) with many more and longer examples
# than in `make test`; KB_PROPERTY_EXAMPLES=N chooses how many. Prints the examples run.
test-deep: $(TEST_STAMP)
	KB_TEST_DATABASE_URL= KB_PROPERTY_PROFILE=deep $(BIN)/pytest -p no:cacheprovider -rP tests/test_trust_properties.py
	@if [ -n "$$KB_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$KB_TEST_DATABASE_URL"; \
		KB_PROPERTY_PROFILE=deep $(BIN)/pytest -p no:cacheprovider -rP tests/test_trust_properties.py; \
	fi

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
