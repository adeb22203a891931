"""The compact batch's body: v1 telemetry messages as columns of varints. Pure.

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

``None`` stays ``None``, every optional field's presence is kept. :func:`read_body` returns
plain dicts, one per message, for the wire models to validate (:mod:`xanet.compact`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from xanet import wire

STREAMS = ("S", "T", "C", "X", "F", "R")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_F64 = struct.Struct(">d")
_PROFILES = TypeAdapter(list[wire.ProfileReading])
_CAUSES = wire.POLL_CAUSES

# float tags (stream R)
_NONE, _RAW, _PREDICTED, _MILLI = 0, 1, 2, 3
# interface mask bits: the field differs from the previous poll's (value follows)
_NAME, _ALIAS, _SPEED, _HC, _OPER, _ADMIN, _NOTE, _IN_NONE, _OUT_NONE = (1 << i for i in range(9))
# poll mask bits
(_REACHABLE, _UPTIME, _ERROR, _CAUSE, _PING, _PARTS, _PROFILES_BIT, _POWER, _DT,
 _IFACES) = (1 << i for i in range(10))
# message mask bits
_INSTANCE, _SENT = 1, 2


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
    return _F64.pack(a) == _F64.pack(b)


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


class _State:
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
        self.state = _State()

    def body(self, messages: Iterable[wire.Telemetry]) -> bytes:
        msgs = list(messages)
        self._uint("S", len(msgs))
        for m in msgs:
            self._message(m)
        parts = bytearray()
        for name in STREAMS:
            _put_uint(parts, len(self.out[name]))
            parts += self.out[name]
        return bytes(parts)

    # -- primitives
    def _uint(self, stream: str, n: int) -> None:
        _put_uint(self.out[stream], n)

    def _int(self, stream: str, n: int) -> None:
        _put_uint(self.out[stream], zigzag(n))

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
            r.append(_NONE)
        elif predicted is not None and same_float(value, predicted):
            r.append(_PREDICTED)
        elif (k := _milli(value)) is not None:
            r.append(_MILLI)
            self._int("S", k)
        else:
            r.append(_RAW)
            self.out["F"] += _F64.pack(value)

    # -- the model
    def _message(self, m: wire.Telemetry) -> None:
        st = self.state
        mask = (_INSTANCE if m.instance is not None else 0) | (_SENT if m.sent else 0)
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
        mask = ((_REACHABLE if p.reachable else 0) | (_UPTIME if p.uptime_cs is not None else 0)
                | (_ERROR if p.error is not None else 0) | (_CAUSE if p.cause else 0)
                | (_PING if p.ping else 0) | (_PARTS if p.parts is not None else 0)
                | (_PROFILES_BIT if p.profiles is not None else 0)
                | (_POWER if p.power else 0) | (_DT if dt is not None else 0)
                | (_IFACES if p.interfaces else 0))
        self._uint("S", mask)
        self._id("device", p.device)
        us = micros(p.ts)
        self._int("T", us - st.last_ts.get(p.device, st.any_ts))
        self._float(p.rtt_ms)
        if p.uptime_cs is not None:
            self._int("T", p.uptime_cs - _uptime_guess(st, p.device, us))
            st.last_uptime[p.device] = p.uptime_cs
        st.last_ts[p.device] = st.any_ts = us
        if p.error is not None:
            self._str(p.error)
        if p.cause:
            self._uint("S", _CAUSES.index(p.cause))
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
            self.out["F"] += _F64.pack(dt)
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
        mask |= (_IN_NONE if i.in_octets is None else 0) | (_OUT_NONE if i.out_octets is None
                                                            else 0)
        self._uint("S", mask)
        if mask & _NAME:
            self._str(i.name)
        if mask & _ALIAS:
            self._str(i.alias)
        if mask & _SPEED:
            self._uint("S", 0 if i.speed_bps is None else i.speed_bps + 1)
        if mask & _HC:
            self._uint("S", int(i.hc))
        if mask & _OPER:
            self._uint("S", 0 if i.oper is None else i.oper + 1)
        if mask & _ADMIN:
            self._uint("S", 0 if i.admin is None else i.admin + 1)
        if mask & _NOTE:
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


_IDENTITY = ((_NAME, "name"), (_ALIAS, "alias"), (_SPEED, "speed_bps"), (_HC, "hc"),
             (_OPER, "oper"), (_ADMIN, "admin"), (_NOTE, "rate_note"))


def _milli(value: float) -> int | None:
    """``k`` when ``value`` is exactly ``k / 1000`` (a time rounded to µs in ms), else None."""
    if not -1e12 < value < 1e12:
        return None
    k = round(value * 1000)
    return k if same_float(k / 1000, value) else None


def _uptime_guess(st: _State, device: str, us: int) -> int:
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


class Reader:
    """The mirror of :class:`Writer`: plain dicts, in the wire models' field names."""

    def __init__(self, body: bytes, *, max_messages: int, max_polls: int) -> None:
        self.max_messages, self.max_polls = max_messages, max_polls
        self.polls = 0
        self.streams: dict[str, bytes] = {}
        self.at = dict.fromkeys(STREAMS, 0)
        view, pos = memoryview(body), 0
        for name in STREAMS:
            n, pos = _get_uint(view, pos)
            if pos + n > len(view):
                raise BodyError(f"stream {name} runs past the body")
            self.streams[name] = bytes(view[pos:pos + n])
            pos += n
        if pos != len(view):
            raise BodyError(f"{len(view) - pos} byte(s) after the last stream")
        self.state = _State()

    def messages(self) -> list[dict[str, Any]]:
        n = self._uint("S")
        if n > self.max_messages:
            raise TooMany("too_many_messages", f"{n} messages > {self.max_messages}")
        out = [self._message() for _ in range(n)]
        left = {k: len(v) - self.at[k] for k, v in self.streams.items() if len(v) > self.at[k]}
        if left:
            raise BodyError(f"bytes left unread in streams {left}")
        return out

    # -- primitives
    def _uint(self, stream: str) -> int:
        view, at = self.streams[stream], self.at[stream]
        if at < len(view) and view[at] < 0x80:  # most numbers are one byte
            self.at[stream] = at + 1
            return view[at]
        n, self.at[stream] = _get_uint(view, at)
        return n

    def _int(self, stream: str) -> int:
        return unzigzag(self._uint(stream))

    def _bytes(self, stream: str, n: int) -> bytes:
        at, view = self.at[stream], self.streams[stream]
        if at + n > len(view):
            raise BodyError(f"stream {stream} ends early")
        self.at[stream] = at + n
        return bytes(view[at:at + n])

    def _str(self) -> str | None:
        n = self._uint("X")
        if n == 0:
            return None
        try:
            return self._bytes("X", n - 1).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BodyError(f"a string is not UTF-8: {exc}") from exc

    def _text(self) -> str:
        s = self._str()
        if s is None:
            raise BodyError("a required string is absent")
        return s

    def _id(self, table: str) -> str:
        slot = self._uint("S")
        ids = self.state.ids[table]
        if slot == 0:
            value = self._text()
            ids.append(value)
            return value
        if slot > len(ids):
            raise BodyError(f"{table} #{slot} was never named")
        return ids[slot - 1]

    def _float(self, predicted: float | None = None) -> float | None:
        tags, at = self.streams["R"], self.at["R"]
        if at >= len(tags):
            raise BodyError("stream R ends early")
        self.at["R"] = at + 1
        tag = tags[at]
        if tag == _NONE:
            return None
        if tag == _PREDICTED:
            if predicted is None:
                raise BodyError("a predicted float with nothing to predict it from")
            return predicted
        if tag == _MILLI:
            return self._int("S") / 1000
        if tag == _RAW:
            return float(_F64.unpack(self._bytes("F", 8))[0])
        raise BodyError(f"unknown float tag {tag}")

    def _opt_uint(self) -> int | None:
        n = self._uint("S")
        return None if n == 0 else n - 1

    # -- the model
    def _message(self) -> dict[str, Any]:
        st = self.state
        mask = self._uint("S")
        m: dict[str, Any] = {"v": 1, "kind": "telemetry", "agent": self._id("agent"),
                             "site": self._id("site")}
        st.seq = st.seq + 1 + self._int("S")
        m["seq"] = st.seq
        if mask & _INSTANCE:
            m["instance"] = self._id("instance")
        if mask & _SENT:
            st.sent += self._int("T")
            m["sent"] = _time(st.sent)
        n = self._uint("S")
        self.polls += n
        if self.polls > self.max_polls:
            raise TooMany("too_many_polls", f"more than {self.max_polls} polls")
        m["polls"] = [self._poll() for _ in range(n)]
        return m

    def _poll(self) -> dict[str, Any]:
        st = self.state
        mask = self._uint("S")
        device = self._id("device")
        us = st.last_ts.get(device, st.any_ts) + self._int("T")
        p: dict[str, Any] = {"device": device, "ts": _time(us),
                             "reachable": bool(mask & _REACHABLE), "rtt_ms": self._float()}
        if mask & _UPTIME:
            p["uptime_cs"] = _uptime_guess(st, device, us) + self._int("T")
            st.last_uptime[device] = p["uptime_cs"]
        st.last_ts[device] = st.any_ts = us
        if mask & _ERROR:
            p["error"] = self._text()
        if mask & _CAUSE:
            cause = self._uint("S")
            if cause >= len(_CAUSES):
                raise BodyError(f"unknown cause #{cause}")
            p["cause"] = _CAUSES[cause]
        if mask & _PING:
            p["ping"] = {"sent": self._uint("S"), "received": self._uint("S"),
                         "rtt_ms": self._float()}
        if mask & _PARTS:
            p["parts"] = self._uint("S")
        if mask & _PROFILES_BIT:
            p["profiles"] = _json(self._text())
        if mask & _POWER:
            p["power"] = _json(self._text())
        dt = _F64.unpack(self._bytes("F", 8))[0] if mask & _DT else None
        p["interfaces"] = []
        if mask & _IFACES:
            n = self._uint("S")
            if n > wire.MAX_INTERFACES_PER_POLL:
                raise TooMany("too_many_interfaces",
                              f"{n} interfaces > {wire.MAX_INTERFACES_PER_POLL}")
            index = 0
            for _ in range(n):
                index += self._int("S") + 1
                p["interfaces"].append(self._interface(device, index, dt))
        return p

    def _interface(self, device: str, index: int, dt: float | None) -> dict[str, Any]:
        key = (device, index)
        prev = self.state.ifaces.get(key)
        mask = self._uint("S")
        if prev is None and mask & _ALL_IDENTITY != _ALL_IDENTITY:
            raise BodyError(f"interface {index} of {device} refers to a poll never sent")
        old: dict[str, Any] = prev if prev is not None else {}  # read only where prev is
        i: dict[str, Any] = {"index": index}
        i["name"] = self._text() if mask & _NAME else old["name"]
        i["alias"] = self._str() if mask & _ALIAS else old["alias"]
        i["speed_bps"] = self._opt_uint() if mask & _SPEED else old["speed_bps"]
        i["hc"] = bool(self._uint("S")) if mask & _HC else old["hc"]
        i["oper"] = self._opt_uint() if mask & _OPER else old["oper"]
        i["admin"] = self._opt_uint() if mask & _ADMIN else old["admin"]
        i["rate_note"] = self._str() if mask & _NOTE else old["rate_note"]
        before_in = prev["in_octets"] if prev else None
        before_out = prev["out_octets"] if prev else None
        i["in_octets"] = None if mask & _IN_NONE else (before_in or 0) + self._int("C")
        i["out_octets"] = None if mask & _OUT_NONE else (before_out or 0) + self._int("C")
        hc = bool(i["hc"])
        i["in_bps"] = self._float(rate_of(before_in, i["in_octets"], hc, dt))
        i["out_bps"] = self._float(rate_of(before_out, i["out_octets"], hc, dt))
        i["in_util_pct"] = self._float(util_of(i["in_bps"], i["speed_bps"]))
        i["out_util_pct"] = self._float(util_of(i["out_bps"], i["speed_bps"]))
        self.state.ifaces[key] = i
        return i


class TooMany(ValueError):
    """A count over its bound: ``reason`` names which."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


_ALL_IDENTITY = _NAME | _ALIAS | _SPEED | _HC | _OPER | _ADMIN | _NOTE


def _time(us: int) -> datetime:
    try:
        return from_micros(us)
    except OverflowError as exc:
        raise BodyError(f"a time out of range ({us} µs)") from exc


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BodyError(f"a profile or power part is not JSON: {exc}") from exc


def _get_uint(view: bytes | memoryview, pos: int) -> tuple[int, int]:
    n = shift = 0
    for k in range(11):  # 2**65 (a zigzagged counter delta) fits in 10 bytes
        if pos + k >= len(view):
            raise BodyError("a number runs past its stream")
        b = view[pos + k]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos + k + 1
        shift += 7
    raise BodyError("a number longer than 10 bytes")


def _put_uint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
