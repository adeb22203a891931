"""InfluxDB line protocol: the schema xanet writes, and the encoder. Pure.

Schema (all InfluxQL-friendly; identity in tags, values in fields; ms precision):

``device`` — one point per device poll
    tags: province, commune, site, device, agent
    fields: up (int 1/0: answered SNMP), rtt_ms (float), uptime_s (float), seq (int)
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

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache

from xanet import wire
from xanet.topics import SiteTopic

INT_MAX = 2**63 - 1
FieldValue = int | float | bool | str

_MEAS_ESC = str.maketrans({",": r"\,", " ": r"\ ", "\n": " ", "\r": " "})
_TAG_ESC = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " ", "\r": " ", "\\": "/"})


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


# Keys, measurement names and most tag values repeat from line to line (field names are
# constants, device and interface names recur every poll): escape each distinct string
# once. str.translate per key and value was the encoder's largest cost (profile in
# BENCHMARKS.md). Bounded caches: a flood of distinct names only evicts.
@lru_cache(maxsize=1024)
def _escape_measurement(name: str) -> str:
    return name.translate(_MEAS_ESC)


@lru_cache(maxsize=1024)
def _escape_key(key: str) -> str:
    return key.translate(_TAG_ESC)


@lru_cache(maxsize=65536)
def _escape_tag_value(value: str) -> str:
    return value.translate(_TAG_ESC)


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
        kind = type(v)
        if kind is int:  # the common cases first, by exact type; subclasses below
            if not -INT_MAX <= v <= INT_MAX:  # type: ignore[operator]  # v is an int here
                continue
            text = f"{v}i"
        elif kind is float:
            text = repr(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not -INT_MAX <= v <= INT_MAX:
            continue
        else:
            text = _field(v)
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


def telemetry_lines(where: SiteTopic, msg: wire.Telemetry) -> list[str]:
    out: list[str] = []
    base = {"province": where.province, "commune": where.commune, "site": msg.site}
    for poll in msg.polls:
        ts = to_ms(poll.ts)
        dev_tags = {**base, "device": poll.device}
        dev = line(
            "device",
            {**dev_tags, "agent": msg.agent},
            {
                "up": 1 if poll.reachable else 0,
                "rtt_ms": poll.rtt_ms,
                "uptime_s": poll.uptime_cs / 100 if poll.uptime_cs is not None else None,
                "seq": msg.seq,
                "error": poll.error,
            },
            ts,
        )
        if dev:
            out.append(dev)
        out.extend(_interface_lines(dev_tags, poll.interfaces, ts))
    return out


def _interface_lines(
    dev_tags: Mapping[str, str], interfaces: Iterable[wire.InterfacePoll], ts: int
) -> Iterable[str]:
    for i in interfaces:
        ln = line(
            "interface",
            {**dev_tags, "ifindex": str(i.index), "ifname": i.name},
            {
                "oper": i.oper,
                "admin": i.admin,
                "speed_bps": i.speed_bps,
                "hc": 1 if i.hc else 0,
                "in_octets": i.in_octets,
                "out_octets": i.out_octets,
                "in_bps": i.in_bps,
                "out_bps": i.out_bps,
                "in_util_pct": i.in_util_pct,
                "out_util_pct": i.out_util_pct,
                "rate_note": i.rate_note,
            },
            ts,
        )
        if ln:
            yield ln


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
        },
        to_ms(msg.ts or received),
    )
    assert ln is not None  # "online" always has a value
    return ln
