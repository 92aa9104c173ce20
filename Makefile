# Two commands do everything (see README.md):
#   make reproduce   create .venv if missing, then regenerate every notebook and result (quick profile)
#   make test        create .venv if missing, then run the unit tests and execute every notebook under nbval
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick

.PHONY: reproduce test env clean-env

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/python -m asclib reproduce --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest

clean-env:
	rm -rf $(VENV)
