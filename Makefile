# make run   fresh clone -> .venv -> the workflow on the built-in demo dataset -> results/report/
# make test  fresh clone -> .venv -> the test suite (unit tests and tiny workflow runs)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# GPU jobs run at once: one per GPU present, at least one (CPU-only machines run them one by one).
GPUS := $(shell n=$$(nvidia-smi -L 2>/dev/null | wc -l); [ "$$n" -gt 0 ] && echo $$n || echo 1)

.PHONY: run test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores all --workflow-profile workflow/profiles/default --resources gpu=$(GPUS)
	@echo "Report: results/report/table.md"

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf results .snakemake
