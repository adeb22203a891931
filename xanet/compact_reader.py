"""Reading a compact batch's body back into messages: the mirror of the writer. Pure.

:class:`Reader` walks the streams of :mod:`xanet.compact_columns` in the writer's order,
keeping the same state, and returns plain dicts in the wire models' field names (the
models validate them: :mod:`xanet.compact`). Every count is bounded before it is used
(messages, polls, interfaces), every read checks its stream's end: a malformed body is a
:class:`~xanet.compact_columns.BodyError` or :class:`TooMany`, never a crash.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from xanet import wire
from xanet.compact_columns import (
    CAUSES,
    F64,
    IF_ADMIN,
    IF_ALIAS,
    IF_HC,
    IF_IDENTITY,
    IF_IN_NONE,
    IF_NAME,
    IF_NOTE,
    IF_OPER,
    IF_OUT_NONE,
    IF_SPEED,
    MSG_INSTANCE,
    MSG_SENT,
    POLL_CAUSE,
    POLL_DT,
    POLL_ERROR,
    POLL_IFACES,
    POLL_PARTS,
    POLL_PING,
    POLL_POWER,
    POLL_PROFILES,
    POLL_REACHABLE,
    POLL_UPTIME,
    STREAMS,
    TAG_MILLI,
    TAG_NONE,
    TAG_PREDICTED,
    TAG_RAW,
    BodyError,
    State,
    from_micros,
    rate_of,
    unzigzag,
    uptime_guess,
    util_of,
)


class Reader:
    """The mirror of :class:`Writer`: plain dicts, in the wire models' field names."""

    def __init__(self, body: bytes, *, max_messages: int, max_polls: int) -> None:
        self.max_messages, self.max_polls = max_messages, max_polls
        self.polls = 0
        self.streams: dict[str, bytes] = {}
        self.at = dict.fromkeys(STREAMS, 0)
        view, pos = memoryview(body), 0
        for name in STREAMS:
            n, pos = get_uint(view, pos)
            if pos + n > len(view):
                raise BodyError(f"stream {name} runs past the body")
            self.streams[name] = bytes(view[pos:pos + n])
            pos += n
        if pos != len(view):
            raise BodyError(f"{len(view) - pos} byte(s) after the last stream")
        self.state = State()

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
        n, self.at[stream] = get_uint(view, at)
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
        if tag == TAG_NONE:
            return None
        if tag == TAG_PREDICTED:
            if predicted is None:
                raise BodyError("a predicted float with nothing to predict it from")
            return predicted
        if tag == TAG_MILLI:
            return self._int("S") / 1000
        if tag == TAG_RAW:
            return float(F64.unpack(self._bytes("F", 8))[0])
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
        if mask & MSG_INSTANCE:
            m["instance"] = self._id("instance")
        if mask & MSG_SENT:
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
                             "reachable": bool(mask & POLL_REACHABLE), "rtt_ms": self._float()}
        if mask & POLL_UPTIME:
            p["uptime_cs"] = uptime_guess(st, device, us) + self._int("T")
            st.last_uptime[device] = p["uptime_cs"]
        st.last_ts[device] = st.any_ts = us
        if mask & POLL_ERROR:
            p["error"] = self._text()
        if mask & POLL_CAUSE:
            cause = self._uint("S")
            if cause >= len(CAUSES):
                raise BodyError(f"unknown cause #{cause}")
            p["cause"] = CAUSES[cause]
        if mask & POLL_PING:
            p["ping"] = {"sent": self._uint("S"), "received": self._uint("S"),
                         "rtt_ms": self._float()}
        if mask & POLL_PARTS:
            p["parts"] = self._uint("S")
        if mask & POLL_PROFILES:
            p["profiles"] = _json(self._text())
        if mask & POLL_POWER:
            p["power"] = _json(self._text())
        dt = F64.unpack(self._bytes("F", 8))[0] if mask & POLL_DT else None
        p["interfaces"] = []
        if mask & POLL_IFACES:
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
        if prev is None and mask & IF_IDENTITY != IF_IDENTITY:
            raise BodyError(f"interface {index} of {device} refers to a poll never sent")
        old: dict[str, Any] = prev if prev is not None else {}  # read only where prev is
        i: dict[str, Any] = {"index": index}
        i["name"] = self._text() if mask & IF_NAME else old["name"]
        i["alias"] = self._str() if mask & IF_ALIAS else old["alias"]
        i["speed_bps"] = self._opt_uint() if mask & IF_SPEED else old["speed_bps"]
        i["hc"] = bool(self._uint("S")) if mask & IF_HC else old["hc"]
        i["oper"] = self._opt_uint() if mask & IF_OPER else old["oper"]
        i["admin"] = self._opt_uint() if mask & IF_ADMIN else old["admin"]
        i["rate_note"] = self._str() if mask & IF_NOTE else old["rate_note"]
        before_in = prev["in_octets"] if prev else None
        before_out = prev["out_octets"] if prev else None
        i["in_octets"] = None if mask & IF_IN_NONE else (before_in or 0) + self._int("C")
        i["out_octets"] = None if mask & IF_OUT_NONE else (before_out or 0) + self._int("C")
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


def get_uint(view: bytes | memoryview, pos: int) -> tuple[int, int]:
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
