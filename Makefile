# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs the project into it (editable, with the dev extra).
# `make test-fast` is the inner loop: the tests and doctests not marked slow, without the notebooks
# (about a minute); `make test` runs everything (ruff, every test, the doctests and the notebooks).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/flowstab report

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --ignore=notebooks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
