PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install test run lint

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies change; the editable install picks up code edits.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The whole service on the embedded defaults, with a sample day, until Ctrl-C.
run: $(STAMP)
	$(VENV)/bin/settlement run --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(wildcard settlement consumers)
