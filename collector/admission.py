"""Admission of MQTT messages: every check a message must pass before it is stored. Pure.

A message is *accepted* (possibly with some polls dropped, each counted) or
*rejected* with a short reason that becomes a counter key and a dead-letter
record. Reasons:

``too_large``      payload over ``max_payload_bytes``
``bad_topic``      not ``xanet/v1/{province}/{commune}/{site}/{telemetry|status|batch}``
``not_json``, ``not_object``, ``unknown_version``, ``wrong_kind``, ``invalid``
                   from :func:`xanet.wire.decode`
``bad_frame``, ``too_large_decompressed``, ``too_many_messages``, ``too_many_polls``,
``too_many_interfaces``
                   a compact batch (``.../batch``) that cannot be read as a whole, from
                   :func:`xanet.compact.decode` (:func:`admit_batch`); each message of a
                   readable batch then passes :func:`admit_message` like a JSON one
``topic_mismatch`` the payload's site differs from the topic's site
``agent_mismatch`` the inventory assigns the site to another agent
``ts_future``, ``ts_past``
                   a poll's timestamp too far ahead of / behind the collector's
                   clock (polls dropped one by one - and kept in ``dropped_polls``
                   for the dead-letter store; the message is rejected when none is
                   left), or a status message's timestamp
``too_many_values`` a message's polls carry more profile values than
                   ``max_profile_values``: polls are taken in order while the total fits;
                   each poll past it is stored without its profiles, which are kept in
                   ``dropped_polls`` (counted one poll at a time)
``tag_too_long``   a profile value whose row tags (keys and values, UTF-8) exceed
                   ``max_profile_tag_bytes``: that value is not stored, the rest of the
                   poll is; the poll's refused values are kept in ``dropped_polls``
                   (counted one poll at a time)

A message without profiles passes exactly as before these bounds existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from xanet import compact, topics, wire


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_future_s: float = 300.0
    max_past_s: float = 31 * 86400.0
    #: profile values per message (the wire's own bound is 16 x 2048 per poll, x 1000
    #: polls); above what a message of the default 256 KiB can carry (~10,000)
    max_profile_values: int = 16_384
    #: one profile value's row tags, keys and values, in UTF-8 bytes
    max_profile_tag_bytes: int = 1024
    #: a compact batch's bounds (its compressed size: ``max_payload_bytes``)
    max_batch_decompressed_bytes: int = 4 * 1024 * 1024
    max_batch_messages: int = 2000
    max_batch_polls: int = 20_000

    @property
    def batch(self) -> compact.Limits:
        return compact.Limits(max_payload_bytes=self.max_payload_bytes,
                              max_decompressed_bytes=self.max_batch_decompressed_bytes,
                              max_messages=self.max_batch_messages,
                              max_polls=self.max_batch_polls)


@dataclass(frozen=True, slots=True)
class Accepted:
    where: topics.SiteTopic
    message: wire.Telemetry | wire.Status
    #: reason -> polls dropped (ts_*), or polls whose profile values were cut (the others)
    dropped: dict[str, int] = field(default_factory=dict)
    #: what was dropped, by reason, as polls (for the profile bounds: a copy of the poll
    #: with the refused profile values only); the collector dead-letters them: replayable
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
    if where.kind == "batch":
        return Rejected("bad_topic", f"{topic!r}: a batch goes through admit_batch")
    try:
        message = wire.decode(payload, where.kind)
    except wire.DecodeError as exc:
        return Rejected(exc.reason, exc.detail)
    return admit_message(where, message, now, limits, site_agents)


@dataclass(frozen=True, slots=True)
class Batch:
    """A compact batch that could be read: its messages, each to :func:`admit_message`
    on ``where`` (the site's telemetry topic), or refused alone (:class:`compact.Invalid`)."""

    where: topics.SiteTopic
    messages: list[wire.Telemetry | compact.Invalid]


def admit_batch(topic: str, payload: bytes, limits: Limits) -> Batch | Rejected:
    """A ``.../batch`` message read within ``limits.batch``, or rejected whole."""
    try:
        where = topics.parse(topic)
    except topics.TopicError as exc:
        return Rejected("bad_topic", str(exc))
    if where.kind != "batch":
        return Rejected("bad_topic", f"{topic!r} is not a batch topic")
    try:
        messages = compact.decode(payload, limits.batch)
    except wire.DecodeError as exc:
        return Rejected(exc.reason, exc.detail)
    return Batch(topics.SiteTopic(where.province, where.commune, where.site, "telemetry"),
                 messages)


def admit_message(
    where: topics.SiteTopic,
    message: wire.Telemetry | wire.Status,
    now: datetime,
    limits: Limits,
    site_agents: Mapping[str, str] | None = None,
) -> Accepted | Rejected:
    """The checks after decoding, the same for a JSON message and one of a batch."""
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
    cut = any(poll.profiles for poll in kept) and bound_profiles(kept, limits, out)
    if dropped or cut:
        dropped = {reason: len(polls) for reason, polls in out.items()}
        message = message.model_copy(update={"polls": kept})
    return Accepted(where, message, dropped, out)


DETAILS = {
    "ts_future": "poll(s) stamped too far ahead",
    "ts_past": "poll(s) stamped too far back",
    "too_many_values": "poll(s) past the message's profile value limit, their profiles",
    "tag_too_long": "poll(s) with profile values whose row tags are too long, those values",
}


def bound_profiles(polls: list[wire.DevicePoll], limits: Limits,
                   out: dict[str, list[wire.DevicePoll]]) -> bool:
    """Apply the profile bounds to ``polls`` in place; what is cut goes to ``out`` by
    reason, as copies of the polls (interfaces and power left out). True if anything was."""
    total = 0
    cut = False
    for i, poll in enumerate(polls):
        if not poll.profiles:
            continue
        readings, long_ = _short_tags(poll.profiles, limits.max_profile_tag_bytes)
        if long_:
            out.setdefault("tag_too_long", []).append(_part(poll, long_))
        n = sum(len(r.values) for r in readings)
        if total + n > limits.max_profile_values:
            out.setdefault("too_many_values", []).append(_part(poll, readings))
            readings = []
        else:
            total += n
        if readings is not poll.profiles:
            polls[i] = poll.model_copy(update={"profiles": readings or None})
            cut = True
    return cut


def _part(poll: wire.DevicePoll, readings: list[wire.ProfileReading]) -> wire.DevicePoll:
    return poll.model_copy(update={"interfaces": [], "power": None, "profiles": readings})


def _short_tags(readings: list[wire.ProfileReading], max_bytes: int
                ) -> tuple[list[wire.ProfileReading], list[wire.ProfileReading]]:
    """(``readings`` without the values whose tags are too long, those values); the list
    itself when none is."""
    long_: list[wire.ProfileReading] = []
    kept: list[wire.ProfileReading] = []
    for r in readings:
        bad = [v for v in r.values if v.tags and _tag_bytes(v.tags) > max_bytes]
        if bad:
            long_.append(r.model_copy(update={"values": bad, "warnings": None,
                                              "error": None, "cause": None}))
            gone = {id(v) for v in bad}
            kept.append(r.model_copy(update={"values": [v for v in r.values
                                                        if id(v) not in gone]}))
        else:
            kept.append(r)
    return (readings, []) if not long_ else (kept, long_)


def _tag_bytes(tags: Mapping[str, str]) -> int:
    return sum(len(k) + len(v.encode()) for k, v in tags.items())
