# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs the project into it (editable, with the dev extra).
# `make test-fast` is the inner loop: the tests and doctests not marked slow, without the notebooks
# (about a minute); `make test` runs everything (ruff, every test, the doctests and the notebooks)
# and, before the tests, `make docs`: the documentation site built from scratch, every warning an error.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/flowstab demo --overwrite

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) docs
	$(BIN)/python -m pytest -q

# The site: docs/*.md, the notebooks executed at build time, the API from the docstrings
# (docs/conf.py). Built from scratch (-E, the generated API pages removed): a warning in a page
# left unchanged is reported again, and a removed module leaves no stale page. About a minute.
docs: $(STAMP)
	rm -rf docs/api/generated
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --ignore=notebooks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis docs/_build docs/api/generated
