"""The decision table of collector/witness.py: SNMP cause x ICMP witness -> device state."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

import pytest

from collector.availability import Observation, Unobserved
from collector.facts import FactMapper
from collector.witness import DECISIONS, PING_ONLY, Decision, decide
from tests.factories import Element, inv_device, inv_site, inventory_toml
from xanet import wire
from xanet.inventory import InventoryError, parse_inventory

TS = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
ANSWERED = wire.PingResult(sent=3, received=1, rtt_ms=4.0)
SILENT = wire.PingResult(sent=3, received=0)


def poll(reachable: bool, cause: wire.PollCause | None = None,
         ping: wire.PingResult | None = None) -> wire.DevicePoll:
    return wire.DevicePoll(device="rtr-1", ts=TS, reachable=reachable, cause=cause, ping=ping)


@pytest.mark.parametrize(("reachable", "cause", "ping", "state", "reason"), [
    # reachable: up, whatever the echo says
    (True, None, None, "up", None),
    (True, None, ANSWERED, "up", None),
    (True, None, SILENT, "up", None),  # ICMP filtered, SNMP answers
    # no SNMP answer: the echo decides between a monitoring fault and a real outage
    (False, "timeout", ANSWERED, "unknown", "monitoring_error:snmp_silent"),
    (False, "timeout", SILENT, "down", None),
    (False, "timeout", None, "down", None),  # no second witness (ICMP off, older agent)
    (False, None, None, "down", None),  # an agent from before causes: a timeout
    (False, None, ANSWERED, "unknown", "monitoring_error:snmp_silent"),
    # every other cause: the device answered something, or was never asked
    (False, "auth", ANSWERED, "unknown", "monitoring_error:auth"),
    (False, "auth", SILENT, "unknown", "monitoring_error:auth"),
    (False, "auth", None, "unknown", "monitoring_error:auth"),
    (False, "access", None, "unknown", "monitoring_error:access"),
    (False, "resolve", None, "unknown", "monitoring_error:resolve"),
    (False, "protocol", SILENT, "unknown", "monitoring_error:protocol"),
    (False, "config", None, "unknown", "monitoring_error:config"),
    (False, "limit", ANSWERED, "unknown", "monitoring_error:limit"),
])
def test_snmp_device_decision(reachable: bool, cause: wire.PollCause | None,
                              ping: wire.PingResult | None, state: str,
                              reason: str | None) -> None:
    d = decide(poll(reachable, cause, ping))
    assert (d.state, d.reason) == (state, reason)


@pytest.mark.parametrize(("reachable", "cause", "ping", "state", "reason"), [
    (True, None, ANSWERED, "up", None),
    (True, None, None, "up", None),  # reachable is the ICMP answer for a ping-only device
    (False, "timeout", SILENT, "down", None),
    (False, "timeout", None, "down", None),
    (False, None, SILENT, "down", None),
    (False, "timeout", ANSWERED, "up", None),  # the echo is the witness
    (False, "resolve", None, "unknown", "monitoring_error:resolve"),
    (False, "config", None, "unknown", "monitoring_error:config"),
])
def test_ping_only_device_decision(reachable: bool, cause: wire.PollCause | None,
                                   ping: wire.PingResult | None, state: str,
                                   reason: str | None) -> None:
    d = decide(poll(reachable, cause, ping), ping_only=True)
    assert (d.state, d.reason) == (state, reason)


def test_tables_are_complete_and_only_silence_is_down() -> None:
    causes: list[wire.PollCause | None] = [None, *wire.POLL_CAUSES]
    assert set(DECISIONS) == {(c, p) for c in causes for p in ("answered", "silent", "absent")}
    assert set(PING_ONLY) == set(causes)
    for (cause, ping), d in DECISIONS.items():
        assert (d.state == "down") == (cause in (None, "timeout") and ping != "answered")
        assert (d.state == "unknown") == (d.cause is not None)
    assert all(d.state != "up" for d in DECISIONS.values())
    assert Decision("unknown", "auth").reason == "monitoring_error:auth"


# --------------------------------------------- from polls to element facts (the mapper)


def hub_a(school: Element) -> str:
    """hub-a's router and its ping-only school CPE with the element ``school``."""
    return inventory_toml(inv_site("hub-a", agent="agt-a", devices=[
        inv_device("rtr-1", "fibre", {"service": "fibre", "interface": "ge-0/0/0"}),
        inv_device("cpe-school", school, monitor="ping")]))


INVENTORY = hub_a("broadband")


def mapped(*polls: wire.DevicePoll) -> list[object]:
    mapper = FactMapper(parse_inventory(tomllib.loads(INVENTORY)))
    facts, verdicts = mapper.map_telemetry(
        wire.Telemetry(agent="agt-a", site="hub-a", seq=1, polls=list(polls)))
    assert len(verdicts) == len(polls)
    return sorted(facts, key=repr)


def test_monitoring_fault_makes_every_element_of_the_device_unknown_with_its_reason() -> None:
    p = wire.DevicePoll(device="rtr-1", ts=TS, reachable=False, cause="auth", ping=ANSWERED)
    t = TS.timestamp()
    assert mapped(p) == [Unobserved("hub-a/rtr-1", t, "monitoring_error:auth"),
                         Unobserved("hub-a/rtr-1/ge-0/0/0", t, "monitoring_error:auth")]


def test_both_witnesses_silent_makes_every_element_down() -> None:
    p = wire.DevicePoll(device="rtr-1", ts=TS, reachable=False, cause="timeout", ping=SILENT)
    t = TS.timestamp()
    assert mapped(p) == [Observation("hub-a/rtr-1", t, "down"),
                         Observation("hub-a/rtr-1/ge-0/0/0", t, "down")]


def test_ping_only_device_state_comes_from_the_echo() -> None:
    t = TS.timestamp()
    answered = wire.DevicePoll(device="cpe-school", ts=TS, reachable=True, ping=ANSWERED)
    silent = wire.DevicePoll(device="cpe-school", ts=TS, reachable=False, cause="timeout",
                             ping=SILENT)
    assert mapped(answered) == [Observation("hub-a/cpe-school", t, "up")]
    assert mapped(silent) == [Observation("hub-a/cpe-school", t, "down")]


def test_ping_only_device_with_an_interface_element_is_refused() -> None:
    bad = hub_a({"service": "broadband", "interface": "eth0"})
    with pytest.raises(InventoryError, match=r"sites\[0\]\.devices\[1\]\.elements\[0\]"
                                             r"\.interface: device hub-a/cpe-school is "
                                             r"ping-only"):
        parse_inventory(tomllib.loads(bad))


def test_a_split_poll_states_each_interface_once_and_counts_none_missing() -> None:
    """A poll too large for one message travels as parts (agent/packing.py); the part
    without ge-0/0/0 is no report of a missing interface (issue 14, row 3)."""
    from agent import packing

    ifaces = [wire.InterfacePoll(index=i, name=f"xe-0/0/{i}" + "x" * 200, oper=1, hc=True)
              for i in range(1, 40)]
    ifaces.append(wire.InterfacePoll(index=99, name="ge-0/0/0", oper=1, hc=True))
    whole = wire.DevicePoll(device="rtr-1", ts=TS, reachable=True, interfaces=ifaces)
    parts = [p for p, _ in packing.split_poll(whole, 2_000)]
    assert len(parts) > 2 and all(p.parts == len(parts) for p in parts)
    assert [i for p in parts for i in p.interfaces] == ifaces
    mapper = FactMapper(parse_inventory(tomllib.loads(INVENTORY)))
    t = TS.timestamp()
    facts: list[object] = []
    for seq, part in enumerate(parts, 1):
        facts += mapper.map_telemetry(
            wire.Telemetry(agent="agt-a", site="hub-a", seq=seq, polls=[part]))[0]
    assert Observation("hub-a/rtr-1/ge-0/0/0", t, "up") in facts
    assert facts.count(Observation("hub-a/rtr-1/ge-0/0/0", t, "up")) == 1
    assert mapper.counts.interface_missing == 0
    # the same interface missing from a whole poll is still counted
    mapper.map_telemetry(wire.Telemetry(agent="agt-a", site="hub-a", seq=99, polls=[
        whole.model_copy(update={"interfaces": ifaces[:-1]})]))
    assert mapper.counts.interface_missing == 1
