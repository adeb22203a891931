"""Which instance of an agent id is the real one. Pure.

Every agent process has an instance id, new at each start (``Telemetry.instance``,
``Status.instance``). Two live processes with one agent id (a cloned box, a replaced box
still powered) would double every poll and make the agent's presence flap. The rule
(docs/security.md, "Duplicate agents"), deterministic:

1. The first instance seen owns the agent id.
2. Another instance takes over only when the owner has *released* it - it stopped
   cleanly (an ``offline`` status with a time) or its Last Will arrived (``offline``,
   no time) - or when the owner has not been seen for ``takeover_after_s``. A restarted
   agent therefore takes over at once.
3. An instance displaced less than ``takeover_after_s`` ago cannot take the id back by a
   release: two boxes sharing credentials knock each other off the broker (each one's
   Last Will fires when the other connects), and the one that came back is the duplicate.
4. Anything else is a duplicate: the owner is the instance seen alive most recently
   before the other appeared; the other's messages are refused (dead-lettered,
   ``duplicate_agent``) and one alert names both, until the refused instance has not been
   seen for ``takeover_after_s``.

Messages without an instance id (agents older than the field) are not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    OWNER = "owner"
    TAKEOVER = "takeover"  # a new owner (the previous one released or went silent)
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class _Agent:
    owner: str
    seen: float  # the owner's last message
    released: bool = False
    displaced: dict[str, float] = field(default_factory=dict)  # instance -> when displaced
    refused: dict[str, float] = field(default_factory=dict)  # duplicate instance -> last seen


class InstanceTracker:
    def __init__(self, takeover_after_s: float) -> None:
        self.takeover_after_s = takeover_after_s
        self._agents: dict[str, _Agent] = {}
        self.takeovers = 0

    def observe(self, agent: str, instance: str, now: float, *, offline: bool = False
                ) -> Verdict:
        """One message from ``instance`` of ``agent``; ``offline``: a status saying offline
        (a clean stop or the Last Will: both release the id)."""
        a = self._agents.get(agent)
        if a is None:
            self._agents[agent] = _Agent(instance, now, released=offline)
            return Verdict.OWNER
        limit = self.takeover_after_s
        a.displaced = {i: t for i, t in a.displaced.items() if now - t < limit}
        if instance == a.owner:
            if not offline:
                a.seen = now
            a.released = offline
            return Verdict.OWNER
        silent = now - a.seen >= limit
        returning = instance in a.displaced or instance in a.refused
        if silent or (a.released and not returning):
            a.displaced[a.owner] = now
            a.refused.pop(instance, None)
            a.owner, a.seen, a.released = instance, now, offline
            self.takeovers += 1
            return Verdict.TAKEOVER
        a.refused[instance] = now
        return Verdict.DUPLICATE

    def owner(self, agent: str) -> str | None:
        a = self._agents.get(agent)
        return a.owner if a else None

    def duplicates(self, agent: str, now: float) -> list[str]:
        """Instances of ``agent`` refused within the last ``takeover_after_s``."""
        a = self._agents.get(agent)
        if a is None:
            return []
        a.refused = {i: t for i, t in a.refused.items() if now - t < self.takeover_after_s}
        return sorted(a.refused)
