"""An interface's speed from ifSpeed and ifHighSpeed (RFC 2863), on tables and on a
recording whose ifHighSpeed is in bit/s: never a 10**15 bit/s port, the contradiction
counted (``speed_contradiction``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.snmp import SPEED_CONTRADICTION, SnmpPoller, SnmpTarget, SnmpV2c
from agent.snmp.table import MAX_U32, pick_speed
from lab import SimInterface, SnmpSim, write_numeric_recording

G = 1_000_000_000


@pytest.mark.parametrize(
    ("speed", "high_speed", "want_bps", "contradiction"),
    [
        # consistent: ifSpeed exact below 2**32-1, ifHighSpeed its rounding
        (G, 1000, G, None),
        (100_000_000, 100, 100_000_000, None),
        (1_544_000, 2, 1_544_000, None),  # T1: ifHighSpeed rounds 1.544 up to 2
        (64_000, 0, 64_000, None),  # under 0.5 Mbit/s ifHighSpeed is 0
        (64_000, None, 64_000, None),  # no ifXTable
        (MAX_U32, 10_000, 10 * G, None),  # capped ifSpeed: ifHighSpeed decides
        (MAX_U32, 100_000, 100 * G, None),
        (MAX_U32, None, MAX_U32, None),
        (MAX_U32, 0, MAX_U32, None),
        (None, 40_000, 40 * G, None),  # ifSpeed absent or 0: ifHighSpeed
        (0, 1000, G, None),
        (None, None, None, None),
        (0, 0, None, None),
        # ifHighSpeed in bit/s: never 10**15 bit/s
        (G, G, G, "high_speed_in_bps"),
        (100_000_000, 100_000_000, 100_000_000, "high_speed_in_bps"),
        (10_000_000, 10_000_000, 10_000_000, "high_speed_in_bps"),
        (None, G, None, "implausible"),
        (MAX_U32, MAX_U32, None, "implausible"),
        # ifSpeed wrapped modulo 2**32 instead of capped (10G: 1410065408): ifHighSpeed
        (10 * G % 2**32, 10_000, 10 * G, "speed_wrapped"),
        # plain disagreement: ifSpeed is exact, so it is kept
        (G, 100, G, "disagree"),
        (100_000_000, 1000, 100_000_000, "disagree"),
    ],
)
def test_speed_from_ifspeed_and_ifhighspeed(
    speed: int | None, high_speed: int | None, want_bps: int | None, contradiction: str | None
) -> None:
    assert pick_speed(speed, high_speed) == (want_bps, contradiction)


@pytest.mark.parametrize("speed", [1, 9_999, 64_000, 1_544_000, G, 2 * G, MAX_U32 - 1])
def test_an_honest_device_never_contradicts(speed: int) -> None:
    """ifHighSpeed = ifSpeed rounded to Mbit/s, as RFC 2863 defines it."""
    high = (speed + 500_000) // 1_000_000
    assert pick_speed(speed, high) == (speed, None)


@pytest.fixture
async def poller() -> AsyncIterator[SnmpPoller]:
    p = SnmpPoller()
    yield p
    p.close()


@pytest.mark.integration
async def test_a_recording_with_ifhighspeed_in_bps_keeps_ifspeed(
    tmp_path: Path, make_snmpsim: Callable[..., SnmpSim], poller: SnmpPoller
) -> None:
    """ifHighSpeed 1000000000 with ifSpeed 1000000000 (port 1), an honest 10G port (2)
    and an honest gigabit port (3) on one device, polled over SNMP through snmpsim."""
    sim = make_snmpsim({"liar": write_numeric_recording(tmp_path / "liar.snmprec", interfaces=[
        SimInterface(1, "ge-0/0/0", speed_bps=G, high_speed=G),
        SimInterface(2, "xe-0/0/1", speed_bps=10 * G),
        SimInterface(3, "ge-0/0/2", speed_bps=G),
    ])})
    poll = await poller.poll(SnmpTarget(device="liar", host=sim.host, port=sim.port,
                                        credentials=SnmpV2c("liar")))
    got = {i.index: i.speed_bps for i in poll.interfaces}
    assert got == {1: G, 2: 10 * G, 3: G}
    assert dict(poll.contained) == {SPEED_CONTRADICTION: 1}
    (warning,) = poll.warnings
    assert "ifHighSpeed: contradicts ifSpeed (high_speed_in_bps" in warning
    assert "1.3.6.1.2.1.31.1.1.1.15.1" in warning and "1000000000 bit/s used" in warning
