"""The agent's pushed-config state: trusted keys, the last good config on disk, the version
running and the last refusal.

The decisions are :mod:`agent.remoteconfig`'s; this edge reads the core's public keys,
keeps the last good signed payload in ``remote_config.state_dir`` (written to a temporary
file, fsynced, renamed, the directory fsynced: a power cut leaves the old or the new one,
never half of one) and starts the agent on it, verified again, when there is one: a box
that starts while the broker is out of reach runs the devices it ran before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from agent.bootstrap import STORED
from agent.config import AgentConfig, check_agent
from agent.remoteconfig import Applied, Running, decide
from xanet.signedconfig import Reason, Refusal, trusted_keys

log = logging.getLogger("xanet.agent.config")

#: the refusal as the status carries it (wire.ShortText holds 256)
REFUSAL_CHARS = 250


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path``, all or nothing, across a power cut."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class RemoteConfig:
    """Pushed configs for one agent. ``config``: what it runs now (the bootstrap until a
    pushed one is applied, or the stored one from the start)."""

    def __init__(self, bootstrap: AgentConfig,
                 check: Callable[[AgentConfig], list[str]] = check_agent) -> None:
        rc = bootstrap.remote_config
        self.bootstrap = bootstrap
        self.enabled = rc.enabled
        self.check = check
        self.trusted = trusted_keys(rc.public_keys) if rc.enabled else {}
        self.path = rc.state_dir / STORED
        self.config = bootstrap
        self.running: Running | None = None
        #: the last refusal, ``reason: detail`` (None once a config is applied)
        self.refusal: str | None = None
        self.refused = 0
        if rc.enabled:
            self._start_on_stored()

    @property
    def version(self) -> int | None:
        return None if self.running is None else self.running.version

    def note(self) -> str | None:
        """What the online status says of pushed configs: none yet, or one refused."""
        if not self.enabled:
            return None
        if self.refusal is not None:
            return f"pushed config refused: {self.refusal}"
        if self.running is None:
            return ("no pushed config yet: running the bootstrap file (is the core "
                    "publishing one, and may this agent read its config topic?)")
        return None

    def _start_on_stored(self) -> None:
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            log.info("remote config: none stored yet in %s; waiting for the core's "
                     "(%d device(s) in the bootstrap file)", self.path.parent,
                     len(self.bootstrap.devices))
            return
        except OSError as exc:
            log.error("remote config: cannot read the stored config %s: %s; starting on the "
                      "bootstrap file", self.path, exc.strerror or exc)
            return
        try:
            outcome = decide(payload, bootstrap=self.bootstrap, trusted=self.trusted,
                             running=None, check=self.check)
        except Refusal as exc:
            log.error("remote config: the stored config %s is refused now (%s); starting on "
                      "the bootstrap file", self.path, exc)
            return
        assert isinstance(outcome, Applied)  # nothing runs yet: never Unchanged
        self._run(outcome)
        log.info("remote config: starting on the stored config version %d (%d device(s))",
                 outcome.envelope.version, len(outcome.config.devices))

    def _run(self, applied: Applied) -> None:
        self.config = applied.config
        self.running = Running(applied.envelope.version, applied.envelope.config)
        self.refusal = None

    def receive(self, payload: bytes) -> Applied | None:
        """A config message: the config to apply now (then :meth:`commit` it once applied),
        or None (the same again, or refused: :attr:`refusal` says why, and the agent keeps
        running what it runs)."""
        try:
            outcome = decide(payload, bootstrap=self.bootstrap, trusted=self.trusted,
                             running=self.running, check=self.check)
        except Refusal as exc:
            self.refuse(exc.reason, exc.detail)
            return None
        return outcome if isinstance(outcome, Applied) else None

    def refuse(self, reason: Reason, detail: str) -> None:
        """A config not applied: reported in the status until one is."""
        self.refusal = f"{reason}: {detail}"[:REFUSAL_CHARS]
        self.refused += 1
        log.error("remote config refused (%s: %s); still running version %s", reason, detail,
                  self.version if self.version is not None else "(bootstrap)")

    def commit(self, outcome: Applied) -> None:
        """``outcome`` runs now: stored as the last good config, reported in the status."""
        payload = outcome.payload
        try:
            write_atomically(self.path, payload)
        except OSError as exc:  # applied all the same; it is re-sent (retained) at restart
            log.error("remote config: cannot store version %d in %s: %s",
                      outcome.envelope.version, self.path, exc.strerror or exc)
        self._run(outcome)
        log.info("remote config: version %d applied (%d device(s), signed with key %s, "
                 "issued %s)", outcome.envelope.version, len(outcome.config.devices),
                 outcome.envelope.key_id, outcome.envelope.issued)
