from __future__ import annotations

from datetime import UTC, datetime

from collector import lineproto
from tests.factories import interface, poll, telemetry
from xanet import topics, wire

WHERE = topics.parse("xanet/v1/ha-giang/00688/site-a/telemetry")
TS = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def test_line_escaping() -> None:
    ln = lineproto.line("interface", {"ifname": "Gi 0/1,x=y", "empty": ""},
                        {"note": 'say "hi"\\', "n": 5, "f": 1.5, "b": True}, 1000)
    assert ln == ('interface,ifname=Gi\\ 0/1\\,x\\=y '
                  'note="say \\"hi\\"\\\\",n=5i,f=1.5,b=true 1000')


def test_line_without_fields_is_none() -> None:
    assert lineproto.line("m", {"a": "b"}, {"x": None}, 1) is None


def test_int_out_of_range_left_out() -> None:
    assert lineproto.line("m", {}, {"big": 2**63, "ok": 1}, 1) == "m ok=1i 1"


def test_telemetry_lines() -> None:
    msg = telemetry(seq=7, polls=[poll("rtr1", ts=TS, n_if=0,
                                       interfaces=[interface(3, in_bps=800.0, name="ge 0/3")])])
    lines = lineproto.telemetry_lines(WHERE, msg)
    ms = int(TS.timestamp() * 1000)
    assert lines[0] == (f"device,agent=agent-a,commune=00688,device=rtr1,province=ha-giang,"
                        f"site=site-a up=1i,rtt_ms=3.5,uptime_s=1234.56,seq=7i {ms}")
    assert lines[1].startswith("interface,commune=00688,device=rtr1,ifindex=3,ifname=ge\\ 0/3,")
    assert "in_octets=3000i" in lines[1] and "in_bps=800.0" in lines[1]
    assert "out_bps" not in lines[1]


def test_unreachable_device_line() -> None:
    msg = telemetry(polls=[wire.DevicePoll(device="d", ts=TS, reachable=False, error="timeout")])
    (ln,) = lineproto.telemetry_lines(WHERE, msg)
    assert ' up=0i,seq=0i,error="timeout" ' in ln


def test_status_line_uses_receive_time_without_ts() -> None:
    st = wire.Status(agent="a", site="site-a", state="offline", reason="lost")
    ln = lineproto.status_line(WHERE, st, TS)
    assert ln.endswith(f' online=0i,reason="lost" {int(TS.timestamp() * 1000)}')
