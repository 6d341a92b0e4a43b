# wtal-kit: two commands do everything on a fresh machine.
#   make demo   set up .venv, train the default model on the embedded benchmark, print its mAP table
#   make test   set up .venv and run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wtal-installed
# CPU wheel on purpose (it lies on disk here); the package metadata keeps a range for GPU users.
TORCH_PIN ?= torch==2.13.0

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/wtal demo

bench: setup
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf runs/demo .pytest_cache .hypothesis
