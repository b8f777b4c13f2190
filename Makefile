# Two commands on a fresh machine: `make bench` (the FPHA benchmark on the embedded synthetic
# data) and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install bench bench-quick test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

bench: install
	$(PY) benchmarks/run.py fpha --jobs 2

bench-quick: install
	$(PY) benchmarks/run.py fpha --quick --jobs 2

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
