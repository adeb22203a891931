"""``xanet`` as a real child process: a program until stopped (SIGKILL tests, the demo), or a
command run to its end (:func:`run_xanet`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

#: The repository: the child runs ``python -m xanet.cli`` from here.
ROOT = Path(__file__).resolve().parent.parent


class Subprogram:
    """``xanet agent|collector --config FILE`` as a real child process (for SIGKILL tests)."""

    def __init__(self, kind: str, config_path: Path, env: dict[str, str] | None = None,
                 log_path: Path | None = None, log_level: str = "info") -> None:
        self.kind = kind
        self.log_level = log_level  # debug makes paho log every packet: slow under load
        self.config_path = config_path
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path or config_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        #: what the command line is run under, e.g. ``Netns.wrap([])``: inside a namespace
        self.prefix: list[str] = []

    def start(self) -> Subprogram:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "xanet.cli", "--log-level", self.log_level,
             self.kind, "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_xanet(*args: str | Path, env: dict[str, str] | None = None,
              timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``xanet ARGS...`` run to its end as a child process (``xanet agent test``,
    ``xanet check-config``): its exit code, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "xanet.cli", *map(str, args)], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, cwd=ROOT, timeout=timeout_s, check=False,
    )
