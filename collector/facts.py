"""From telemetry to availability facts, and from engine output to stored points. Pure.

What a poll says about an inventory element (``site/device`` or
``site/device/ifname``). The device's state comes from the poll's witnesses, SNMP
and ICMP echo (:func:`collector.witness.decide`: only "no witness reaches it" is
down; a monitoring fault is unknown with its reason):

=========================================  ==============  ==========================
poll                                       device element  interface element
=========================================  ==============  ==========================
device down (no witness answers)           down            down
monitoring fault (auth, snmp_silent, ...)  unknown+reason  unknown+reason
reachable, ifOperStatus up (1)             up              up
reachable, down/dormant/notPresent/        up              down
lowerLayerDown (2, 5, 6, 7)
reachable, testing/unknown (3, 4), absent  up              no fact (unknown)
reachable, interface not reported          up              no fact, ``interface_missing``
                                                           (not counted in a part of a split poll)
reachable, its name on two rows or more    up              unknown, ``interface_ambiguous``
(no ifXTable, ifDescr twice)                               (counted; the element's ``ifindex``
                                                           resolves it)
=========================================  ==============  ==========================

An interface element is found by ``ifindex`` when the inventory gives one, else by name.
A name is judged within one message's poll (a part of a split poll): a repeat across parts
is not seen.

An element the device does not report is never called down: a wrong ifName in
the inventory shows up as lost coverage and a counter, not as an outage.
(The points are built by :mod:`collector.schema`.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from collector.availability import (
    AgentOffline,
    Emission,
    Fact,
    Observation,
    Observed,
    State,
    Unobserved,
)
from collector.schema import availability_line, element_state_line, service_state_line
from collector.witness import Decision, decide
from xanet import wire
from xanet.inventory import Inventory, element_key

OPER_UP = 1
OPER_DOWN = {2, 5, 6, 7}  # down, dormant, notPresent, lowerLayerDown
#: Why an interface element whose name repeats in a poll is unknown.
INTERFACE_AMBIGUOUS = "interface_ambiguous"
STATE_CODE: dict[State, int] = {"up": 1, "down": 0, "unknown": -1, "maintenance": -2}


@dataclass
class MappingCounts:
    """Counters of what could not be mapped (for logs and collector_stats)."""

    unmapped_polls: int = 0
    interface_missing: int = 0
    missing_elements: set[str] = field(default_factory=set)
    #: interface facts not taken because the name named several rows of the poll
    interface_ambiguous: int = 0
    #: elements found ambiguous and not yet logged (the collector takes them once)
    ambiguous_new: list[tuple[str, str]] = field(default_factory=list)
    ambiguous_elements: set[str] = field(default_factory=set)
    #: polls of devices the inventory does not know, per (site, device)
    unmapped_devices: Counter[tuple[str, str]] = field(default_factory=Counter)


class DeviceVerdict(NamedTuple):
    """What one poll said about one inventory device (input of the monitoring alerts)."""

    site: str
    device: str
    ts: float
    decision: Decision


class FactMapper:
    """Turns accepted messages into engine facts, using the inventory."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.counts = MappingCounts()

    def telemetry_facts(self, msg: wire.Telemetry) -> list[Fact]:
        return self.map_telemetry(msg)[0]

    def map_telemetry(self, msg: wire.Telemetry) -> tuple[list[Fact], list[DeviceVerdict]]:
        """Engine facts of every element, and one verdict per inventory device polled.
        Polls of devices the inventory does not know are counted per device."""
        facts: list[Fact] = []
        verdicts: list[DeviceVerdict] = []
        for poll in msg.polls:
            elements = self.inventory.elements_of_device(msg.site, poll.device)
            if not elements:
                if self.inventory.has_device(msg.site, poll.device):
                    continue  # known, polled for traffic only: no element, no state
                self.counts.unmapped_polls += 1
                self.counts.unmapped_devices[(msg.site, poll.device)] += 1
                continue
            ts = poll.ts.timestamp()
            decision = decide(poll, ping_only=self.inventory.is_ping_only(msg.site, poll.device))
            verdicts.append(DeviceVerdict(msg.site, poll.device, ts, decision))
            rows = _Rows(poll.interfaces)
            whole = poll.parts is None  # a part of a split poll: the rest is elsewhere
            for el in elements:
                key = element_key(msg.site, poll.device, el.interface)
                if decision.reason is not None:
                    facts.append(Unobserved(key, ts, decision.reason))
                    continue
                if (decision.state != "down" and el.interface is not None
                        and el.ifindex is None and el.interface in rows.repeated):
                    self._ambiguous(key, rows.repeated[el.interface])
                    facts.append(Unobserved(key, ts, INTERFACE_AMBIGUOUS))
                    continue
                iface = None if el.interface is None else rows.find(el.interface, el.ifindex)
                state = self._state(decision, el.interface, iface, key, whole)
                if state is not None:
                    facts.append(Observation(key, ts, state))
        return facts, verdicts

    def _ambiguous(self, key: str, indices: list[int]) -> None:
        self.counts.interface_ambiguous += 1
        if key not in self.counts.ambiguous_elements:
            self.counts.ambiguous_elements.add(key)
            self.counts.ambiguous_new.append(
                (key, ", ".join(str(index) for index in indices)))

    def take_new_ambiguous(self) -> list[tuple[str, str]]:
        """Elements found ambiguous since the last call, with the ifIndex rows their name
        names (for one log line each)."""
        new, self.counts.ambiguous_new = self.counts.ambiguous_new, []
        return new

    def _state(
        self,
        decision: Decision,
        interface: str | None,
        iface: wire.InterfacePoll | None,
        key: str,
        whole: bool = True,
    ) -> Observed | None:
        if decision.state == "down":
            return "down"
        if interface is None:
            return "up"
        if iface is None:
            if whole:  # in a part of a split poll it may well be in another part
                self.counts.interface_missing += 1
                self.counts.missing_elements.add(key)
            return None
        if iface.oper == OPER_UP:
            return "up"
        if iface.oper in OPER_DOWN:
            return "down"
        return None

    @staticmethod
    def status_facts(msg: wire.Status, received: datetime) -> list[Fact]:
        if msg.state != "offline":
            return []
        return [AgentOffline(msg.agent, (msg.ts or received).timestamp())]


class _Rows:
    """A poll's interface rows by name and by ifIndex; the names on several rows."""

    __slots__ = ("_by_index", "_by_name", "_interfaces", "repeated")

    def __init__(self, interfaces: list[wire.InterfacePoll]) -> None:
        self._by_name: dict[str, wire.InterfacePoll] = {}
        self._by_index: dict[int, wire.InterfacePoll] | None = None
        #: name -> the ifIndex of every row carrying it, for names on two rows or more
        self.repeated: dict[str, list[int]] = {}
        by_name = self._by_name
        for i in interfaces:
            first = by_name.setdefault(i.name, i)
            if first is not i:
                self.repeated.setdefault(i.name, [first.index]).append(i.index)
        self._interfaces = interfaces

    def find(self, name: str, ifindex: int | None) -> wire.InterfacePoll | None:
        if ifindex is None:
            return self._by_name.get(name)
        if self._by_index is None:
            self._by_index = {i.index: i for i in self._interfaces}
        return self._by_index.get(ifindex)


def _ms(ts: float) -> int:
    return round(ts * 1000)


def emission_lines(emission: Emission, inventory: Inventory) -> list[str]:
    """The ``element_state``, ``service_state`` and ``availability`` lines of an engine
    emission (collector/schema.py)."""
    province = inventory.province.code
    out: list[str] = []
    for p in emission.elements:
        site, device, *rest = p.element.split("/", 2)
        commune = inventory.site(site).commune if inventory.has_site(site) else ""
        ln = element_state_line(province, commune, site, device, rest[0] if rest else "",
                                p.element, p.state, STATE_CODE[p.state], p.reason, _ms(p.ts))
        if ln:
            out.append(ln)
    for s in emission.services:
        ln = service_state_line(province, s.key.commune, s.key.service, s.state,
                                STATE_CODE[s.state], _ms(s.ts))
        if ln:
            out.append(ln)
    for r in emission.rollups:
        known = r.up_s + r.down_s
        counted = r.bucket_s - r.maintenance_s  # coverage: of the time outside maintenance
        ln = availability_line(
            province, r.key.commune, r.key.service,
            {
                "up_s": float(r.up_s),
                "down_s": float(r.down_s),
                "unknown_s": float(r.unknown_s),
                "maintenance_s": float(r.maintenance_s),
                "bucket_s": float(r.bucket_s),
                "availability_pct": r.up_s * 100.0 / known if known > 0 else None,
                "coverage_pct": known * 100.0 / counted if counted > 0 else None,
            },
            _ms(r.bucket_start),
        )
        if ln:
            out.append(ln)
    return out
