# wtal-kit: two commands do everything on a fresh machine.
#   make demo   set up .venv, train the default model on the embedded benchmark, print its mAP table,
#               then serve the detection explorer on it (Ctrl-C stops it)
#   make test   set up .venv and run every test (browser tests included; about 18 minutes on 2 cores)
#   make test-fast  the unit and property tests only: no browser, no training over a few seconds (< 3 minutes)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wtal-installed
# CPU wheel on purpose (it lies on disk here); the package metadata keeps a range for GPU users.
TORCH_PIN ?= torch==2.13.0
# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup test test-fast chromium demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev,ui,cluster,video]"
	touch $(STAMP)

test: setup chromium
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser"

# Debian's chromium for the browser tests: apt-get as root, or through `sudo -n`; where neither
# can be had, say so and go on (those tests then skip, giving the reason).
chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
	  :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make: $(CHROMIUM) is missing and there is no apt-get: the browser tests will be skipped"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Debian's chromium (apt-get) for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  echo "make: installing Debian's chromium (sudo apt-get) for the browser tests"; \
	  sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "make: $(CHROMIUM) is missing and installing it needs root (apt-get install -y chromium):" \
	       "the browser tests will be skipped"; \
	fi

demo: setup
	$(VENV)/bin/wtal demo

bench: setup chromium
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_explorer.py
	$(PY) benchmarks/bench_explorer_browser.py
	$(PY) benchmarks/bench_apps_open.py --soak 50
	$(PY) benchmarks/bench_reproduce.py --mode smoke   # --mode small: about half an hour

clean:
	rm -rf runs/demo .pytest_cache .hypothesis
