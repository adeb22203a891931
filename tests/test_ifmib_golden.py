"""The interface poll through the ``if-mib`` profile: the same wire output and rates as the
hand-written path it replaced (issue 17), byte for byte, on real recordings.

``tests/ifmib_golden.json`` was written by this test (``XANET_WRITE_GOLDEN=1``) at main
29c706b, *before* the interface engine took its columns from the ``if-mib`` profile: for
every recording below, the wire JSON of two polls of one device (``packing.poll_json``,
exactly what travels inside a telemetry message): the poll snmpsim answered, then the
same poll 60 s later with every counter advanced by a fixed amount (Counter32 ones wrap
where they are near 2^32), so the second carries rates; and the poll's warnings and
contained faults (what the agent logs and counts). Any change of what the engine
reads, checks, chooses (64/32-bit, speed) or computes shows up as a diff here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lab
from agent.packing import poll_json
from agent.rates import RatePolicy, RateTracker
from agent.snmp import RawPoll, SnmpPoller, SnmpTarget, SnmpV2c
from agent.telemetry import to_device_poll
from lab import SnmpSim

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).with_name("ifmib_golden.json")
DATA = lab.SNMPSIM_DATA_DIR
#: Real recordings with interfaces: ifXTable and 64-bit counters (vyatta, the switches),
#: ifTable only with Counter32 (ubiquiti), a UPS's one port, a firewall, odd speeds.
RECORDINGS = {
    "router/vyatta": lab.RECORDING_IFX,
    "wifi/ubiquiti-m5": lab.RECORDING_IFTABLE_ONLY,
    "switch/cisco-c3560": DATA / "network/switch/cisco-c3560.snmprec.bz2",
    "router/huawei-s5720": DATA / "network/router/huawei-s5720.snmprec.bz2",
    "switch/dlink-des3200": DATA / "network/switch/dlink-des3200.snmprec.bz2",
    "router/cisco-unmarked-0": DATA / "network/router/cisco-unmarked-0.snmprec.bz2",
    "router/brocade-unknown-001": DATA / "network/router/brocade-unknown-001.snmprec.bz2",
    "fw/paloalto-pa-5000": DATA / "network/firewall/paloalto-pa-5000.snmprec.bz2",
    "ups/eastpower": DATA / "UPS/eastpower-istars-swv053.snmprec.bz2",
}
TS = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
INTERVAL_S = 60.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSim]:
    sim = lab.SnmpSim(tmp_path_factory.mktemp("ifmib-golden"), RECORDINGS)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
async def poller() -> AsyncIterator[SnmpPoller]:
    p = SnmpPoller(clock=lambda: 0.0)  # rtt 0: the golden holds no timing
    yield p
    p.close()


def advanced(raw: RawPoll) -> RawPoll:
    """``raw`` 60 s later: uptime +6000 ticks, each counter + a fixed amount per port."""
    def step(value: int | None, hc: bool, k: int) -> int | None:
        if value is None:
            return None
        return (value + 7_000_000 * k) % (2**64 if hc else 2**32)

    interfaces = tuple(
        dataclasses.replace(i, in_octets=step(i.in_octets, i.hc, i.index % 13 + 1),
                            out_octets=step(i.out_octets, i.hc, i.index % 7 + 1))
        for i in raw.interfaces)
    return dataclasses.replace(raw, sys_uptime_cs=raw.sys_uptime_cs + 6000,
                               interfaces=interfaces)


async def wire_polls(poller: SnmpPoller, port: int, community: str) -> list[str]:
    device = community.replace("/", ".")
    target = SnmpTarget(device=device, host="127.0.0.1", port=port,
                        credentials=SnmpV2c(community))
    raw = await poller.poll(target)
    tracker = RateTracker(RatePolicy(poll_interval_s=INTERVAL_S))
    first = to_device_poll(device, TS, raw, tracker, 1000.0)
    second = to_device_poll(device, TS + timedelta(seconds=INTERVAL_S), advanced(raw),
                            tracker, 1000.0 + INTERVAL_S)
    checks = json.dumps({"warnings": raw.warnings, "contained": raw.contained})
    return [poll_json(first).decode(), poll_json(second).decode(), checks]


async def test_wire_output_and_rates_equal_the_hand_written_paths(
    recorded: SnmpSim, poller: SnmpPoller
) -> None:
    got = {community: await wire_polls(poller, recorded.port, community)
           for community in RECORDINGS}
    if os.environ.get("XANET_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(golden)
    for community, polls in got.items():
        assert polls == golden[community], community
    # what the golden covers: both counter widths, rates, and ports without a rate
    texts = [json.loads(p) for polls in golden.values() for p in polls[:2]]
    ports = [i for poll in texts for i in poll["interfaces"]]
    assert len(ports) > 200
    assert {i["hc"] for i in ports} == {True, False}
    assert sum("in_bps" in i for i in ports) > 100
