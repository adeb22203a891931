"""How a compact batch's body is laid out: v1 telemetry messages as columns of varints. Pure.

Inside the zstd frame (:mod:`xanet.compact`), a batch of telemetry messages is written
field by field into a few *streams*, so that like values sit next to like for the
compressor: ``S`` structure (counts, presence masks, small numbers), ``T`` times and other
deltas, ``C`` counter deltas, ``X`` strings, ``F`` raw IEEE doubles, ``R`` one tag byte per
float. The writer and the reader walk the messages in the same order and keep the same
state, so each value is written relative to what the reader already has:

* a device, agent, site or instance id once per batch (then its number in a table);
* a poll's time as the difference from the same device's previous poll, in µs;
* an interface's identity (name, alias, speed, hc) and status (oper, admin, rate note)
  only when it differs from the same ifIndex in the device's previous poll: one mask;
* its counters as the difference from that poll's (any integer: wraps and resets exact);
* a rate when ``delta x 8 / dt`` (one ``dt`` per poll) gives **the same IEEE double**, a
  utilisation when ``bps / speed x 100`` does, a time in ms when ``k / 1000`` does - the
  writer checks bit for bit and otherwise writes the 8 bytes: every float arrives exactly;
* profile readings and power, which are rare, as their wire JSON.

``None`` stays ``None``, every optional field's presence is kept. This module writes
(:class:`Writer`) and holds what both sides share; :mod:`xanet.compact_reader` reads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from xanet import wire

STREAMS = ("S", "T", "C", "X", "F", "R")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
F64 = struct.Struct(">d")
_PROFILES = TypeAdapter(list[wire.ProfileReading])
CAUSES = wire.POLL_CAUSES

# float tags (stream R)
TAG_NONE, TAG_RAW, TAG_PREDICTED, TAG_MILLI = 0, 1, 2, 3
# interface mask bits: the field differs from the previous poll's (value follows)
(IF_NAME, IF_ALIAS, IF_SPEED, IF_HC, IF_OPER, IF_ADMIN, IF_NOTE, IF_IN_NONE,
 IF_OUT_NONE) = (1 << i for i in range(9))
IF_IDENTITY = IF_NAME | IF_ALIAS | IF_SPEED | IF_HC | IF_OPER | IF_ADMIN | IF_NOTE
# poll mask bits
(POLL_REACHABLE, POLL_UPTIME, POLL_ERROR, POLL_CAUSE, POLL_PING, POLL_PARTS, POLL_PROFILES,
 POLL_POWER, POLL_DT, POLL_IFACES) = (1 << i for i in range(10))
# message mask bits
MSG_INSTANCE, MSG_SENT = 1, 2


class BodyError(ValueError):
    """The body is not a well-formed batch (truncated, overlong varint, bad UTF-8...)."""


def zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def unzigzag(n: int) -> int:
    return n >> 1 if not n & 1 else -((n + 1) >> 1)


def micros(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def same_float(a: float, b: float) -> bool:
    """Bit for bit (0.0 is not -0.0)."""
    return F64.pack(a) == F64.pack(b)


def rate_of(prev: int | None, cur: int | None, hc: bool, dt: float | None) -> float | None:
    """The agent's rate (agent/rates.py): the counter's modular delta x 8 / dt."""
    if prev is None or cur is None or dt is None or dt <= 0:
        return None
    try:
        return ((cur - prev) % (1 << (64 if hc else 32))) * 8 / dt
    except OverflowError:  # a delta too large for a float: no prediction
        return None


def util_of(bps: float | None, speed: int | None) -> float | None:
    if bps is None or not speed or speed <= 0:
        return None
    try:
        return bps / speed * 100.0
    except OverflowError:
        return None


class State:
    """What writer and reader both know at each point: tables and previous values."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {"device": [], "agent": [], "site": [], "instance": []}
        self.slots: dict[str, dict[str, int]] = {k: {} for k in self.ids}
        self.last_ts: dict[str, int] = {}  # device -> µs of its previous poll
        self.last_uptime: dict[str, int] = {}
        self.ifaces: dict[tuple[str, int], dict[str, Any]] = {}  # (device, index) -> fields
        self.any_ts = 0
        self.seq = -1
        self.sent = 0


class Writer:
    def __init__(self) -> None:
        self.out = {name: bytearray() for name in STREAMS}
        self.state = State()
        self.count = 0
        self._marks: list[tuple[int, ...]] = []

    def body(self, messages: Iterable[wire.Telemetry]) -> bytes:
        for m in messages:
            self.add(m)
        return self.body_of(self.count)

    def add(self, message: wire.Telemetry) -> None:
        """Write one more message (its streams' ends are kept: :meth:`body_of`)."""
        self._message(message)
        self.count += 1
        self._marks.append(tuple(len(self.out[name]) for name in STREAMS))

    def body_of(self, n: int) -> bytes:
        """The body of the first ``n`` messages added (each stream cut where the n-th
        ended), without writing them again: a batch that does not fit is shortened for
        the price of its compression only."""
        marks = self._marks[n - 1] if n else (0,) * len(STREAMS)
        parts = bytearray()
        for name, end in zip(STREAMS, marks, strict=True):
            data = self.out[name][:end]
            if name == "S":  # the message count leads the structure stream
                head = bytearray()
                put_uint(head, n)
                data = head + data
            put_uint(parts, len(data))
            parts += data
        return bytes(parts)

    # -- primitives
    def _uint(self, stream: str, n: int) -> None:
        put_uint(self.out[stream], n)

    def _int(self, stream: str, n: int) -> None:
        put_uint(self.out[stream], zigzag(n))

    def _str(self, s: str | None) -> None:
        """``None`` as 0, else the UTF-8 length + 1 and the bytes."""
        if s is None:
            self._uint("X", 0)
            return
        data = s.encode("utf-8", "surrogatepass")
        self._uint("X", len(data) + 1)
        self.out["X"] += data

    def _id(self, table: str, value: str) -> None:
        slots = self.state.slots[table]
        slot = slots.get(value)
        if slot is None:
            self._uint("S", 0)
            self._str(value)
            slots[value] = len(slots)
            self.state.ids[table].append(value)
        else:
            self._uint("S", slot + 1)

    def _float(self, value: float | None, predicted: float | None = None) -> None:
        r = self.out["R"]
        if value is None:
            r.append(TAG_NONE)
        elif predicted is not None and same_float(value, predicted):
            r.append(TAG_PREDICTED)
        elif (k := milli(value)) is not None:
            r.append(TAG_MILLI)
            self._int("S", k)
        else:
            r.append(TAG_RAW)
            self.out["F"] += F64.pack(value)

    # -- the model
    def _message(self, m: wire.Telemetry) -> None:
        st = self.state
        mask = (MSG_INSTANCE if m.instance is not None else 0) | (MSG_SENT if m.sent else 0)
        self._uint("S", mask)
        self._id("agent", m.agent)
        self._id("site", m.site)
        self._int("S", m.seq - st.seq - 1)
        st.seq = m.seq
        if m.instance is not None:
            self._id("instance", m.instance)
        if m.sent is not None:
            us = micros(m.sent)
            self._int("T", us - st.sent)
            st.sent = us
        self._uint("S", len(m.polls))
        for p in m.polls:
            self._poll(p)

    def _poll(self, p: wire.DevicePoll) -> None:
        st = self.state
        dt = _find_dt(p, st.ifaces)
        mask = ((POLL_REACHABLE if p.reachable else 0)
                | (POLL_UPTIME if p.uptime_cs is not None else 0)
                | (POLL_ERROR if p.error is not None else 0) | (POLL_CAUSE if p.cause else 0)
                | (POLL_PING if p.ping else 0) | (POLL_PARTS if p.parts is not None else 0)
                | (POLL_PROFILES if p.profiles is not None else 0)
                | (POLL_POWER if p.power else 0) | (POLL_DT if dt is not None else 0)
                | (POLL_IFACES if p.interfaces else 0))
        self._uint("S", mask)
        self._id("device", p.device)
        us = micros(p.ts)
        self._int("T", us - st.last_ts.get(p.device, st.any_ts))
        self._float(p.rtt_ms)
        if p.uptime_cs is not None:
            self._int("T", p.uptime_cs - uptime_guess(st, p.device, us))
            st.last_uptime[p.device] = p.uptime_cs
        st.last_ts[p.device] = st.any_ts = us
        if p.error is not None:
            self._str(p.error)
        if p.cause:
            self._uint("S", CAUSES.index(p.cause))
        if p.ping:
            self._uint("S", p.ping.sent)
            self._uint("S", p.ping.received)
            self._float(p.ping.rtt_ms)
        if p.parts is not None:
            self._uint("S", p.parts)
        if p.profiles is not None:
            self._str(_PROFILES.dump_json(p.profiles, exclude_none=True).decode())
        if p.power:
            self._str(p.power.model_dump_json(exclude_none=True))
        if dt is not None:
            self.out["F"] += F64.pack(dt)
        if p.interfaces:
            self._uint("S", len(p.interfaces))
            index = 0
            for i in p.interfaces:
                self._int("S", i.index - index - 1)
                index = i.index
                self._interface(p.device, i, dt)

    def _interface(self, device: str, i: wire.InterfacePoll, dt: float | None) -> None:
        key = (device, i.index)
        prev = self.state.ifaces.get(key)
        cur = i.model_dump()
        mask = 0
        for bit, name in _IDENTITY:
            if prev is None or prev[name] != cur[name]:
                mask |= bit
        mask |= (IF_IN_NONE if i.in_octets is None else 0) | (IF_OUT_NONE if i.out_octets is None
                                                            else 0)
        self._uint("S", mask)
        if mask & IF_NAME:
            self._str(i.name)
        if mask & IF_ALIAS:
            self._str(i.alias)
        if mask & IF_SPEED:
            self._uint("S", 0 if i.speed_bps is None else i.speed_bps + 1)
        if mask & IF_HC:
            self._uint("S", int(i.hc))
        if mask & IF_OPER:
            self._uint("S", 0 if i.oper is None else i.oper + 1)
        if mask & IF_ADMIN:
            self._uint("S", 0 if i.admin is None else i.admin + 1)
        if mask & IF_NOTE:
            self._str(i.rate_note)
        before_in = prev["in_octets"] if prev else None
        before_out = prev["out_octets"] if prev else None
        if i.in_octets is not None:
            self._int("C", i.in_octets - (before_in or 0))
        if i.out_octets is not None:
            self._int("C", i.out_octets - (before_out or 0))
        in_guess = rate_of(before_in, i.in_octets, i.hc, dt)
        out_guess = rate_of(before_out, i.out_octets, i.hc, dt)
        self._float(i.in_bps, in_guess)
        self._float(i.out_bps, out_guess)
        self._float(i.in_util_pct, util_of(i.in_bps, i.speed_bps))
        self._float(i.out_util_pct, util_of(i.out_bps, i.speed_bps))
        self.state.ifaces[key] = cur


_IDENTITY = ((IF_NAME, "name"), (IF_ALIAS, "alias"), (IF_SPEED, "speed_bps"), (IF_HC, "hc"),
             (IF_OPER, "oper"), (IF_ADMIN, "admin"), (IF_NOTE, "rate_note"))


def milli(value: float) -> int | None:
    """``k`` when ``value`` is exactly ``k / 1000`` (a time rounded to µs in ms), else None."""
    if not -1e12 < value < 1e12:
        return None
    k = round(value * 1000)
    return k if same_float(k / 1000, value) else None


def uptime_guess(st: State, device: str, us: int) -> int:
    """sysUpTime advances by the time between two polls (in centiseconds)."""
    last = st.last_uptime.get(device)
    if last is None:
        return 0
    return last + (us - st.last_ts.get(device, us)) // 10_000


def _find_dt(p: wire.DevicePoll, ifaces: dict[tuple[str, int], dict[str, Any]]
             ) -> float | None:
    """The one interval that reproduces the most of the poll's rates bit for bit (tried
    from its first few rates), or None."""
    candidates: list[float] = []
    for i in p.interfaces:
        prev = ifaces.get((p.device, i.index))
        if prev is None:
            continue
        for before, now, bps in ((prev["in_octets"], i.in_octets, i.in_bps),
                                 (prev["out_octets"], i.out_octets, i.out_bps)):
            if before is None or now is None or not bps:
                continue
            delta = (now - before) % (1 << (64 if i.hc else 32))
            try:
                dt = delta * 8 / bps
            except OverflowError:
                continue
            if dt > 0 and same_float(delta * 8 / dt, bps):
                candidates.append(dt)
        if len(candidates) >= 3:
            break
    if not candidates:
        return None
    return max(dict.fromkeys(candidates), key=lambda dt: _hits(p, ifaces, dt))


def _hits(p: wire.DevicePoll, ifaces: dict[tuple[str, int], dict[str, Any]],
          dt: float) -> int:
    n = 0
    for i in p.interfaces:
        prev = ifaces.get((p.device, i.index))
        if prev is None:
            continue
        for before, now, bps in ((prev["in_octets"], i.in_octets, i.in_bps),
                                 (prev["out_octets"], i.out_octets, i.out_bps)):
            guess = rate_of(before, now, i.hc, dt)
            n += bps is not None and guess is not None and same_float(bps, guess)
    return n


def put_uint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
