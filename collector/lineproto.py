"""InfluxDB line protocol: the schema xanet writes, and the encoder. Pure.

Schema (all InfluxQL-friendly; identity in tags, values in fields; ms precision):

``device`` — one point per device poll
    tags: province, commune, site, device, agent
    fields: up (int 1/0: answered SNMP), rtt_ms (float), uptime_s (float), seq (int),
    error, cause (string: why the poll failed), ping_sent, ping_received (int),
    ping_loss_pct, ping_rtt_ms (float): the ICMP witness, absent when ICMP is off
``interface`` — one point per interface per successful poll
    tags: province, commune, site, device, ifindex, ifname
    fields: oper (int ifOperStatus), admin (int), speed_bps (int), hc (int 1/0),
    in_octets, out_octets (int, raw counters), in_bps, out_bps, in_util_pct,
    out_util_pct (float; absent when no rate), rate_note (string; why no rate)
``agent_status`` — one point per status message
    tags: province, commune, site, agent
    fields: online (int 1/0), reason (string), spool_depth, spool_dropped,
    poll_overruns, devices (int), spool_oldest_age_s (float)

Integers above 2^63-1 cannot be stored as InfluxDB integers; such a raw counter
value is left out of the point (and counted by the caller), never wrapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

from xanet import wire
from xanet.topics import SiteTopic

INT_MAX = 2**63 - 1
FieldValue = int | float | bool | str

# Escaping (docs/data.md, "Line protocol escaping"), as InfluxDB's parser reads it:
# * measurement: "," and " " are escaped with a backslash; tag keys, tag values and field
#   keys: ",", "=" and " ". Any other backslash is literal there (InfluxDB 1.x stores
#   ``a\\b`` as two backslashes): a backslash round-trips - except directly before ",",
#   "=", " " or '"', or at the very end, where parsers read it as (part of) an escape (1.x
#   unescapes '\\"' in measurements and field keys but not in tags; VictoriaMetrics also
#   reads "\\\\" as one): there it is written as U+29F5 (REVERSE SOLIDUS OPERATOR, which
#   looks like one).
# * string field values: "\\" and '"' are escaped with a backslash (both round-trip).
# * line protocol is one point per line: a newline or carriage return cannot be carried
#   anywhere; they are written as the visible symbols U+240A and U+240D.
NEWLINE, CARRIAGE_RETURN, LONE_BACKSLASH = "\u240a", "\u240d", "\u29f5"
_MEAS_ESC = str.maketrans({",": r"\,", " ": r"\ ", "\n": NEWLINE, "\r": CARRIAGE_RETURN})
_TAG_ESC = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": NEWLINE,
                          "\r": CARRIAGE_RETURN})
_STR_ESC = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": NEWLINE, "\r": CARRIAGE_RETURN})
_LONE = re.compile(r'\\(?=[,= "]|\Z)')


def escape_measurement(name: str) -> str:
    if "\\" in name:
        name = _LONE.sub(LONE_BACKSLASH, name)
    return name.translate(_MEAS_ESC)


def escape_identifier(text: str) -> str:
    """A tag key, tag value or field key as line protocol."""
    if "\\" in text:
        text = _LONE.sub(LONE_BACKSLASH, text)
    return text.translate(_TAG_ESC)


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return f'"{value.translate(_STR_ESC)}"'


# Keys, measurement names and most tag values repeat from line to line (field names are
# constants, device and interface names recur every poll): escape each distinct string
# once. str.translate per key and value was the encoder's largest cost (profile in
# BENCHMARKS.md). Bounded caches: a flood of distinct names only evicts.
@lru_cache(maxsize=1024)
def _escape_measurement(name: str) -> str:
    return escape_measurement(name)


@lru_cache(maxsize=1024)
def _escape_key(key: str) -> str:
    return escape_identifier(key)


@lru_cache(maxsize=65536)
def _escape_tag_value(value: str) -> str:
    return escape_identifier(value)


def _value(v: FieldValue) -> str | None:
    """A field value as line protocol; ``None`` for an integer InfluxDB cannot store."""
    kind = type(v)
    if kind is float:  # the common cases first, by exact type; subclasses below
        return repr(v)
    if kind is int:
        return f"{v}i" if -INT_MAX <= v <= INT_MAX else None  # type: ignore[operator]  # an int
    if isinstance(v, int) and not isinstance(v, bool) and not -INT_MAX <= v <= INT_MAX:
        return None
    return _field(v)


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    ts_ms: int,
) -> str | None:
    """One line; ``None`` when no field has a value (InfluxDB rejects such lines)."""
    field_parts = []
    for k, v in fields.items():
        if v is None:
            continue
        text = _value(v)
        if text is not None:
            field_parts.append(f"{_escape_key(k)}={text}")
    if not field_parts:
        return None
    tag_parts = "".join(
        f",{_escape_key(k)}={_escape_tag_value(v)}"
        for k, v in sorted(tags.items())
        if v != ""
    )
    return f"{_escape_measurement(measurement)}{tag_parts} {','.join(field_parts)} {ts_ms}"


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _tag(key: str, value: str) -> str:
    """``,key=value`` escaped, or nothing for an empty value (as :func:`line` does)."""
    return f",{key}={_escape_tag_value(value)}" if value != "" else ""


def _put(parts: list[str], key: str, v: FieldValue | None) -> None:
    if v is not None:
        text = _value(v)
        if text is not None:
            parts.append(f"{key}={text}")


def telemetry_lines(where: SiteTopic, msg: wire.Telemetry) -> list[str]:
    """The ``device`` and ``interface`` lines of a message: what :func:`line` would write
    for them (byte for byte, tests/test_lineproto.py), built without the per-line tag dicts
    and sorting: the tags are in key order by construction, the field keys need no
    escaping, and each poll's shared tags are escaped once."""
    out: list[str] = []
    commune = _tag("commune", where.commune)
    province_site = _tag("province", where.province) + _tag("site", msg.site)
    agent = _tag("agent", msg.agent)
    seq = _value(msg.seq)
    for poll in msg.polls:
        ts = to_ms(poll.ts)
        device = _tag("device", poll.device)
        fields = ["up=1i" if poll.reachable else "up=0i"]
        _put(fields, "rtt_ms", poll.rtt_ms)
        if poll.uptime_cs is not None:
            _put(fields, "uptime_s", poll.uptime_cs / 100)
        if seq is not None:
            fields.append(f"seq={seq}")
        _put(fields, "error", poll.error)
        _put(fields, "cause", poll.cause)
        if poll.ping is not None:
            _ping_fields(fields, poll.ping)
        out.append(f"device{agent}{commune}{device}{province_site} {','.join(fields)} {ts}")
        head = f"interface{commune}{device}"
        tail = f"{province_site} "
        for i in poll.interfaces:
            fields = []
            _put(fields, "oper", i.oper)
            _put(fields, "admin", i.admin)
            _put(fields, "speed_bps", i.speed_bps)
            fields.append("hc=1i" if i.hc else "hc=0i")
            _put(fields, "in_octets", i.in_octets)
            _put(fields, "out_octets", i.out_octets)
            _put(fields, "in_bps", i.in_bps)
            _put(fields, "out_bps", i.out_bps)
            _put(fields, "in_util_pct", i.in_util_pct)
            _put(fields, "out_util_pct", i.out_util_pct)
            _put(fields, "rate_note", i.rate_note)
            out.append(f"{head}{_tag('ifindex', str(i.index))}{_tag('ifname', i.name)}{tail}"
                       f"{','.join(fields)} {ts}")
    return out


def _ping_fields(parts: list[str], ping: wire.PingResult) -> None:
    parts.append(f"ping_sent={ping.sent}i")
    parts.append(f"ping_received={ping.received}i")
    parts.append(f"ping_loss_pct={ping_loss_pct(ping)!r}")
    _put(parts, "ping_rtt_ms", ping.rtt_ms)


def ping_loss_pct(ping: wire.PingResult) -> float:
    return 100.0 * (ping.sent - ping.received) / ping.sent


def status_line(where: SiteTopic, msg: wire.Status, received: datetime) -> str:
    h = msg.health
    ln = line(
        "agent_status",
        {"province": where.province, "commune": where.commune, "site": msg.site,
         "agent": msg.agent},
        {
            "online": 1 if msg.state == "online" else 0,
            "reason": msg.reason,
            "spool_depth": h.spool_depth if h else None,
            "spool_dropped": h.spool_dropped if h else None,
            "spool_oldest_age_s": h.spool_oldest_age_s if h else None,
            "poll_overruns": h.poll_overruns if h else None,
            "devices": h.devices if h else None,
            "refused": h.refused if h else None,
            "quarantined": h.quarantined if h else None,
            "polls_dropped": h.polls_dropped if h else None,
            "monitoring_errors": h.monitoring_errors if h else None,
            "instance": msg.instance,
        },
        to_ms(msg.ts or received),
    )
    assert ln is not None  # "online" always has a value
    return ln
