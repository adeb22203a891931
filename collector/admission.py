"""Admission of MQTT messages: every check a message must pass before it is stored. Pure.

A message is *accepted* (possibly with some polls dropped, each counted) or
*rejected* with a short reason that becomes a counter key and a dead-letter
record. Reasons:

``too_large``      payload over ``max_payload_bytes``
``bad_topic``      not ``xanet/v1/{province}/{commune}/{site}/{telemetry|status}``
``not_json``, ``not_object``, ``unknown_version``, ``wrong_kind``, ``invalid``
                   from :func:`xanet.wire.decode`
``topic_mismatch`` the payload's site differs from the topic's site
``agent_mismatch`` the inventory assigns the site to another agent
``ts_future``, ``ts_past``
                   a poll's timestamp too far ahead of / behind the collector's
                   clock (polls dropped one by one - and kept in ``dropped_polls``
                   for the dead-letter store; the message is rejected when none is
                   left), or a status message's timestamp
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from xanet import topics, wire


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_future_s: float = 300.0
    max_past_s: float = 31 * 86400.0


@dataclass(frozen=True, slots=True)
class Accepted:
    where: topics.SiteTopic
    message: wire.Telemetry | wire.Status
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> polls dropped
    #: the dropped polls themselves, by reason (the collector dead-letters them: replayable)
    dropped_polls: dict[str, list[wire.DevicePoll]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str
    #: set when the message itself was valid (refused for its time stamps): the collector
    #: still checks the agent's clock with it
    where: topics.SiteTopic | None = None
    message: wire.Telemetry | wire.Status | None = None


def admit(
    topic: str,
    payload: bytes,
    now: datetime,
    limits: Limits,
    site_agents: Mapping[str, str] | None = None,
) -> Accepted | Rejected:
    """``site_agents``: site id → the agent the inventory says polls it (sites absent from
    the mapping accept any agent)."""
    if len(payload) > limits.max_payload_bytes:
        return Rejected("too_large", f"{len(payload)} bytes > {limits.max_payload_bytes}")
    try:
        where = topics.parse(topic)
    except topics.TopicError as exc:
        return Rejected("bad_topic", str(exc))
    try:
        message = wire.decode(payload, where.kind)
    except wire.DecodeError as exc:
        return Rejected(exc.reason, exc.detail)
    if message.site != where.site:
        return Rejected("topic_mismatch",
                        f"payload site {message.site!r} on the topic of site {where.site!r}")
    expected = site_agents.get(where.site) if site_agents else None
    if expected is not None and message.agent != expected:
        return Rejected("agent_mismatch",
                        f"agent {message.agent!r} speaks for site {where.site!r}, which the "
                        f"inventory assigns to agent {expected!r}")
    earliest = now - timedelta(seconds=limits.max_past_s)
    latest = now + timedelta(seconds=limits.max_future_s)
    if isinstance(message, wire.Status):
        # A status stamped far off would be stored at that time (or refused by InfluxDB).
        if message.ts is not None and message.ts > latest:
            return Rejected("ts_future", f"status ts {message.ts.isoformat()} is ahead of now",
                            where, message)
        if message.ts is not None and message.ts < earliest:
            return Rejected("ts_past", f"status ts {message.ts.isoformat()} is too old",
                            where, message)
        return Accepted(where, message)
    kept: list[wire.DevicePoll] = []
    out: dict[str, list[wire.DevicePoll]] = {}
    for poll in message.polls:
        if poll.ts > latest:
            out.setdefault("ts_future", []).append(poll)
        elif poll.ts < earliest:
            out.setdefault("ts_past", []).append(poll)
        else:
            kept.append(poll)
    dropped = {reason: len(polls) for reason, polls in out.items()}
    if not kept:
        reason = max(dropped, key=lambda r: dropped[r])
        return Rejected(reason, f"every poll's timestamp is out of bounds ({dropped})",
                        where, message)
    if dropped:
        message = message.model_copy(update={"polls": kept})
    return Accepted(where, message, dropped, out)
