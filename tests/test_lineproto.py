from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from collector import lineproto, schema
from tests.factories import interface, poll, telemetry
from tests.profiledata import power_readings, profile_readings
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
    lines = schema.telemetry_lines(WHERE, msg)
    ms = int(TS.timestamp() * 1000)
    assert lines[0] == (f"device,agent=agent-a,commune=00688,device=rtr1,province=ha-giang,"
                        f"site=site-a up=1i,rtt_ms=3.5,uptime_s=1234.56,seq=7i {ms}")
    assert lines[1].startswith("interface,commune=00688,device=rtr1,ifindex=3,ifname=ge\\ 0/3,")
    assert "in_octets=3000i" in lines[1] and "in_bps=800.0" in lines[1]
    assert "out_bps" not in lines[1]


def test_unreachable_device_line() -> None:
    msg = telemetry(polls=[wire.DevicePoll(device="d", ts=TS, reachable=False, error="timeout")])
    (ln,) = schema.telemetry_lines(WHERE, msg)
    assert ' up=0i,seq=0i,error="timeout" ' in ln


def test_unreachable_device_line_carries_cause_and_ping_witness() -> None:
    msg = telemetry(polls=[wire.DevicePoll(
        device="d", ts=TS, reachable=False, error="no SNMP answer", cause="timeout",
        ping=wire.PingResult(sent=4, received=3, rtt_ms=12.5))])
    (ln,) = schema.telemetry_lines(WHERE, msg)
    assert (' up=0i,seq=0i,error="no SNMP answer",cause="timeout",ping_sent=4i,'
            'ping_received=3i,ping_loss_pct=25.0,ping_rtt_ms=12.5 ') in ln


def test_status_line_uses_receive_time_without_ts() -> None:
    st = wire.Status(agent="a", site="site-a", state="offline", reason="lost")
    ln = schema.status_line(WHERE, st, TS)
    assert ln.endswith(f' online=0i,reason="lost" {int(TS.timestamp() * 1000)}')


def _reference_lines(where: topics.SiteTopic, msg: wire.Telemetry) -> list[str]:
    """telemetry_lines as it was written before it was specialised: every line through the
    generic ``line()`` (the schema in the module doc)."""
    out: list[str] = []
    base = {"province": where.province, "commune": where.commune, "site": msg.site}
    for p in msg.polls:
        ts = lineproto.to_ms(p.ts)
        dev_tags = {**base, "device": p.device}
        dev = lineproto.line("device", {**dev_tags, "agent": msg.agent}, {
            "up": 1 if p.reachable else 0, "rtt_ms": p.rtt_ms,
            "uptime_s": p.uptime_cs / 100 if p.uptime_cs is not None else None,
            "seq": msg.seq, "error": p.error, "cause": p.cause,
            "ping_sent": p.ping.sent if p.ping else None,
            "ping_received": p.ping.received if p.ping else None,
            "ping_loss_pct": schema.ping_loss_pct(p.ping) if p.ping else None,
            "ping_rtt_ms": p.ping.rtt_ms if p.ping else None}, ts)
        if dev:
            out.append(dev)
        for i in p.interfaces:
            ln = lineproto.line("interface", {**dev_tags, "ifindex": str(i.index),
                                              "ifname": i.name}, {
                "oper": i.oper, "admin": i.admin, "speed_bps": i.speed_bps,
                "hc": 1 if i.hc else 0, "in_octets": i.in_octets, "out_octets": i.out_octets,
                "in_bps": i.in_bps, "out_bps": i.out_bps, "in_util_pct": i.in_util_pct,
                "out_util_pct": i.out_util_pct, "rate_note": i.rate_note}, ts)
            if ln:
                out.append(ln)
        for r in p.profiles or []:
            prof_tags = {**dev_tags, "profile": r.profile}
            ln = lineproto.line("profile", prof_tags, {
                "error": r.error, "cause": r.cause,
                "warnings": "; ".join(r.warnings) if r.warnings else None}, ts)
            if ln and (r.error is not None or r.warnings):
                out.append(ln)
            for v in r.values:
                tags = {**prof_tags, "metric": v.metric, "unit": v.unit or "",
                        **{f"t_{k}": t for k, t in (v.tags or {}).items()}}
                ln = lineproto.line("profile", tags, {
                    "value": v.value, "counter": v.counter, "rate": v.rate,
                    "rate_note": v.rate_note, "text": v.text, "code": v.code,
                    "unknown": v.unknown}, ts)
                if ln:
                    out.append(ln)
        if p.power is not None:
            ln = lineproto.line("power", dev_tags, {
                "state": p.power.state, "code": schema.POWER_CODES[p.power.state],
                "minutes_remaining": p.power.minutes_remaining,
                "charge_pct": p.power.charge_pct,
                "seconds_on_battery": p.power.seconds_on_battery,
                "profile": p.power.profile}, ts)
            assert ln is not None
            out.append(ln)
    return out


_odd = st.text(st.sampled_from(list('ab ,="\\\n\r\t\u00e9x')), max_size=8)
_level = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True)
_counter = st.none() | st.integers(0, 2**64 - 1) | st.sampled_from([2**63 - 1, 2**63])
_rate = st.none() | st.floats(0, 1e18) | st.sampled_from([0.0, 1e-300, 1e300])


@st.composite
def _telemetry(draw: st.DrawFn) -> tuple[topics.SiteTopic, wire.Telemetry]:
    site = draw(_level)
    where = topics.parse(f"xanet/v1/{draw(_level)}/{draw(_level)}/{site}/telemetry")
    polls = [wire.DevicePoll(
        device=draw(_level), ts=draw(st.datetimes(datetime(2001, 1, 1), datetime(2090, 1, 1),
                                                  timezones=st.just(UTC))),
        reachable=draw(st.booleans()), rtt_ms=draw(_rate),
        uptime_cs=draw(st.none() | st.integers(0, 2**32 - 1)),
        error=draw(st.none() | _odd),
        cause=draw(st.none() | st.sampled_from(wire.POLL_CAUSES)),
        ping=draw(st.none() | st.builds(
            wire.PingResult, sent=st.just(4), received=st.integers(0, 4),
            rtt_ms=st.none() | st.floats(0, 5000))),
        interfaces=[wire.InterfacePoll(
            index=draw(st.integers(1, 2**31 - 1)), name=draw(_odd),
            oper=draw(st.none() | st.integers(1, 7)), admin=draw(st.none() | st.integers(1, 3)),
            speed_bps=draw(_counter), hc=draw(st.booleans()), in_octets=draw(_counter),
            out_octets=draw(_counter), in_bps=draw(_rate), out_bps=draw(_rate),
            in_util_pct=draw(_rate), out_util_pct=draw(_rate),
            rate_note=draw(st.none() | _odd)) for _ in range(draw(st.integers(0, 3)))],
        profiles=draw(st.none() | st.lists(profile_readings(), max_size=3)),
        power=draw(st.none() | power_readings),
    ) for _ in range(draw(st.integers(1, 3)))]
    msg = wire.Telemetry(agent=draw(_level), site=site,
                         seq=draw(st.integers(0, 2**63 - 1)), polls=polls)
    return where, msg


@settings(max_examples=500)
@given(_telemetry())
def test_telemetry_lines_byte_identical_to_the_generic_encoder(
    case: tuple[topics.SiteTopic, wire.Telemetry],
) -> None:
    where, msg = case
    assert schema.telemetry_lines(where, msg) == _reference_lines(where, msg)


def test_escaping_table() -> None:
    """docs/data.md "Line protocol escaping", one row per rule."""
    cases = [  # (tag value, as written)
        ("Gi 0/1,x=y", "Gi\\ 0/1\\,x\\=y"),
        ("C:\\ports\\1", "C:\\ports\\1"),  # a backslash before anything else is literal
        ("Gi0\\", "Gi0\u29f5"),  # at the end it would escape the separator
        ("a\\,b", "a\u29f5\\,b"),  # before an escaped character parsers disagree
        ("a\\\\b", "a\\\\b"),
        ("eth0\nvlan\r1", "eth0\u240avlan\u240d1"),  # one point per line
        ('say "hi"', 'say\\ "hi"'),
    ]
    for value, written in cases:
        assert lineproto.line("m", {"t": value}, {"v": 1}, 1) == f"m,t={written} v=1i 1", value
    assert lineproto.line("m", {}, {"s": 'a\\b"c\nd\re'}, 1) == 'm s="a\\\\b\\"c\u240ad\u240de" 1'
    assert lineproto.line("a b,c", {}, {"f x": 1}, 1) == "a\\ b\\,c f\\ x=1i 1"


@given(st.text())
def test_encoded_line_is_one_line_and_never_ends_an_identifier_in_a_backslash(s: str) -> None:
    ln = lineproto.line(s or "m", {s or "k": s}, {s or "f": s}, 1)
    assert ln is not None and "\n" not in ln and "\r" not in ln
    assert not lineproto.escape_identifier(s).endswith("\\")
    assert not lineproto.escape_measurement(s).endswith("\\")
