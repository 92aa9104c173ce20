# Two commands do everything (see README.md):
#   make reproduce   create .venv if missing, then regenerate every notebook and result (quick profile)
#   make test        create .venv if missing, train a sample of the committed runs again, then run the unit tests and every notebook under nbval
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
# The authors' released scores (notebook 11) are read from ../shared when it is there;
# without it, notebook 11 downloads them at a pinned commit and checks their SHA-256.
SHARED_RELEASED := $(abspath ../shared/reference/hu2021-released)
ifneq ($(wildcard $(SHARED_RELEASED)/class10_results_acc0.794.txt),)
export ASC_RELEASED_DIR ?= $(SHARED_RELEASED)
endif
# Notebook 10 shows the maps of one real clip (a mechanics check) when the real clips are there.
SHARED_REAL_CLIPS := $(abspath ../shared/real-clips)
ifneq ($(wildcard $(SHARED_REAL_CLIPS)),)
export ASC_REAL_CLIPS_DIR ?= $(SHARED_REAL_CLIPS)
endif

.PHONY: reproduce test env lock clean-env

env: $(STAMP)

# Exact versions from requirements.lock (the ones the committed results were made with), then
# asclib itself without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/python -m asclib reproduce --profile $(PROFILE)

# The runs are committed (results/quick/runs/), not trained here: `asclib check` first trains a
# sample of them again from scratch (chosen by the commit id) and requires the same bits, then
# the unit tests (tests/test_pins.py recomputes Tables 1-3 from the committed runs and holds them
# to the committed tables) and every notebook run under nbval.
test: $(STAMP)
	$(BIN)/python -m asclib check --profile quick
	$(BIN)/python -m pytest

# Rewrite requirements.lock from the current environment (after changing pyproject.toml).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet -e .
	{ sed -n '1,3p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock

clean-env:
	rm -rf $(VENV)
