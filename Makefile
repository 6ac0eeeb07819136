# The README's two commands: `make demo` and `make test`.  Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/linkstar: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: demo test bench fuzz chaos check fmt-check clean
demo: $(BIN)/linkstar
	$(BIN)/linkstar demo

test: $(BIN)/linkstar
	$(BIN)/python -m pytest

# Every benchmark, then one table of ratios against their baselines (BENCH=--quick for small sizes).
bench: $(BIN)/linkstar
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/report.py $(BENCH)

# The fuzzers at length; failing inputs are kept in tests/data/fuzz/found/ to become fixtures.
FUZZ_EXAMPLES ?= 20000
fuzz: $(BIN)/linkstar
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RECORD=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

# The runner killed at random against failing providers, then the invariants (CHAOS="--minutes 10").
CHAOS ?= --minutes 5
chaos: $(BIN)/linkstar
	$(BIN)/python scripts/chaos.py $(CHAOS)

check: $(BIN)/linkstar
	$(BIN)/linkstar check examples/ stdlib/

clean:
	rm -rf $(VENV) build dist *.egg-info
