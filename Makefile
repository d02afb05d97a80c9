# Two entry points (see README):
#   make all    set up from nothing, then train, analyse and draw the default p = 113 run
#   make test   set up from nothing, then run the test suite
# and, for the edit-test loop and the write-up:
#   make test-fast   the suite without the slow tests (Ray, kill-and-resume, notebooks, watch)
#   make notebooks   the notebooks executed (01-04 against $(RUN); 05 trains its own toy runs),
#                    written beside $(RUN)'s report.html
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN    ?= checkpoints/add-p113-paper-init999-data598
# Where torch comes from: empty = PyPI (on Linux its wheel bundles the CUDA libraries);
# TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the smaller CPU-only build.
TORCH_INDEX ?=

NOTEBOOKS := $(wildcard notebooks/*.ipynb)
EXECUTED  := $(RUN)/figures

.PHONY: all setup browser train analyze figures test test-fast notebooks lint clean-venv

all: setup browser train analyze figures
	@echo "report: $(RUN)/figures/report.html"

setup: $(VENV)/.installed

# torch first, pinned (from TORCH_INDEX when set), so that transformer-lens keeps it; the
# second install names the pin again so the extras (devinterp) cannot move it.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[dev,ray,llc]'
	touch $@

# Chromium lets kaleido write PNG/SVG figures; without it figures are HTML only.
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: no Chromium installed; figures will be written as HTML only"

train: setup
	@if [ -f $(RUN)/config.json ]; then $(BIN)/grokinterp train --resume $(RUN); \
	 else $(BIN)/grokinterp train --out $(RUN); fi

analyze: setup
	$(BIN)/grokinterp analyze $(RUN)

figures: setup
	$(BIN)/grokinterp figures $(RUN)

test: setup browser
	$(BIN)/python -m pytest -q

# Under 2 minutes on 2 idle cores: skips the tests marked slow (Ray, SIGKILL and resume,
# the notebooks, long trainings) and the watch tests.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" --ignore=tests/test_watch.py

# Executed copies (with outputs) and static HTML of the notebooks, written next to
# $(RUN)/figures/report.html; the committed notebooks keep no outputs.  Analyse the run
# first (make analyze).  The plotly renderer also writes each figure as HTML (plotly.js
# once per notebook), so the static pages show the figures.
notebooks: setup
	mkdir -p $(EXECUTED)
	GROKINTERP_RUN=$(abspath $(RUN)) PYTHONPATH=$(CURDIR) \
	PLOTLY_RENDERER=plotly_mimetype+notebook $(BIN)/jupyter nbconvert \
	  --to notebook --execute --ExecutePreprocessor.timeout=3600 \
	  --output-dir $(EXECUTED) $(NOTEBOOKS)
	$(BIN)/jupyter nbconvert --to html --output-dir $(EXECUTED) \
	  $(addprefix $(EXECUTED)/,$(notdir $(NOTEBOOKS)))
	@echo "notebooks: $(EXECUTED)/*.ipynb and $(EXECUTED)/*.html"

lint: setup
	$(BIN)/ruff check grokinterp tests
	$(BIN)/ruff format --check grokinterp tests

clean-venv:
	rm -rf $(VENV)
