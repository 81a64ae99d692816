"""The library's layers point one way: read every module's imports and check the package graph.

Packages (and top-level modules) of ``rgbir_reid`` are nodes; an edge ``a -> b`` means a module
of ``a`` imports from ``b`` (at any depth in the module, deferred imports included). Evaluation
and reporting take images and features, so they import no training or model code; the graph
between the library's parts has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rgbir_reid"


def part_of(module: str) -> str | None:
    """``rgbir_reid.training.reid`` -> ``training``; ``rgbir_reid.features`` -> ``features``."""
    parts = module.split(".")
    return parts[1] if parts[0] == "rgbir_reid" and len(parts) > 1 else None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        src = part_of(module) or "rgbir_reid"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                dst = part_of(target)
                if dst and dst != src and ((SRC / dst).is_dir() or (SRC / f"{dst}.py").exists()):
                    graph.setdefault(src, set()).add(dst)
    return graph


def test_graph_is_read():
    graph = import_graph()
    assert "models" in graph.get("training", set())  # the training loops build networks
    assert "data" in graph.get("evaluation", set())


@pytest.mark.parametrize("part", ["evaluation", "reporting"])
def test_evaluation_and_reporting_import_no_training_or_model_code(part):
    assert not import_graph().get(part, set()) & {"training", "models"}, import_graph().get(part)


def test_no_import_cycles_between_parts():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [node, nxt]))
            if not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])


def test_method_families_sit_on_top():
    # Families (rgbir_reid.methods) compose training, features and data; no lower part imports them.
    graph = import_graph()
    assert "training" in graph.get("methods", set()) or "features" in graph.get("methods", set())
    assert not [part for part, deps in graph.items() if "methods" in deps and part != "methods"]


def test_conversion_owns_the_generator_file_and_needs_no_training_code():
    # The cache build and the generator file's reading and writing live in rgbir_reid.conversion;
    # the CycleGAN trainer calls it to save, and nothing in conversion reaches back into training.
    assert "training" not in import_graph().get("conversion", set())
    assert "conversion" in import_graph().get("training", set())
