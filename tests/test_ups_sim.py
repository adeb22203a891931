"""lab/upssim.py: a real UPS recording in three power states on one snmpsim port, switched
by restarting the simulator, read back with a plain GET of the agent's poller (the
snmpsim side of the issue-17 end-to-end mains failure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import SnmpTimeout
from agent.snmp import SnmpPoller, SnmpTarget, SnmpV2c
from agent.snmp.poller import get
from lab import UpsSim, snmprec_values
from lab.upssim import (
    OID_BATTERY_STATUS,
    OID_MINUTES_REMAINING,
    OID_OUTPUT_SOURCE,
    OID_SECONDS_ON_BATTERY,
    RECORDING_UPS,
    UPS_STATES,
)

pytestmark = pytest.mark.integration

ASKED = (OID_OUTPUT_SOURCE, OID_BATTERY_STATUS, OID_SECONDS_ON_BATTERY, OID_MINUTES_REMAINING)


def oid(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_the_variants_change_only_the_power_objects(tmp_path: Path) -> None:
    original = snmprec_values(RECORDING_UPS)
    sim = UpsSim(tmp_path)
    for state, path in sim.variants.items():
        got = snmprec_values(path)
        assert set(got) == set(original)
        changed = {o for o in got if got[o] != original[o]}
        assert changed <= set(UPS_STATES[state])
        assert {o: int(got[o][1]) for o in UPS_STATES[state]} == UPS_STATES[state]


async def test_switching_the_state_on_one_port_then_silence(tmp_path: Path) -> None:
    poller = SnmpPoller()
    with UpsSim(tmp_path) as sim:
        target = SnmpTarget(device="ups", host="127.0.0.1", port=sim.port,
                            credentials=SnmpV2c(sim.community), timeout_s=0.5, retries=0)
        port = sim.port
        seen = {}
        for state in ("mains", "on_battery", "battery_low", "mains"):
            if state != sim.state:
                sim.switch(state)  # type: ignore[arg-type]  # one of the three
            assert sim.port == port
            binds = await get(poller.backend(target), target, tuple(map(oid, ASKED)), "GET ups")
            seen[state] = {".".join(map(str, o)): v for o, _, v in binds}
            for name, value in UPS_STATES[state].items():  # type: ignore[index]
                if name in seen[state]:
                    assert seen[state][name] == value, (state, name)
        assert seen["on_battery"][OID_OUTPUT_SOURCE] == 5
        assert seen["battery_low"][OID_BATTERY_STATUS] == 3
        assert seen["battery_low"][OID_MINUTES_REMAINING] == 4
        sim.stop_answering()
        with pytest.raises(SnmpTimeout):
            await get(poller.backend(target), target, (oid(OID_OUTPUT_SOURCE),), "GET ups")
        sim.answer()
        [(_, _, source)] = await get(poller.backend(target), target,
                                     (oid(OID_OUTPUT_SOURCE),), "GET ups")
        assert source == 3
    poller.close()
