# The virtualenv's interpreter: the distribution's CPython 3.11 where there is one,
# else python3. Debian builds its interpreter with profile-guided optimisation, as
# the python:3.11 image the Dockerfile deploys on is built; a pyenv build is not by
# default, and ran the relay, the projectors and a 300,000-event replay 15-25 %
# slower here (docs/benchmarks.md, "The interpreter").
PYTHON ?= $(firstword $(shell /usr/bin/python3.11 -c \
	'import sys, ensurepip, venv; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
	&& echo /usr/bin/python3.11) python3)
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
	$(VENV)/bin/mypy $(wildcard settlement)
