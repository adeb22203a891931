"""A site catching up after a cut over a real thin link (issue 19): 64 kbit/s both ways, clean
and with 5 % loss; nothing lost or doubled, live polls through during the catch-up.

The link is real: the agent runs inside a network namespace behind a ``tc tbf`` hop
(lab/thinlink.py), its devices are snmpsim inside the same namespace, the broker, the
collector and InfluxDB are in the root namespace on 127.0.0.1 (lab/thinsite.py). The
backlog is a 9-minute cut of a 10-device x 10-interface site (90 polls of ~2 kB, in the
spool before the agent starts) - small, so the suite stays short; the 24-hour cut and the
timing goals are bench/thin_link.py's. Each scenario runs once; its tests read its outcome.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lab
from agent.spool import Spool
from lab.cutbacklog import prefill, site_interfaces
from lab.netns import lab_skip_reason
from lab.thinlink import ThinLink, loss_ruleset, tbf_command
from lab.thinsite import Outcome, Scenario, run
from xanet import wire

needs_netns = pytest.mark.skipif(lab_skip_reason() is not None, reason=lab_skip_reason() or "")

#: The production path: the core announces compact batches. 90 minutes of backlog, so the
#: catch-up lasts several live intervals, with 5 % loss each way (the clean 24-hour case,
#: and JSON for comparison, are bench/thin_link.py's: too slow for the suite).
SCENARIOS = {
    "loss5": Scenario(rate_kbit=64, loss_pct=5, hours=1.5, live_interval_s=10, timeout_s=300,
                      encoding="compact"),
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.Mosquitto]:
    """A broker of this module's own: no other test's collector session shares it."""
    with lab.Mosquitto(tmp_path_factory.mktemp("thin-mqtt")) as b:
        yield b


_outcomes: dict[str, Outcome] = {}


@pytest.fixture(params=[pytest.param(n, marks=[needs_netns, pytest.mark.integration])
                        for n in sorted(SCENARIOS)])
def outcome(request: pytest.FixtureRequest, broker: lab.Mosquitto, influxdb: lab.InfluxDB1,
            tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The scenario's outcome, run once for all the tests that read it."""
    name: str = request.param
    if name not in _outcomes:
        db = f"thin_{name}"
        influxdb.create_database(db)
        _outcomes[name] = run(SCENARIOS[name], tmp_path_factory.mktemp(f"thin-{name}"),
                              broker, influxdb, db, log=print)
    return _outcomes[name]


def test_backlog_caught_up_nothing_lost_or_doubled(outcome: Outcome) -> None:
    print("MEASURE thin link", outcome.row())
    assert outcome.caught_up, outcome.row()
    s = outcome.scenario
    assert outcome.stored_per_device == {f"bts-{i}": s.polls_per_device
                                         for i in range(s.devices)}
    assert outcome.lost == 0
    assert outcome.duplicates == 0 and outcome.seq_gaps == 0, outcome.row()
    # Bytes were counted on the wire: the backlog went as compact batches, an order of
    # magnitude under JSON's ~240 bytes per interface sample (the goal, <= 12, is the
    # bench's: bench/thin_link.py, BENCHMARKS.md).
    assert outcome.up_bytes > 0
    assert 0 < outcome.backlog_bytes_per_interface_sample < 40, outcome.row()
    if s.loss_pct:
        assert outcome.packets_dropped > 0  # the loss really happened


def test_live_polls_arrive_during_catch_up(outcome: Outcome) -> None:
    """Live polls stamped during the catch-up all reach InfluxDB."""
    assert outcome.live_polls > 0, outcome.row()
    assert outcome.seq_gaps == 0


def test_live_polls_within_two_intervals_during_catch_up(outcome: Outcome) -> None:
    """Live first (docs/delivery.md): no backlog batch goes while a live poll waits, and
    at most a second of the budget's backlog bytes is unacknowledged at once."""
    assert outcome.live_within_2_intervals, outcome.row()


@needs_netns
def test_link_is_rate_limited_and_cleaned_up() -> None:
    """The link's commands, and its namespaces gone after close."""
    assert tbf_command("v0", 64) == ["tc", "qdisc", "add", "dev", "v0", "root", "tbf", "rate",
                                     "64kbit", "burst", "1600", "latency", "500ms"]
    assert "numgen random mod 1000 < 50 counter drop" in loss_ruleset("v0", 5)
    with ThinLink(rate_kbit=64) as link:
        names = [ns.name for ns in (link.site, link.wan, link.core)]
        qdisc = link.wan.run(["tc", "qdisc", "show", "dev", link.wan_up_dev]).stdout
        assert "tbf" in qdisc and "64Kbit" in qdisc
    listing = Path("/run/netns")
    assert not any((listing / n).exists() for n in names)


def test_backlog_is_what_the_agent_would_have_stored(tmp_path: Path) -> None:
    """The cut in the spool: every device's polls on the cut's schedule, oldest first, as
    large as live ones, counters that only grow, rates that vary (not a constant step)."""
    start = datetime(2026, 11, 28, tzinfo=UTC)
    path = tmp_path / "spool.sqlite3"
    n = prefill(path, agent="a", province="ha-giang", commune="00688", site="s",
                devices=["d0", "d1"], interfaces=site_interfaces(10), start=start,
                polls_per_device=30, interval_s=60, max_polls=1)
    assert n == 60
    spool = Spool(path, max_messages=1000, max_age_s=40 * 86400, fsync="off")
    try:
        entries = spool.peek(limit=1000)
    finally:
        spool.close()
    assert [e.seq for e in entries] == list(range(60))
    polls = []
    for e in entries:
        msg = wire.decode(e.payload, "telemetry")
        assert isinstance(msg, wire.Telemetry) and msg.seq == e.seq and len(msg.polls) == 1
        assert e.created == msg.polls[0].ts.timestamp()  # stored when polled
        assert 1600 < len(e.payload) < 2600  # a 10-interface poll's JSON, ~2.1 kB
        polls.append(msg.polls[0])
    d0 = [p for p in polls if p.device == "d0"]
    assert [p.ts for p in d0] == [start + timedelta(minutes=k) for k in range(30)]
    first = d0[0].interfaces[0]
    assert first.rate_note == "first_poll" and first.in_bps is None
    octets = [p.interfaces[0].in_octets or 0 for p in d0]
    assert octets == sorted(octets)
    steps = {b - a for a, b in itertools.pairwise(octets)}
    assert len(steps) > 20  # traffic varies
