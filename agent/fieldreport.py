"""What ``xanet agent test`` found, and how it reads for a technician: text, JSON, exit code (pure).

:mod:`agent.fieldtest` polls and connects and hands over one :class:`DeviceResult` per
device and one :class:`BrokerResult`; the likely causes of each failure come from
:mod:`agent.diagnosis`. Exit code: 0 every device answered and the broker accepted the
test message, 1 any failure (a device, its ICMP echo, the broker); 2 (a bad config) is
decided before anything is tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.diagnosis import (
    ConnectFailure,
    connack_causes,
    connect_causes,
    ping_causes,
    poll_causes,
    puback_causes,
    reason_name,
)
from xanet import wire

#: ifOperStatus (IF-MIB), by number.
OPER_NAMES = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant",
              6: "notPresent", 7: "lowerLayerDown"}
#: PUBACK "No matching subscribers" (MQTT v5, 0x10): a success.
NO_MATCHING_SUBSCRIBERS = 0x10
#: Interfaces listed per device in the text output (--json lists every one).
MAX_LISTED_INTERFACES = 48
#: Profile values listed per profile in the text output.
MAX_LISTED_VALUES = 8


@dataclass(frozen=True)
class DeviceResult:
    """One device polled once, as the agent would have published it (``poll``)."""

    device: str
    site: str
    host: str
    port: int
    snmp: str | None  # "2c", "3"; None: ping-only
    poll: wire.DevicePoll
    pinged: bool = False  # the device has the ICMP witness
    ping_error: str | None = None  # ICMP could not be sent at all
    sys_name: str | None = None
    sys_descr: str | None = None
    system_error: str | None = None  # sysName/sysDescr not readable (not a failure)
    warnings: tuple[str, ...] = ()

    @property
    def snmp_ok(self) -> bool:
        return self.poll.reachable

    @property
    def ping_ok(self) -> bool:
        if not self.pinged:
            return True
        return self.ping_error is None and self.poll.ping is not None \
            and self.poll.ping.received > 0

    @property
    def failed_profiles(self) -> list[wire.ProfileReading]:
        return [r for r in self.poll.profiles or [] if r.error is not None]

    @property
    def ok(self) -> bool:
        return self.snmp_ok and self.ping_ok and not self.failed_profiles


@dataclass(frozen=True)
class BrokerResult:
    """The connection to the broker and the one test message."""

    host: str
    port: int
    tls: bool
    user: str
    protocol: str
    topic: str
    failure: ConnectFailure | None = None  # no CONNACK came back
    error: str | None = None  # the library's words, when something failed
    connack: int | None = None  # CONNACK reason code (0: accepted)
    puback: int | None = None  # PUBACK reason code of the test message
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.connack == 0 and self.puback is not None and self.puback < 0x80

    def causes(self) -> tuple[str, ...]:
        if self.failure is not None:
            return connect_causes(self.failure, host=self.host, port=self.port, tls=self.tls)
        if self.connack is not None and self.connack != 0:
            return connack_causes(self.connack, user=self.user)
        if self.puback is not None and self.puback >= 0x80:
            return puback_causes(self.puback, topic=self.topic, user=self.user)
        if not self.ok:
            return ("the broker accepted the connection but did not answer the test message "
                    "in time (mqtt.publish_timeout_s): it is overloaded, or the link drops "
                    "packets", "another client with this user name took the connection "
                    "over: a running agent reconnecting (stop it during the test)")
        return ()


def exit_code(devices: list[DeviceResult], broker: BrokerResult | None) -> int:
    """0 everything answered and was accepted; 1 any failure."""
    failed = any(not d.ok for d in devices) or (broker is not None and not broker.ok)
    return 1 if failed else 0


# ----------------------------------------------------------------------- text


def duration(cs: int) -> str:
    """sysUpTime (hundredths of a second) as ``12d 03:04:05``."""
    s = cs // 100
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3_600)
    minutes, s = divmod(s, 60)
    return f"{days}d {hours:02}:{minutes:02}:{s:02}"


def speed(bps: int | None) -> str:
    if bps is None:
        return "-"
    for unit, size in (("Gbit/s", 10**9), ("Mbit/s", 10**6), ("kbit/s", 10**3)):
        if bps >= size:
            return f"{bps / size:g} {unit}"
    return f"{bps} bit/s"


def _value(v: wire.ProfileValue) -> str:
    tags = "" if not v.tags else "[" + ",".join(f"{k}={t}" for k, t in v.tags.items()) + "]"
    unit = f" {v.unit}" if v.unit else ""
    if v.value is not None:
        shown = f"{v.value:g}{unit}"
    elif v.counter is not None:
        shown = f"{v.counter} (counter)"
    elif v.text is not None:
        shown = v.text if v.code is None else f"{v.text} ({v.code})"
    else:
        shown = f"unknown ({v.unknown})"
    return f"{v.metric}{tags} = {shown}"


def _power(p: wire.PowerReading) -> str:
    parts = [p.state.replace("_", " ")]
    if p.minutes_remaining is not None:
        parts.append(f"{p.minutes_remaining:g} min remaining")
    if p.charge_pct is not None:
        parts.append(f"charge {p.charge_pct:g}%")
    if p.seconds_on_battery:
        parts.append(f"{p.seconds_on_battery} s on battery")
    return ", ".join(parts) + f" (profile {p.profile})"


def _causes(causes: tuple[str, ...], indent: str) -> list[str]:
    return [f"{indent}likely causes:", *(f"{indent}  - {c}" for c in causes)]


def _interfaces(poll: wire.DevicePoll) -> list[str]:
    if not poll.interfaces:
        return ["  interfaces: none"]
    rows = [("index", "name", "alias", "oper", "speed", "in octets", "out octets")]
    for i in poll.interfaces[:MAX_LISTED_INTERFACES]:
        rows.append((str(i.index), i.name, i.alias or "-",
                     OPER_NAMES.get(i.oper, "?") if i.oper is not None else "?",
                     speed(i.speed_bps),
                     "-" if i.in_octets is None else str(i.in_octets),
                     "-" if i.out_octets is None else str(i.out_octets)))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = [f"  interfaces ({len(poll.interfaces)}):"]
    lines += ["    " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
              .rstrip() for r in rows]
    hidden = len(poll.interfaces) - MAX_LISTED_INTERFACES
    if hidden > 0:
        lines.append(f"    ... and {hidden} more (--json lists every one)")
    return lines


def device_text(d: DeviceResult) -> list[str]:
    """The lines about one device."""
    p = d.poll
    how = f"SNMP v{d.snmp}" if d.snmp else "ping only"
    where = f"{d.host}:{d.port}" if d.snmp else d.host
    lines = [f"device {d.device} (site {d.site}) at {where}, {how}"]
    if p.reachable:
        rtt = f" in {p.rtt_ms:g} ms" if p.rtt_ms is not None else ""
        lines.append(f"  OK: answered{rtt}")
    else:
        lines.append(f"  FAILED ({p.cause}): {p.error}")
        if d.snmp is not None:  # (a ping-only device: its ICMP lines say why)
            assert p.cause is not None  # the wire: a failed poll has its cause
            lines += _causes(poll_causes(p.cause, version=d.snmp or "2c", host=d.host,
                                         port=d.port, ping=p.ping, error=p.error or ""),
                             "  ")
    if d.sys_name is not None or d.sys_descr is not None:
        lines.append(f"  sysName:  {d.sys_name or '-'}")
        lines.append(f"  sysDescr: {d.sys_descr or '-'}")
    elif d.system_error is not None:
        lines.append(f"  sysName/sysDescr not readable ({d.system_error}); the agent does not "
                     "need them")
    if p.uptime_cs is not None:
        lines.append(f"  uptime:   {duration(p.uptime_cs)}")
    if d.pinged:
        if d.ping_error is not None or p.ping is None:
            lines.append(f"  ICMP echo: FAILED: {d.ping_error or 'not sendable'}")
            lines += _causes(ping_causes(None, d.ping_error), "  ")
        elif p.ping.received == 0:
            lines.append(f"  ICMP echo: FAILED: no reply ({p.ping.sent} sent)")
            lines += _causes(ping_causes(p.ping, None), "  ")
        else:
            rtt = f", {p.ping.rtt_ms:g} ms" if p.ping.rtt_ms is not None else ""
            lines.append(f"  ICMP echo: {p.ping.received}/{p.ping.sent} replies{rtt}")
    for w in d.warnings:
        lines.append(f"  warning: {w}")
    if p.reachable and d.snmp is not None:
        lines += _interfaces(p)
    if p.power is not None:
        lines.append(f"  power: {_power(p.power)}")
    for r in p.profiles or []:
        if r.error is not None:
            lines.append(f"  profile {r.profile}: FAILED ({r.cause}): {r.error}")
            if r.cause is not None:
                lines += _causes(poll_causes(r.cause, version=d.snmp or "2c", host=d.host,
                                             port=d.port, error=r.error), "    ")
            continue
        lines.append(f"  profile {r.profile}: {len(r.values)} value(s)")
        lines += [f"    {_value(v)}" for v in r.values[:MAX_LISTED_VALUES]]
        if len(r.values) > MAX_LISTED_VALUES:
            lines.append(f"    ... and {len(r.values) - MAX_LISTED_VALUES} more")
    return lines


def broker_text(b: BrokerResult) -> list[str]:
    """The lines about the broker and the test message."""
    lines = [f"broker {b.host}:{b.port} ({'TLS' if b.tls else 'no TLS'}), user {b.user}, "
             f"MQTT {b.protocol}"]
    if b.failure is not None:
        lines.append(f"  FAILED: no connection ({b.failure}): {b.error}")
    elif b.connack is not None:
        verdict = "accepted" if b.connack == 0 else "REFUSED"
        lines.append(f"  CONNACK: {reason_name(b.connack)}: connection {verdict}")
    if b.connack == 0:
        if b.puback is None:
            lines.append(f"  test message on {b.topic}: FAILED: {b.error}")
        else:
            verdict = ("accepted" if b.puback < 0x80 else "REFUSED") + (
                " (as expected: no collector subscribes to the test topic)"
                if b.puback == NO_MATCHING_SUBSCRIBERS else "")
            lines.append(f"  test message on {b.topic}: PUBACK {reason_name(b.puback)}: "
                         f"{verdict}")
    lines += [f"  note: {n}" for n in b.notes]
    causes = b.causes()
    if causes:
        lines += _causes(causes, "  ")
    return lines


def text(devices: list[DeviceResult], broker: BrokerResult | None) -> str:
    """The whole report, ending with a one-line verdict."""
    lines: list[str] = []
    for d in devices:
        lines += [*device_text(d), ""]
    if broker is not None:
        lines += [*broker_text(b := broker), ""]
    failed = [d.device for d in devices if not d.ok]
    verdict = (f"{len(failed)} of {len(devices)} device(s) FAILED ({', '.join(failed)})"
               if failed else f"all {len(devices)} device(s) OK")
    if broker is not None:
        verdict += "; broker OK" if b.ok else "; broker FAILED"
    lines.append(f"result: {verdict}")
    return "\n".join(lines) + "\n"


def as_json(devices: list[DeviceResult], broker: BrokerResult | None) -> dict[str, Any]:
    """The same as a JSON document (the poll as the wire has it)."""
    out: dict[str, Any] = {"ok": exit_code(devices, broker) == 0, "devices": []}
    for d in devices:
        p = d.poll
        causes = () if p.reachable or p.cause is None else poll_causes(
            p.cause, version=d.snmp or "2c", host=d.host, port=d.port, ping=p.ping,
            error=p.error or "")
        out["devices"].append({
            "device": d.device, "site": d.site, "host": d.host, "port": d.port,
            "snmp": d.snmp, "ok": d.ok, "sys_name": d.sys_name, "sys_descr": d.sys_descr,
            "system_error": d.system_error, "ping_error": d.ping_error,
            "warnings": list(d.warnings), "likely_causes": list(causes),
            "poll": p.model_dump(mode="json", exclude_none=True)})
    if broker is not None:
        b = broker
        out["broker"] = {"host": b.host, "port": b.port, "tls": b.tls, "user": b.user,
                         "protocol": b.protocol, "topic": b.topic, "ok": b.ok,
                         "failure": b.failure, "error": b.error, "connack": b.connack,
                         "puback": b.puback, "notes": list(b.notes),
                         "likely_causes": list(b.causes())}
    return out
