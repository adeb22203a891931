"""Which instance of an agent id is the real one. Pure.

Every agent process has an instance id, new at each start (``Telemetry.instance``,
``Status.instance``; the agent stamps it when it spools a message, so a restarted agent
delivers its predecessor's backlog under the old id). Two live processes with one agent
id (a cloned box, a replaced box still powered) would double every poll and make the
agent's presence flap. The rule (docs/security.md, "Duplicate agents"), deterministic:

1. The first instance seen owns the agent id.
2. Another instance takes over only when the owner has *released* it - an ``offline``
   status (a clean stop, or its Last Will) -, when it is a restart on the same box (the
   agent's instance ids are ``<host>-<token>``: same host, new token; after a crash the
   broker may send no Last Will at all, it is delayed and cancelled by the reconnect), or
   when the owner has not been seen for ``takeover_after_s``.
3. An instance displaced less than ``takeover_after_s`` ago cannot take the id back by a
   release: two boxes sharing credentials knock each other off the broker, and the one
   that comes back is the duplicate.
4. Anything else is a duplicate: the owner is the instance seen alive most recently
   before the other appeared; the other's messages are refused (dead-lettered,
   ``duplicate_agent``) until the owner is silent for ``takeover_after_s``.
5. Backlog: telemetry under the id of a former owner whose polls were all taken before it
   was displaced is what it spooled while it owned the id (a restarted agent delivering
   its predecessor's spool): stored, and ownership does not change.
6. An ``offline`` under an instance that is not the owner (a former owner's late Will)
   says nothing about the owner: ignored (``STALE``).

Messages without an instance id (agents older than the field) are not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

FORMER_KEPT = 16  # former owners remembered per agent id (for their backlog)


class Verdict(StrEnum):
    OWNER = "owner"
    TAKEOVER = "takeover"  # a new owner (the previous one released or went silent)
    BACKLOG = "backlog"  # a former owner's spooled polls, delivered late
    DUPLICATE = "duplicate"
    STALE = "stale"  # an offline of an instance that does not own the id


@dataclass(slots=True)
class _Agent:
    owner: str
    seen: float  # the owner's last message
    released: bool = False
    former: dict[str, float] = field(default_factory=dict)  # former owner -> displaced at
    refused: dict[str, float] = field(default_factory=dict)  # duplicate instance -> last seen


class InstanceTracker:
    def __init__(self, takeover_after_s: float) -> None:
        self.takeover_after_s = takeover_after_s
        self._agents: dict[str, _Agent] = {}
        self.takeovers = 0

    def observe(self, agent: str, instance: str, now: float, *, offline: bool = False,
                polled_until: float | None = None) -> Verdict:
        """One message from ``instance`` of ``agent`` at ``now`` (collector clock):
        ``offline`` for an offline status (clean stop or Last Will), ``polled_until`` for
        telemetry: its newest poll's time."""
        a = self._agents.get(agent)
        if a is None:
            self._agents[agent] = _Agent(instance, now, released=offline)
            return Verdict.OWNER
        limit = self.takeover_after_s
        if instance == a.owner:
            if not offline:
                a.seen = now
            a.released = offline
            return Verdict.OWNER
        if offline:
            return Verdict.STALE
        displaced_at = a.former.get(instance)
        if displaced_at is not None and polled_until is not None and polled_until < displaced_at:
            return Verdict.BACKLOG
        silent = now - a.seen >= limit
        returning = (displaced_at is not None and now - displaced_at < limit) or (
            instance in a.refused and now - a.refused[instance] < limit)
        if silent or ((a.released or same_host(a.owner, instance)) and not returning):
            a.former[a.owner] = now
            while len(a.former) > FORMER_KEPT:
                del a.former[next(iter(a.former))]
            a.refused.pop(instance, None)
            a.owner, a.seen, a.released = instance, now, False
            self.takeovers += 1
            return Verdict.TAKEOVER
        a.refused[instance] = now
        return Verdict.DUPLICATE

    def owners(self) -> dict[str, tuple[str, float]]:
        """Each agent id's owner and when it was last seen (for a checkpoint)."""
        return {agent: (a.owner, a.seen) for agent, a in self._agents.items()}

    def restore(self, owners: Mapping[str, tuple[str, float]]) -> None:
        """Go on from a checkpoint's owners (before any message of this run): the owner
        keeps its id, a restarted agent on the same box still takes it over."""
        for agent, (owner, seen) in owners.items():
            self._agents.setdefault(agent, _Agent(owner, seen))

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


def same_host(a: str, b: str) -> bool:
    """Two instance ids of the agent's ``<host>-<token>`` form with the same host."""
    ha, _, ta = a.rpartition("-")
    hb, _, tb = b.rpartition("-")
    return bool(ha) and ha == hb and bool(ta) and bool(tb)
