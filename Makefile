# Each target sets up .venv on first use, so a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test bench lint crashtest soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

$(VENV)/.peers: $(STAMP)
	-$(BIN)/pip install --quiet -e '.[peers]'
	touch $(VENV)/.peers

## make test: lint, type-check and run the whole test suite
test: lint
	$(BIN)/pytest

## make bench: seglog against the stores a Python user would otherwise pick
bench: $(VENV)/.peers
	$(BIN)/seglog bench $(BENCH_ARGS)

## make crashtest: the crash-consistency proof and its figures (docs/DURABILITY.md);
## SEGLOG_CRASH_PROFILE=deep for the long run
crashtest: $(STAMP)
	$(BIN)/pytest tests/crash -q -p no:cacheprovider --ignore=tests/crash/test_exhaustive.py --ignore=tests/crash/test_mutants.py
	$(BIN)/python -m engine.testing.campaign
	$(BIN)/python -m engine.testing.interleave
	$(BIN)/python -m engine.testing.multikill --seconds 60

## make soak: 16 threads of mixed load with SIGKILLs, checked per key (SOAK_SECONDS, default 600)
soak: $(STAMP)
	$(BIN)/python -m engine.testing.soak

## make lint: ruff, ruff format --check, and mypy --strict over every package (pyproject's files)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
