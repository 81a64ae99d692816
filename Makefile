# make run   fresh clone -> .venv -> the workflow on the built-in demo dataset -> results/report/
# make run-aligngan  the same on workflow/configs/demo_aligngan.yaml: AlignGAN (and CE²L beside it), < 30 min
# make test  fresh clone -> .venv -> the test suite (unit tests and tiny workflow runs)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# With GPUs: one GPU job per GPU at once (rules that train or convert request gpu=1).
# CPU only: no GPU limit, and the jobs that train methods, extract features or evaluate take
# half the cores each, so two run at once: small networks use extra threads poorly (benchmarks/cpu_jobs.py,
# 2 cores: two one-thread jobs train the demo network ~1.3-1.5x faster in total than one
# two-thread job). CycleGAN training and the cache, which every training waits for, keep all cores.
GPUS := $(shell nvidia-smi -L 2>/dev/null | wc -l)
CORES := $(shell nproc 2>/dev/null || echo 1)
JOB_THREADS := $(shell n=$$(( $(CORES) / 2 )); [ "$$n" -gt 0 ] && echo $$n || echo 1)
ifeq ($(GPUS),0)
RUN_FLAGS := --resources gpu=$(CORES) --set-threads $(foreach r,train_reid train_aligngan extract evaluate,$(r)=$(JOB_THREADS))
else
RUN_FLAGS := --resources gpu=$(GPUS)
endif

.PHONY: run run-aligngan test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[test]'
	@# Byte-compile on every core at once (pip does it on one; without .pyc files, on a machine with
	@# PYTHONDONTWRITEBYTECODE set, every job would import torch from source). Files some packages
	@# ship that do not compile are skipped, as pip skips them.
	-$(BIN)/python -m compileall -q -q -j 0 $(VENV)/lib
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores all $(RUN_FLAGS)
	@echo "Report: results/report/table.md"

run-aligngan: $(STAMP)
	$(BIN)/snakemake --cores all $(RUN_FLAGS) --configfile workflow/configs/demo_aligngan.yaml
	@echo "Report: results/report/table.md"

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf results .snakemake
