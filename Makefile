# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
# PORT and DATA_DIR may be given as make variables (make demo PORT=9000) or in the environment.

PYTHON ?= python3
VENV := .venv
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/data
export PORT DATA_DIR
# initdb refuses locales that are not installed; C.UTF-8 always is.
export LC_ALL := C.UTF-8

.PHONY: demo test lint format bench clean-data help vendor

help:
	@echo "make demo   - serve a demo archive on http://127.0.0.1:$(PORT)/ (data in $(DATA_DIR))"
	@echo "make test   - run the whole test suite"
	@echo "make bench  - run the benchmarks (results in bench/results/)"

$(VENV)/.installed: server/pyproject.toml client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "escape-vo needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "'$(PYTHON) -m venv' failed: on Debian/Ubuntu run" \
	  "'sudo apt-get install python3-venv' and try again"; rm -rf $(VENV); exit 1; }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e "server[test]" -e client
	@touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/escape-vo docs build || echo "the documentation did not build; /docs says how to retry"
	$(VENV)/bin/escape-vo demo

# Rebuild the vendored CodeMirror bundle of the query page from the locked npm packages.
vendor:
	cd server/escape_vo/web/frontend && npm ci --no-audit --no-fund && npm run build

test: $(VENV)/.installed lint
	$(VENV)/bin/python -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.installed
	$(VENV)/bin/python -m bench

clean-data:
	$(VENV)/bin/escape-vo db stop || true
	rm -rf "$(DATA_DIR)"
