"""When an agent is silent: its signs of life, its Last Will, and how long silence must
last, across collector restarts (pure).

An agent is silent when its Last Will (or clean-stop status) arrived, or nothing came
from it for ``silent_after_s``. After a restart an agent is judged silent
``silent_after_s`` after its last sign of life of the previous run (``seen``), but never
before that long after the start, and its "silent since" is that sign of life, not the
restart. Until a first sign of life in this run an agent is ``unknown``, not clear: a
restored silence stays (docs/alerts.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from collector.outagemachine import Condition


@dataclass(slots=True)
class _Liveness:
    last_seen: float  # the last real sign of life (-inf: none known)
    offline_at: float | None = None
    back_since: float = -math.inf
    heard: bool = False  # a sign of life came in this run


def sign_of_life(received: float, sent: float | None, tolerance_s: float) -> float:
    """When a message shows its agent alive: when it was received - unless it says it was
    sent more than ``tolerance_s`` before (a retained status, or messages the broker kept
    while the collector was down: old news), then when it was sent. ``tolerance_s``
    absorbs the agents' clock error."""
    if sent is None or sent >= received - tolerance_s:
        return received
    return sent




class AgentLiveness:
    """Each agent's liveness, from its signs of life and Last Will marks in any order."""

    def __init__(self, agents: Iterable[str], silent_after_s: float, *, started: float,
                 seen: Mapping[str, float] | None = None) -> None:
        seen = seen or {}
        self.silent_after_s = silent_after_s
        self._started = started
        self._agents: dict[str, _Liveness] = {a: _Liveness(seen.get(a, -math.inf))
                                               for a in agents}

    def seen(self, agent: str, ts: float) -> None:
        """A sign of life of ``agent`` at ``ts`` (telemetry, an online status; see
        :func:`sign_of_life`). One older than what is known already (a stale retained
        status, or older than the Last Will) is no sign of life."""
        live = self._agents.get(agent)
        if live is None or not math.isfinite(ts) or ts < live.last_seen or (
                live.offline_at is not None and ts < live.offline_at):
            return
        if not live.heard or self._silent_at(live, ts):
            live.back_since = ts
        live.heard = True
        live.offline_at = None
        live.last_seen = ts

    def offline(self, agent: str, ts: float) -> None:
        """The agent's Last Will (or clean-stop status) arrived at ``ts``."""
        live = self._agents.get(agent)
        if live is None or ts < live.last_seen:
            return
        if live.offline_at is None:
            live.offline_at = ts

    def last_seen(self) -> dict[str, float]:
        """Each agent's last sign of life (what to keep across a restart: ``seen``)."""
        return {a: live.last_seen for a, live in self._agents.items()
                if math.isfinite(live.last_seen)}

    def last_seen_of(self, agent: str) -> float:
        """The agent's last sign of life (-inf: none known)."""
        return self._agents[agent].last_seen

    def silent_since(self, agent: str, now: float) -> float | None:
        """The last sign of life of a silent agent (None while it is not silent)."""
        cond, _ = self.condition(agent, now)
        if cond != "active":
            return None
        live = self._agents[agent]
        return live.last_seen if math.isfinite(live.last_seen) else self._started

    def condition(self, agent: str, now: float) -> tuple[Condition, float]:
        """The agent unit's condition at ``now`` (``active``: silent) and since when."""
        live = self._agents[agent]
        if live.offline_at is not None and live.offline_at <= now:
            return "active", live.offline_at
        deadline = max(live.last_seen, self._started) + self.silent_after_s
        if now >= deadline:
            return "active", deadline
        if not live.heard:  # a restart: no news yet is not good news
            return "unknown", -math.inf
        return "clear", live.back_since

    def _silent_at(self, live: _Liveness, ts: float) -> bool:
        return (live.offline_at is not None and live.offline_at <= ts) or (
            ts - max(live.last_seen, self._started) >= self.silent_after_s)
