"""The wire contract between agents and the collector (MQTT payloads), version 1.

Pure: pydantic models plus ``encode``/``decode``. Every model is strict about
unknown fields (``extra="forbid"``) so a typo or a hostile field is rejected,
never silently ignored. Payloads are compact JSON (UTF-8).

Two message kinds travel on two topics (see :mod:`xanet.topics`):

* :class:`Telemetry` on ``.../telemetry`` — one or more device polls, QoS 1.
* :class:`Status` on ``.../status`` — agent birth / Last Will / self-telemetry,
  retained, QoS 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from xanet import ids

WIRE_VERSION = 1

#: Identifiers that also appear as MQTT topic levels and InfluxDB tags: the id grammar
#: of :mod:`xanet.ids` (re-exported here for the wire's readers).
IDENT_PATTERN = ids.IDENT_PATTERN
Ident = ids.Ident

#: Free text that is bounded (interface names, error strings).
ShortText = Annotated[str, StringConstraints(max_length=256)]

MAX_INTERFACES_PER_POLL = 4096
MAX_POLLS_PER_MESSAGE = 1000
MAX_COUNTER = 2**64 - 1


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


class _Strict(BaseModel):
    # allow_inf_nan=False: JSON from Python may carry NaN/Infinity (and 1e999 parses as inf);
    # InfluxDB cannot store them, so such a field makes the message invalid here.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class InterfacePoll(_Strict):
    """One interface as polled: identity, status, raw counters and agent rates."""

    index: int = Field(ge=1, le=2**31 - 1, description="ifIndex")
    name: ShortText = Field(description="ifName, falling back to ifDescr")
    oper: int | None = Field(default=None, ge=1, le=7, description="ifOperStatus (1=up, 2=down)")
    admin: int | None = Field(default=None, ge=1, le=3, description="ifAdminStatus")
    speed_bps: int | None = Field(default=None, ge=0, le=MAX_COUNTER)
    hc: bool = Field(description="True: 64-bit ifHC*Octets, False: 32-bit ifIn/OutOctets")
    in_octets: int | None = Field(default=None, ge=0, le=MAX_COUNTER)
    out_octets: int | None = Field(default=None, ge=0, le=MAX_COUNTER)
    in_bps: float | None = Field(default=None, ge=0)
    out_bps: float | None = Field(default=None, ge=0)
    in_util_pct: float | None = Field(default=None, ge=0)
    out_util_pct: float | None = Field(default=None, ge=0)
    rate_note: ShortText | None = Field(
        default=None, description="why a rate is missing (first_poll, reboot, wrap, ...)"
    )
    alias: ShortText | None = Field(
        default=None, min_length=1,
        description="ifAlias, the operator's port label; absent when the device has none "
        "(added to v1: collectors first)",
    )


#: Why a poll failed, classified at the agent (docs/availability.md, "Causes"):
#:
#: * ``timeout``  – no answer at all (the only cause that can mean the device is down);
#: * ``auth``     – SNMPv3 USM reports: unknown user, wrong digest, decryption error,
#:   unsupported security level, not in time window after a resync;
#: * ``access``   – noAccess / authorizationError / noSuchName on the polled columns;
#: * ``resolve``  – the device's host name does not resolve;
#: * ``protocol`` – malformed or lying answers;
#: * ``config``   – the agent's own configuration cannot be used for this device;
#: * ``limit``    – the device's answer exceeded a per-device bound (rows, bytes, walk length).
PollCause = Literal["timeout", "auth", "access", "resolve", "protocol", "config", "limit"]
POLL_CAUSES: tuple[PollCause, ...] = (
    "timeout", "auth", "access", "resolve", "protocol", "config", "limit",
)


#: A profile's or metric's name (agent/profiles/model.py's grammar for metrics and tags).
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

MAX_PROFILES_PER_POLL = 16
MAX_PROFILE_VALUES = 2048
MAX_PROFILE_TAGS = 8
MAX_PROFILE_WARNINGS = 16

#: Why a profile value is unknown (agent/profiles/evaluate.py's ``Unknown``): the device
#: answered its "don't know" value, does not have the object, or lied about the cell.
ProfileUnknown = Literal[
    "sentinel", "absent", "wrong_type", "out_of_range", "not_in_enum", "no_scale"]
PROFILE_UNKNOWNS: tuple[ProfileUnknown, ...] = (
    "sentinel", "absent", "wrong_type", "out_of_range", "not_in_enum", "no_scale")


class ProfileValue(_Strict):
    """One value of a device profile (docs/profiles.md): a number, a counter, a label or
    text, or unknown with the reason - never a sentinel written as a number.

    Exactly one of ``value`` (gauge, timeticks: scaled, in ``unit``), ``counter`` (a
    counter's raw reading; ``rate`` is its per-second rate from the agent's rate engine)
    and ``text`` (an enum's label with its ``code``, or a string) is set, or none of them
    and ``unknown`` says why.
    """

    metric: MetricName
    tags: dict[MetricName, ShortText] | None = Field(
        default=None, max_length=MAX_PROFILE_TAGS,
        description="the table row: its index and tag columns; absent for scalars",
    )
    unit: Annotated[str, StringConstraints(max_length=16)] | None = None
    value: float | None = None
    counter: int | None = Field(default=None, ge=0, le=MAX_COUNTER)
    rate: float | None = Field(default=None, ge=0, description="a counter's rate, per second")
    rate_note: ShortText | None = Field(
        default=None, description="why a counter has no rate (first_poll, reboot, wrap, ...)")
    text: ShortText | None = None
    code: int | None = Field(default=None, ge=-(2**31), le=2**32 - 1,
                             description="an enum's number, with its label in text")
    unknown: ProfileUnknown | None = None

    @model_validator(mode="after")
    def _one_value(self) -> ProfileValue:
        given = [name for name in ("value", "counter", "text")
                 if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"{' and '.join(given)} both set: a value is one of them")
        if given and self.unknown is not None:
            raise ValueError(f"{given[0]} set and unknown={self.unknown!r}")
        if not given and self.unknown is None:
            raise ValueError("no value, counter or text, and no unknown reason")
        if self.rate is not None and self.counter is None:
            raise ValueError("rate without a counter")
        return self


class ProfileReading(_Strict):
    """One profile of one device poll: its values, or why the profile could not be read."""

    profile: Annotated[str, StringConstraints(pattern=ids.CANONICAL_ID_PATTERN)]
    values: list[ProfileValue] = Field(default_factory=list, max_length=MAX_PROFILE_VALUES)
    warnings: list[ShortText] | None = Field(
        default=None, max_length=MAX_PROFILE_WARNINGS,
        description="what the device lied about (one value each lost, the rest stands)")
    error: ShortText | None = Field(
        default=None, description="the profile's poll failed: values is empty")
    cause: PollCause | None = None


#: A site's power as its power profile (ups-mib, or any profile that maps to it) says:
#: ``mains``; ``on_battery`` (the mains are gone, the batteries carry the site);
#: ``battery_low`` (on battery, and the UPS says low or depleted); ``unknown``.
PowerState = Literal["mains", "on_battery", "battery_low", "unknown"]
POWER_STATES: tuple[PowerState, ...] = ("mains", "on_battery", "battery_low", "unknown")


class PowerReading(_Strict):
    """The device's power state, derived by the agent from one of its profiles."""

    state: PowerState
    profile: Annotated[str, StringConstraints(pattern=ids.CANONICAL_ID_PATTERN)] = Field(
        description="the profile it was derived from")
    minutes_remaining: float | None = Field(
        default=None, ge=0, le=10**6, description="the UPS's estimate on the present load")
    charge_pct: float | None = Field(default=None, ge=0, le=100)
    seconds_on_battery: int | None = Field(default=None, ge=0, le=2**31 - 1)


class PingResult(_Strict):
    """The ICMP echo witness taken with a poll (absent when ICMP is off for the device)."""

    sent: int = Field(ge=1, le=100, description="echo requests sent")
    received: int = Field(ge=0, le=100, description="echo replies received")
    rtt_ms: float | None = Field(default=None, ge=0, description="mean RTT of the replies")

    @model_validator(mode="after")
    def _received_le_sent(self) -> PingResult:
        if self.received > self.sent:
            raise ValueError(f"received ({self.received}) > sent ({self.sent})")
        return self


class DevicePoll(_Strict):
    """The result of polling one device once (reachable or not).

    ``reachable`` is the SNMP answer (for a ping-only device: the ICMP answer).
    ``cause`` says why a failed poll failed; ``ping`` is the second witness.
    """

    device: Ident
    ts: UtcDatetime = Field(description="poll time, UTC, from the agent's clock")
    reachable: bool
    rtt_ms: float | None = Field(default=None, ge=0)
    uptime_cs: int | None = Field(default=None, ge=0, le=2**32 - 1, description="sysUpTime")
    error: ShortText | None = None
    cause: PollCause | None = Field(
        default=None, description="why the poll failed (set when reachable is false)"
    )
    ping: PingResult | None = None
    parts: int | None = Field(
        default=None, ge=2, le=MAX_INTERFACES_PER_POLL,
        description="a poll too large for one message, split by interfaces into this many "
        "parts (same device and ts); absent when whole",
    )
    interfaces: list[InterfacePoll] = Field(
        default_factory=list, max_length=MAX_INTERFACES_PER_POLL
    )
    profiles: list[ProfileReading] | None = Field(
        default=None, max_length=MAX_PROFILES_PER_POLL,
        description="device profile values (docs/profiles.md); absent when none were due "
        "(added to v1: collectors first)",
    )
    power: PowerReading | None = Field(
        default=None, description="the device's power state, when a profile maps to one "
        "(added to v1: collectors first)",
    )


class Telemetry(_Strict):
    """A telemetry message: one or more device polls from one agent at one site."""

    v: Literal[1] = 1
    kind: Literal["telemetry"] = "telemetry"
    agent: Ident
    site: Ident
    seq: int = Field(ge=0, le=2**63 - 1, description="per-agent, monotonically increasing")
    instance: Ident | None = Field(
        default=None, description="this agent process's instance id (duplicate-agent detection)"
    )
    sent: UtcDatetime | None = Field(
        default=None,
        description="when this message was handed to MQTT, agent clock: clock-skew check",
    )
    polls: list[DevicePoll] = Field(min_length=1, max_length=MAX_POLLS_PER_MESSAGE)


class AgentHealth(_Strict):
    """Agent self-telemetry carried in status messages."""

    spool_depth: int = Field(default=0, ge=0)
    spool_oldest_age_s: float | None = Field(default=None, ge=0)
    spool_dropped: int = Field(default=0, ge=0)
    poll_overruns: int = Field(default=0, ge=0)
    devices: int = Field(default=0, ge=0)
    refused: int = Field(
        default=0, ge=0, description="messages the broker refused (PUBACK reason code), kept"
    )
    quarantined: int = Field(
        default=0, ge=0, description="messages too large for the broker or the core, set aside"
    )
    polls_dropped: int = Field(
        default=0, ge=0, description="polls that could not be spooled (disk full, corrupt spool)"
    )
    monitoring_errors: int = Field(
        default=0, ge=0, description="devices whose last poll failed for a cause other than timeout"
    )
    config_version: int | None = Field(
        default=None, ge=1, description="the pushed config version running; absent: the "
        "agent's own file (added to v1: collectors first)",
    )
    config_refusal: ShortText | None = Field(
        default=None, description="why the last pushed config was refused (reason: detail, "
        "docs/remote-config.md); absent once one is applied (added to v1: collectors first)",
    )
    # The uplink's bytes (added to v1: collectors first); absent from older agents.
    bytes_sent: int | None = Field(
        default=None, ge=0, description="telemetry bytes acknowledged since start (on the wire)")
    bytes_live: int | None = Field(default=None, ge=0, description="of which live")
    bytes_backlog: int | None = Field(default=None, ge=0, description="of which backlog")
    bytes_per_poll: float | None = Field(
        default=None, ge=0, description="wire bytes per device poll since the last status")
    bytes_per_interface: float | None = Field(
        default=None, ge=0, description="wire bytes per interface sample since the last status")
    compression_ratio: float | None = Field(
        default=None, ge=0, description="JSON bytes / wire bytes sent since the last status")
    backlog_bytes: int | None = Field(
        default=None, ge=0, description="payload bytes in the spool, still to send")
    drain_bytes_per_s: float | None = Field(
        default=None, ge=0, description="backlog bytes acknowledged per second since the "
        "last status")
    drain_eta_s: float | None = Field(
        default=None, ge=0, description="backlog bytes / drain rate (absent: not draining)")
    budget_bytes_per_s: float | None = Field(
        default=None, ge=0, description="the backlog's bandwidth budget now (auto or set)")
    saturated: bool | None = Field(
        default=None, description="the backlog grew over the last statuses while connected")
    profiles_stretched: int | None = Field(
        default=None, ge=0, description="device profiles whose interval is stretched now")
    stretch_factor: int | None = Field(
        default=None, ge=1, description="by how much (1: none)")


#: The health's uplink byte fields (stored as ``agent_status`` fields of the same name).
AGENT_BYTES_FIELDS = (
    "bytes_sent", "bytes_live", "bytes_backlog", "bytes_per_poll", "bytes_per_interface",
    "compression_ratio", "backlog_bytes", "drain_bytes_per_s", "drain_eta_s",
    "budget_bytes_per_s", "saturated", "profiles_stretched", "stretch_factor")


class Status(_Strict):
    """Agent presence: ``online`` (birth) or ``offline`` (Last Will / clean stop)."""

    v: Literal[1] = 1
    kind: Literal["status"] = "status"
    agent: Ident
    site: Ident
    state: Literal["online", "offline"]
    ts: UtcDatetime | None = Field(
        default=None, description="when the agent said it; absent in a Last Will set long before"
    )
    reason: ShortText | None = None
    version: ShortText | None = None
    instance: Ident | None = Field(
        default=None, description="this agent process's instance id (duplicate-agent detection)"
    )
    health: AgentHealth | None = None


Message = Telemetry | Status


class DecodeError(ValueError):
    """A payload that is not a valid v1 message. ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(message: Message) -> bytes:
    """Compact JSON, UTF-8; ``None`` fields are left out to keep payloads small."""
    return message.model_dump_json(exclude_none=True).encode()


def decode(payload: bytes, kind: Literal["telemetry", "status"]) -> Message:
    """Parse and validate a payload expected to be of ``kind``.

    Raises :class:`DecodeError` with reason ``not_json``, ``not_object``,
    ``unknown_version``, ``wrong_kind`` or ``invalid`` (schema violation).

    Telemetry that is valid goes through pydantic-core's own JSON parser in one pass
    (:func:`_decode_fast`, half the CPU); anything it refuses is decoded again by
    :func:`_decode_checked`, which alone decides the reason, so rejections are
    exactly what they were without the fast path.
    """
    if kind == "telemetry":
        message = _decode_fast(payload)
        if message is not None:
            return message
    return _decode_checked(payload, kind)


def _decode_fast(payload: bytes) -> Telemetry | None:
    """A valid telemetry message, or ``None``: anything else is for :func:`_decode_checked`.

    Only where both paths accept the same payloads with the same values (tests/test_wire.py
    checks it): telemetry, whose every integer is bounded (a status message's counters are
    not, and Python's ``json`` refuses integers of more than 4,300 digits as ``not_json``),
    and with ``v`` present (the model's default would accept a message without it).
    """
    try:
        message = Telemetry.model_validate_json(payload)
    except (ValueError, RecursionError):  # ValidationError is a ValueError
        return None
    return message if "v" in message.model_fields_set else None


def _decode_checked(payload: bytes, kind: Literal["telemetry", "status"]) -> Message:
    """:func:`decode` step by step, each step with its own rejection reason."""
    try:
        raw = json.loads(payload)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int over 4300 digits
        raise DecodeError("not_json", str(exc)) from exc
    except RecursionError as exc:  # [[[[... nested deeper than the interpreter's stack
        raise DecodeError("not_json", "nested too deeply") from exc
    if not isinstance(raw, dict):
        raise DecodeError("not_object", f"top level is {type(raw).__name__}, not an object")
    version = raw.get("v")
    if version != WIRE_VERSION:
        raise DecodeError("unknown_version", f"v={version!r}, this collector speaks v=1")
    if raw.get("kind", kind) != kind:
        raise DecodeError("wrong_kind", f"kind={raw.get('kind')!r} on a {kind} topic")
    model: type[Telemetry] | type[Status] = Telemetry if kind == "telemetry" else Status
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise DecodeError("invalid", summarize(exc)) from exc


def summarize(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)
