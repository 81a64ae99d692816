"""The conventions Snakemake users expect of a workflow: snakefmt formatting, a clean
``snakemake --lint`` for every shipped config, and the default workflow profile applied to a
plain ``snakemake`` run from the repository root (docs/architecture.md, "Workflow conventions").

That the profile's ``rerun-incomplete`` lets a killed plain run go on is checked by
``tests/workflow/test_kill.py``, whose runs are plain ones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_snakemake

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
DEFAULT_PROFILE = REPO / "profiles" / "default" / "config.yaml"


def test_snakefile_and_rules_are_snakefmt_formatted():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *map(str, RULE_FILES)],
                          capture_output=True, text=True, cwd=REPO)
    # snakefmt --check: 0 formatted, 1 would reformat, 123 could not parse.
    assert proc.returncode == 0, (
        f"run `.venv/bin/snakefmt Snakefile workflow/rules/` (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
    )


def test_snakefmt_check_notices_an_unformatted_rule(tmp_path):
    bad = tmp_path / "bad.smk"
    bad.write_text('rule x:\n    output: "a.txt"\n    shell:   "touch {output}"\n')
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "workflow" / "configs").glob("*.yaml")))
def test_lint_is_clean_for_every_shipped_config(config):
    # config.yaml itself: tests/workflow/test_config.py::test_lint_reports_nothing
    proc = run_snakemake(REPO, "--lint", "--configfile", str(REPO / "workflow" / "configs" / config), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_plain_run_from_the_repository_root_applies_the_default_profile(tmp_path):
    """`snakemake --cores all` as a reader types it (no --workflow-profile), from the root."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "all", "-n", "--directory", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Using workflow specific profile profiles/default for setting default command line arguments." in out
    profile = yaml.safe_load(DEFAULT_PROFILE.read_text())
    assert profile["rerun-incomplete"] is True and profile["resources"] == {"gpu": 1}, profile


def test_tests_runs_leave_the_default_profile_out(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    proc = run_snakemake(tmp_path, "-n")
    assert "workflow specific profile" not in proc.stdout + proc.stderr
