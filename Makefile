# The README's two commands: `make demo` and `make test`.  Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/linkstar: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: demo test bench check fmt-check clean
demo: $(BIN)/linkstar
	$(BIN)/linkstar demo

test: $(BIN)/linkstar
	$(BIN)/python -m pytest

bench: $(BIN)/linkstar
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/parse.py
	$(BIN)/python benchmarks/evaluate.py --orders 1000000

check: $(BIN)/linkstar
	$(BIN)/linkstar check examples/ stdlib/

clean:
	rm -rf $(VENV) build dist *.egg-info
