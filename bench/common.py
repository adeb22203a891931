"""Shared helpers of the bench scripts: paths, services, CPU/RSS sampling, result printing.

Every bench is a plain script: it starts the real daemons it needs (lab/)
on 127.0.0.1, measures, prints a table and the command that reproduces it, and stops
what it started. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

RUN_DIR = ROOT / ".run" / "bench"


def workdir(name: str) -> Path:
    """A fresh scratch directory for one bench run (under .run/bench, removed by nobody)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=RUN_DIR))


def reproduce_line(argv: Sequence[str] | None = None) -> str:
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return "python " + " ".join(shlex.quote(a) for a in [shown, *argv[1:]])


def rev_tag(rev: str) -> str:
    """A git revision as a Python/file name part (``HEAD~1`` -> ``HEAD_1``)."""
    return "".join(c if c.isalnum() else "_" for c in rev)


def module_at(rev: str, path: str, name: str) -> ModuleType:
    """The module ``path`` as it was at git revision ``rev``, loaded as ``name`` (for the
    before/after rows: both versions measured in one invocation)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
                            capture_output=True, text=True, check=True).stdout
    return module_from_source(source, name, f"{rev}:{path}")


def module_from_source(source: str, name: str, origin: str | None = None) -> ModuleType:
    """``source`` executed as a module registered under ``name``: the way :func:`module_at`
    loads a revision, for a variant that must be loaded alike."""
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, origin or name, "exec"), module.__dict__)
    return module


def export_tree(rev: str, wd: Path) -> Path:
    """``agent/`` and ``xanet/`` as they were at git revision ``rev``, exported under ``wd``
    (``git archive``): a child process with it first on its path runs that version."""
    root = wd / f"tree-{rev_tag(rev)}"
    root.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "agent", "xanet"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def header(title: str) -> None:
    print(f"== {title}")
    print(f"   host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start "
          f"(other work on this machine shares the cores: compare rows of one run, not runs)",
          flush=True)


@dataclass
class Row:
    cells: dict[str, Any]


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            return f"{v:.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "" if v is None else str(v)

    shown = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(s[i]) for s in shown)) if shown else len(c)
              for i, c in enumerate(columns)]
    print("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for s in shown:
        print("  " + "  ".join(v.rjust(w) for v, w in zip(s, widths, strict=True)))


def finish(results: dict[str, Any], json_path: str | None) -> None:
    print(f"   reproduce: {reproduce_line()}")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2, default=str))


def percentile(values: Iterable[float], p: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def best_cpu_s(f: Callable[[], object], repeat: int) -> float:
    """The least CPU time (process time, s) of ``repeat`` calls of ``f``."""
    out = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        f()
        out = min(out, time.process_time() - t)
    return out


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


class CpuMeter:
    """CPU seconds (user+sys) of some processes over an interval, by pid."""

    def __init__(self, *pids: int) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self._t0 = [self._cpu(p) for p in self.procs]
        self._w0 = time.monotonic()

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system + t.children_user + t.children_system)
        except psutil.NoSuchProcess:
            return 0.0

    def read(self) -> tuple[float, list[float]]:
        """(wall seconds, cpu seconds per pid) since construction."""
        return (time.monotonic() - self._w0,
                [self._cpu(p) - t0 for p, t0 in zip(self.procs, self._t0, strict=True)])


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20
