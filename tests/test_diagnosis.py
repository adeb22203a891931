"""The technician tool's pure parts: the likely causes of each failure
(agent/diagnosis.py), the report's verdict and figures (agent/fieldreport.py), and the
agent's first-answer log line (agent/telemetry.py). The tool itself runs against real
devices and a real broker in tests/test_fieldtest.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.diagnosis import (
    REASON_NAMES,
    connack_causes,
    connect_causes,
    ping_causes,
    poll_causes,
    puback_causes,
    reason_name,
)
from agent.fieldreport import (
    BrokerResult,
    DeviceResult,
    as_json,
    duration,
    exit_code,
    speed,
    text,
)
from agent.telemetry import Health
from xanet import wire

TS = datetime(2026, 11, 29, 12, tzinfo=UTC)
PINGS = st.one_of(st.none(), st.integers(1, 5).flatmap(
    lambda sent: st.builds(wire.PingResult, sent=st.just(sent),
                           received=st.integers(0, sent))))


@given(st.sampled_from(wire.POLL_CAUSES), st.sampled_from(["2c", "3"]),
       st.integers(1, 65535), PINGS, st.text(max_size=40))
def test_every_poll_failure_has_likely_causes(cause: wire.PollCause, version: str,
                                              port: int, ping: wire.PingResult | None,
                                              error: str) -> None:
    causes = poll_causes(cause, version=version, host="10.0.0.1", port=port, ping=ping,
                         error=error)
    assert causes and all(c.strip() for c in causes)
    assert len(set(causes)) == len(causes)


@pytest.mark.parametrize(("version", "ping", "first", "also"), [
    ("2c", None, "wrong address or port in the config", "wrong community"),
    ("3", None, "wrong address or port in the config", "wrong privacy key"),
    ("2c", wire.PingResult(sent=2, received=2), "answers ICMP echo but not SNMP",
     "wrong community"),
    ("2c", wire.PingResult(sent=2, received=0), "nothing answers at 10.0.0.1", "firewall"),
])
def test_a_timeout_reads_the_icmp_witness(version: str, ping: wire.PingResult | None,
                                          first: str, also: str) -> None:
    causes = poll_causes("timeout", version=version, host="10.0.0.1", port=161, ping=ping)
    assert first in causes[0]
    assert any(also in c for c in causes)


@pytest.mark.parametrize(("report", "first"), [
    ("usmStatsWrongDigests (wrong authentication key or protocol)", "wrong authentication key"),
    ("usmStatsUnknownUserNames", "unknown user name"),
    ("usmStatsUnsupportedSecLevels", "security level"),
    ("usmStatsNotInTimeWindows", "time window"),
    ("something else", "wrong authentication key"),
])
def test_an_auth_failure_puts_the_reported_cause_first(report: str, first: str) -> None:
    causes = poll_causes("auth", version="3", host="h", port=161, error=report)
    assert first in causes[0]
    assert len(causes) == 4  # the others still listed


def test_broker_answers_in_words() -> None:
    assert reason_name(135) == "135 (Not authorized)"
    assert reason_name(1) == "1 (unknown reason code)"
    assert REASON_NAMES[16] == "No matching subscribers"
    assert "wrong password for MQTT user hg-a1" in connack_causes(135, user="hg-a1")[0]
    assert "wrong password" in connack_causes(134, user="u")[0]
    assert "ACL does not let user hg-a2 write t" in puback_causes(135, topic="t",
                                                                  user="hg-a2")[0]
    assert "ca_file" in connect_causes("tls", host="b", port=8883, tls=True)[0]
    assert "CAP_NET_RAW" in ping_causes(None, "no permission")[0]
    assert "icmp = false" in ping_causes(wire.PingResult(sent=2, received=0), None)[0]


def device(reachable: bool = True, **kw: object) -> DeviceResult:
    poll = (wire.DevicePoll(device="r", ts=TS, reachable=True, uptime_cs=360_000 * 24 + 6100)
            if reachable else
            wire.DevicePoll(device="r", ts=TS, reachable=False, cause="timeout", error="t"))
    return DeviceResult(device="r", site="s", host="h", port=161, snmp="2c", poll=poll,
                        **kw)  # type: ignore[arg-type]


def broker(**kw: object) -> BrokerResult:
    return BrokerResult(host="b", port=8883, tls=True, user="u", protocol="5", topic="t",
                        **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("devices", "answer", "code"), [
    ([device()], broker(connack=0, puback=0), 0),
    ([device()], broker(connack=0, puback=16), 0),
    ([device()], None, 0),
    ([device(), device(False)], broker(connack=0, puback=0), 1),
    ([device()], broker(connack=135), 1),
    ([device()], broker(connack=0, puback=135), 1),
    ([device()], broker(connack=0, error="no PUBACK"), 1),
    ([device()], broker(failure="refused", error="refused"), 1),
    ([device(pinged=True)], None, 1),  # the ICMP witness brought nothing back
    ([device(pinged=True, ping_error="no permission")], None, 1),
])
def test_exit_code(devices: list[DeviceResult], answer: BrokerResult | None,
                   code: int) -> None:
    assert exit_code(devices, answer) == code
    assert text(devices, answer).rstrip().splitlines()[-1].startswith("result: ")


def test_figures_read_for_people() -> None:
    assert duration(360_000 * 24 + 6100) == "1d 00:01:01"
    assert (speed(10**9), speed(100 * 10**6), speed(1_544_000), speed(None)) == (
        "1 Gbit/s", "100 Mbit/s", "1.544 Mbit/s", "-")
    out = text([device()], broker(connack=0, error="no PUBACK for t within 30s"))
    assert "test message on t: FAILED: no PUBACK" in out
    assert "did not answer the test message in time" in out


def test_first_answer_logged_once_and_with_a_recovery() -> None:
    h = Health()
    up = wire.DevicePoll(device="d", ts=TS, reachable=True, uptime_cs=8_640_000, rtt_ms=3.0,
                         interfaces=[wire.InterfacePoll(index=1, name="e0", oper=1, hc=True),
                                     wire.InterfacePoll(index=2, name="e1", oper=2, hc=True)])
    down = wire.DevicePoll(device="d", ts=TS, reachable=False, cause="timeout", error="t")
    logged = []
    for poll in (down, up, up, down, up):
        change = h.record("s/d", poll)
        logged.append(h.record_first_answer("s/d", poll, change) or change)
    assert logged == [
        "unreachable (no ping): t",
        "first poll answered: 2 interface(s), 1 up, uptime 1.0 d, 3 ms "
        "(polled again (was failing: timeout))",
        None, "unreachable (no ping): t", "polled again (was failing: timeout)"]


def test_the_json_document_carries_the_poll_and_the_likely_causes() -> None:
    doc = as_json([device(), device(False)], broker(connack=0, puback=135))
    assert json.loads(json.dumps(doc)) == doc  # plain JSON
    assert doc["ok"] is False
    good, bad = doc["devices"]
    assert good["ok"] and good["likely_causes"] == [] and good["poll"]["reachable"]
    assert not bad["ok"] and bad["poll"]["cause"] == "timeout"
    assert "wrong address or port" in bad["likely_causes"][0]
    assert doc["broker"]["puback"] == 135 and "ACL" in doc["broker"]["likely_causes"][0]
