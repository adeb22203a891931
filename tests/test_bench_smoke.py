"""Each bench script still runs end to end at tiny sizes (no timing asserted: the figures
are in BENCHMARKS.md; this only keeps the scripts from rotting)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _smoke_plan() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plan: dict[str, list[str]] = module.SMOKE
    return plan


SMOKE = _smoke_plan()


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_bench_runs(name: str) -> None:
    out = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *SMOKE[name]],
                         capture_output=True, text=True, timeout=600, cwd=BENCH.parent)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "reproduce: python bench/" in out.stdout
