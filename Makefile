# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo run test lint bench worker clean-data
.DEFAULT_GOAL := demo

# torch comes from the exact pin in pyproject.toml (a CPU build); nothing pulls in torchvision.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m clipsearch.launcher demo

run: $(STAMP)
	$(PY) -m clipsearch.launcher run

worker: $(STAMP)
	$(PY) manage.py rqworker embeddings

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean-data:
	rm -rf var
