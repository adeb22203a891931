"""The product and its tooling never import the tests: tests/ sits on top of everything.

The launchers of real daemons, the simulated fleets' configs and the generated months
live in lab/, which bench/, deploy/demo/ and tests/ all import; nothing outside tests/
may import ``tests`` (a bench or the demo that did would break when a test moves).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("agent", "collector", "xanet", "dashboards", "lab", "bench", "deploy")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (inside functions too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def python_files(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if ".venv" not in p.parts)


@pytest.mark.parametrize("layer", LAYERS)
def test_nothing_outside_tests_imports_tests(layer: str) -> None:
    files = python_files(layer)
    assert files, f"{layer}/ has no Python files: the layer list is stale"
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p)
                                                   if m == "tests" or m.startswith("tests."))
                 for p in files}
    assert {p: m for p, m in offenders.items() if m} == {}


@pytest.mark.parametrize("layer", LAYERS)
def test_nothing_outside_tests_runs_a_tests_module(layer: str) -> None:
    """``python -m tests.x`` in a child process is an import of the tests too."""
    offenders = [str(p.relative_to(ROOT)) for p in python_files(layer)
                 if '"-m", "tests.' in p.read_text()]
    assert offenders == []


def test_the_check_sees_an_import_of_tests(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom tests import services\n"
                     "def f():\n    from tests.pipeline import running\n")
    assert {"tests", "tests.services", "tests.pipeline"} <= imported_modules(probe)


def test_the_product_never_imports_the_lab() -> None:
    """lab/ is tooling around the product: the agent, the collector, the shared package
    and the dashboards generator run without it."""
    for layer in ("agent", "collector", "xanet", "dashboards"):
        for p in python_files(layer):
            assert not {m for m in imported_modules(p) if m == "lab" or m.startswith("lab.")}, p
