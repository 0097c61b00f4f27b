# Two commands set everything up: `make reproduce` and `make test`.
# Every target creates or refreshes .venv from pyproject.toml first (skipped when nothing changed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: reproduce check test lab headers bench clean chromium browser-test site

LAB_STAMP := $(VENV)/.installed-lab

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

reproduce: $(STAMP)  ## run every notebook headless; write build/report.md, report.html, claims.json
	$(BIN)/python -m mlsys_core.report notebooks --out build

# The quick loop while working: lint, types and every test not marked slow (no notebooks, no browser).
check: $(STAMP)  ## ruff, mypy and the fast tests
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest tests -m "not slow" -q -n auto --dist loadscope

# The browser test is part of `make test` while the whole stays under 20 minutes. On the 2-core machine
# (2026-12-02) with two workers each: 6.5 min of tests and nbval, 5.5 min in the browser.
test: $(STAMP) chromium  ## lint, types, unit tests, the notebooks under nbval, then every notebook and site page in chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  -n auto --dist loadscope
	$(MAKE) browser-test

# Students: only the runtime dependencies (no test or benchmark extras), its own stamp.
$(LAB_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(LAB_STAMP)

lab: $(LAB_STAMP)  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

headers: $(LAB_STAMP)  ## rewrite every notebook's badges and install cell from pyproject's [project.urls]
	$(BIN)/python scripts/notebook_header.py notebooks/*.ipynb

# Debian's chromium drives the browser test (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

site: $(STAMP)  ## static HTML book of the committed notebooks (not re-executed) and the report, in build/site
	$(BIN)/python docs/stage.py build/site-src
	$(BIN)/sphinx-build -q -b html -c docs build/site-src build/site
	@echo "site: build/site/index.html"

browser-test: $(STAMP) chromium site  ## every notebook in JupyterLab + Chromium, then every site page; build/screenshots
	$(BIN)/python tests/browser/lab_check.py; lab=$$?; \
	  $(BIN)/python tests/browser/site_check.py build/site && exit $$lab

bench: $(STAMP)  ## side-by-side benchmarks, each ends with one RESULT line
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build $(VENV)
