"""benchmarks/aligngan_breakages.py keeps applying to the source: each breakage's edit finds its
text exactly once, and the edited file still compiles (so a run tests the breakage, not a typo)."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("aligngan_breakages", REPO / "benchmarks" / "aligngan_breakages.py")
breakages = importlib.util.module_from_spec(spec)
spec.loader.exec_module(breakages)


@pytest.mark.parametrize("name", list(breakages.BREAKAGES))
def test_every_breakage_edit_applies_once_and_compiles(name):
    edited = {}
    for rel, old, new in breakages.BREAKAGES[name]:
        text = edited.get(rel) or (REPO / "src" / rel).read_text()
        assert text.count(old) == 1, f"{rel}: {old!r}"
        edited[rel] = text.replace(old, new)
    for rel, text in edited.items():
        compile(text, rel, "exec")
        assert text != (REPO / "src" / rel).read_text()
