"""How a real daemon is run for tests, benches and the demo: free port, own workdir, log tail.

Every daemon class (:mod:`lab.mosquitto`, :mod:`lab.influx`, ...) is a :class:`Daemon`:
one real daemon on 127.0.0.1, on a free port, in a work directory of its own, with its
log in ``<workdir>/<name>.log``:

    with Mosquitto(tmp / "mqtt") as broker:
        ...  # broker.host, broker.port

Common API:

- ``start()``    starts the daemon and waits until it really answers (an MQTT
  CONNACK, an HTTP health check, an SNMP GET ...). On failure or timeout it
  kills the daemon and raises ``ServiceError`` whose message holds the tail of
  the log. Returns ``self``. Calling it while running is a no-op.
- ``stop()``     SIGTERM, then SIGKILL after ``grace_s``.
- ``kill()``     SIGKILL at once (crash tests).
- ``restart()``  ``stop()`` + ``start()``: same port, same data directory.
- ``running``, ``pid``, ``log_path``, ``log_tail()``, ``startup_s`` (seconds
  the last ``start()`` took).
- context manager: ``__enter__`` starts, ``__exit__`` stops.
- an ``atexit`` hook SIGKILLs every daemon still running when Python exits.

Only loopback addresses are ever used.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A daemon failed to start, died, or a helper request failed."""


def free_tcp_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = HOST) -> int:
    """A UDP port free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_LIVE: set[Daemon] = set()
_LIVE_LOCK = threading.Lock()


def _kill_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for d in live:
        try:
            d.kill()
        except Exception as exc:  # at exit: report, keep killing the others
            print(f"lab: could not kill {d!r}: {exc}", file=sys.stderr)


atexit.register(_kill_all)


def http_ok(url: str, expect: Iterable[int] = (200, 204)) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code in tuple(expect)
    except httpx.HTTPError:
        return False


class Daemon:
    """Base: subclasses set ``name``, build ``_command()`` and ``_ready()``."""

    name = "daemon"
    start_timeout_s = 30.0
    grace_s = 10.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None, *, udp: bool = False):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port: int = port if port is not None else (free_udp_port() if udp else free_tcp_port())
        self.log_path = self.workdir / f"{self.name}.log"
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- to override
    def _prepare(self) -> None:
        """Write config files, create dirs. Called before every start."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    def _ready(self) -> bool:
        raise NotImplementedError

    # -- public
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout_s: float | None = None) -> Self:
        if self.running:
            return self
        self._prepare()
        timeout = self.start_timeout_s if timeout_s is None else timeout_s
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== lab: starting {self.name} at {time.ctime()}\n".encode())
            log.flush()
            cmd = self._command()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    cwd=self.workdir,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C on the test run doesn't hit it
                )
            except FileNotFoundError as exc:
                raise ServiceError(
                    f"{self.name}: cannot run {cmd[0]!r} - is it installed? (COMPONENTS.md)"
                ) from exc
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = t0 + timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                self._forget()
                raise ServiceError(
                    f"{self.name} exited with code {rc} while starting "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(
                    f"{self.name} not ready after {timeout:.0f}s "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.05)
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self, grace_s: float | None = None) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()

    def restart(self, timeout_s: float | None = None) -> Self:
        self.stop()
        return self.start(timeout_s)

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid} {self.workdir}>"
