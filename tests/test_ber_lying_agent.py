"""The lean v2c path against a lying agent on a real UDP socket on 127.0.0.1.

``_Liar`` answers GET/GETBULK from a small table (encoded with agent.snmp.ber, whose bytes
tests/test_ber.py checks against pysnmp's) and then spoils its answer in one way.
Every lie is either a clear SnmpError naming the device, or - when the datagram
cannot be tied to the request - ignored, counted, and a timeout; good devices
polled alongside are never disturbed.
"""

from __future__ import annotations

import asyncio
import bisect
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import cast

import pytest

from agent.errors import SnmpAccessError, SnmpError, SnmpProtocolError, SnmpTimeout
from agent.snmp import RawPoll, SnmpPoller, SnmpTarget, SnmpV2c, ber, oids

Spoil = Callable[[ber.Message, bytes], list[bytes]]  # (response, its bytes) -> datagrams


def _table() -> list[ber.VarBind]:
    rows: list[ber.VarBind] = [(oids.SYS_UPTIME, ber.TIMETICKS, 777)]
    for index in (1, 2):
        rows += [
            ((*oids.IF_DESCR, index), ber.OCTET_STRING, f"ge-0/0/{index}".encode()),
            ((*oids.IF_OPER_STATUS, index), ber.INTEGER, 1),
            ((*oids.IF_HC_IN_OCTETS, index), ber.COUNTER64, 2**64 - index),
            ((*oids.IF_HC_OUT_OCTETS, index), ber.COUNTER64, 7 * index),
        ]
    return sorted(rows)


class _Liar(asyncio.DatagramProtocol):
    def __init__(self, spoil: Spoil | None = None) -> None:
        self.table = _table()
        self.keys = [oid for oid, _, _ in self.table]
        self.spoil = spoil
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _next(self, oid: ber.Oid) -> ber.VarBind:
        position = bisect.bisect_right(self.keys, oid)
        if position >= len(self.table):
            return oid, ber.END_OF_MIB_VIEW, None
        return self.table[position]

    def answer(self, request: ber.Message) -> ber.Message:
        asked = [oid for oid, _, _ in request.varbinds]
        if request.pdu_tag == ber.GET_REQUEST:
            rows = {oid: (tag, value) for oid, tag, value in self.table}
            varbinds = [(oid, *rows.get(oid, (ber.NO_SUCH_OBJECT, None))) for oid in asked]
        else:
            varbinds, cursors = [], asked
            for _ in range(request.error_index):  # max-repetitions
                step = [self._next(oid) for oid in cursors]
                varbinds += step
                cursors = [oid for oid, _, _ in step]
        return replace(request, pdu_tag=ber.RESPONSE, error_status=0, error_index=0,
                       varbinds=tuple(varbinds))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        request = ber.decode_message(data)
        response = self.answer(request)
        wire = ber.encode_message(response)
        assert self.transport is not None
        for datagram in self.spoil(response, wire) if self.spoil else [wire]:
            self.transport.sendto(datagram, addr)


@pytest.fixture
async def poller() -> AsyncIterator[SnmpPoller]:
    p = SnmpPoller()  # the lean v2c path
    yield p
    p.close()


async def _serve(liar: _Liar) -> tuple[asyncio.DatagramTransport, int]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: liar, local_addr=("127.0.0.1", 0)
    )
    return transport, int(transport.get_extra_info("sockname")[1])


def target(device: str, port: int, **kw: float | int) -> SnmpTarget:
    return SnmpTarget(device=device, host="127.0.0.1", port=port,
                      credentials=SnmpV2c("public"), **kw)  # type: ignore[arg-type]


async def poll_liar(poller: SnmpPoller, spoil: Spoil | None, **kw: float | int) -> RawPoll:
    transport, port = await _serve(_Liar(spoil))
    try:
        return await poller.poll(target("liar", port, **{"timeout_s": 0.3, "retries": 0, **kw}))
    finally:
        transport.close()


def encoded(message: ber.Message) -> list[bytes]:
    return [ber.encode_message(message)]


def _timeticks_2_32(message: ber.Message) -> bytes:
    """``message`` with its TimeTicks as 2^32 (one past the type's range)."""
    body = (2**32).to_bytes(5, "big")
    varbinds = tuple(
        (oid, ber.OCTET_STRING, body) if tag == ber.TIMETICKS else (oid, tag, value)
        for oid, tag, value in message.varbinds
    )
    wire = ber.encode_message(replace(message, varbinds=varbinds))
    return wire.replace(b"\x04\x05" + body, b"\x43\x05" + body)


async def test_honest_answers(poller: SnmpPoller) -> None:
    poll = await poll_liar(poller, None)
    assert poll.sys_uptime_cs == 777
    assert [(i.name, i.in_octets, i.out_octets, i.hc) for i in poll.interfaces] == [
        ("ge-0/0/1", 2**64 - 1, 7, True),
        ("ge-0/0/2", 2**64 - 2, 14, True),
    ]
    assert poll.warnings == ()
    assert poller.ignored_datagrams == {}


# Answers that are the answer (right source, right request-id) but lie: a clear error.
LIES: list[tuple[str, Spoil, type[SnmpError], str]] = [
    ("trailing-garbage", lambda m, w: [w + b"\x00\x01"], SnmpProtocolError,
     "malformed response: 2 bytes of trailing garbage"),
    ("truncated", lambda m, w: [w[:-3]], SnmpProtocolError,
     "malformed response: truncated"),
    ("oversized-length", lambda m, w: [w[:1] + b"\x84\x7f\xff\xff\xff" + w[2:]],
     SnmpProtocolError, "malformed response: truncated: the message says 2147483653 bytes"),
    ("timeticks-out-of-range", lambda m, w: [_timeticks_2_32(m)], SnmpProtocolError,
     "malformed response: var-bind 1: TimeTicks 4294967296 out of 0..4294967295"),
    ("wrong-community", lambda m, w: encoded(replace(m, community=b"privat")),
     SnmpProtocolError, "response carries a different community"),
    ("snmpv1", lambda m, w: encoded(replace(m, version=0)), SnmpProtocolError,
     "response is an SNMPv1 message, not SNMPv2c"),
    ("report-pdu", lambda m, w: encoded(replace(m, pdu_tag=ber.REPORT)), SnmpProtocolError,
     "answered with a Report PDU, not a Response"),
    ("unknown-type", lambda m, w: [w.replace(b"\x43\x02\x03\x09", b"\x47\x02\x03\x09")],
     SnmpProtocolError, "unknown value tag 0x47"),
    ("too-big", lambda m, w: encoded(replace(m, error_status=1, error_index=0)),
     SnmpProtocolError, "answered GET sysUpTime with error-status tooBig"),
    ("authorization-error", lambda m, w: encoded(replace(m, error_status=16, error_index=1)),
     SnmpAccessError, "error-status authorizationError at 1.3.6.1.2.1.1.3.0"),
    ("no-access", lambda m, w: encoded(replace(m, error_status=6, error_index=1)),
     SnmpAccessError, "error-status noAccess"),
    ("two-varbinds", lambda m, w: encoded(replace(m, varbinds=m.varbinds * 2)),
     SnmpProtocolError, "answered GET sysUpTime with 2 varbinds"),
]

@pytest.mark.parametrize(("spoil", "error", "message"), [lie[1:] for lie in LIES],
                         ids=[lie[0] for lie in LIES])
async def test_a_lying_answer_is_a_clear_error(
    poller: SnmpPoller, spoil: Spoil, error: type[SnmpError], message: str
) -> None:
    with pytest.raises(error) as info:
        await poll_liar(poller, spoil)
    assert type(info.value) is error
    assert info.value.device == "liar"
    assert message in str(info.value)
    assert "127.0.0.1:" in str(info.value)


def test_the_byte_surgery_does_what_it_says() -> None:
    # sysUpTime 777 is TimeTicks 43 02 03 09, which "unknown-type" re-tags.
    sample = ber.Message(1, b"public", ber.RESPONSE, 9, 0, 0,
                         ((oids.SYS_UPTIME, ber.TIMETICKS, 777),))
    assert b"\x43\x02\x03\x09" in ber.encode_message(sample)
    with pytest.raises(ber.BerError, match="TimeTicks 4294967296 out of") as info:
        ber.decode_message(_timeticks_2_32(sample))
    assert info.value.request_id == 9


# Datagrams that cannot be tied to the request: ignored, counted; the request times out.
UNTIED: list[tuple[str, Spoil, str]] = [
    ("wrong-request-id", lambda m, w: encoded(replace(m, request_id=m.request_id ^ 1)),
     "unknown request-id"),
    ("garbage", lambda m, w: [b"\x30\x03\x02\x01"], "malformed"),
    ("random-bytes", lambda m, w: [bytes(range(256))], "malformed"),
    ("v3-shaped", lambda m, w: [w[:4] + b"\x30\x00" + w[4:]], "malformed"),
]


@pytest.mark.parametrize(("spoil", "reason"), [u[1:] for u in UNTIED],
                         ids=[u[0] for u in UNTIED])
async def test_an_untied_datagram_is_ignored_and_the_request_times_out(
    poller: SnmpPoller, spoil: Spoil, reason: str
) -> None:
    with pytest.raises(SnmpTimeout) as info:
        await poll_liar(poller, spoil, retries=1, timeout_s=0.2)
    assert "liar" in str(info.value) and "x 2 tries" in str(info.value)
    assert poller.ignored_datagrams == {reason: 2}  # one per try


async def test_junk_before_the_answer_does_not_disturb_it(poller: SnmpPoller) -> None:
    def junk_first(m: ber.Message, w: bytes) -> list[bytes]:
        return [b"\x00", *encoded(replace(m, request_id=m.request_id + 7)), w[:10], w, w]

    poll = await poll_liar(poller, junk_first)
    assert poll.sys_uptime_cs == 777 and len(poll.interfaces) == 2
    ignored = poller.ignored_datagrams
    # Per request: 3 junk datagrams, and the duplicate answer after the one taken.
    assert ignored["malformed"] == 2 * ignored["unknown request-id"]
    assert ignored["unknown request-id"] >= 2  # GET + at least one GETBULK


async def test_an_answer_from_another_port_is_ignored(poller: SnmpPoller) -> None:
    other, _ = await _serve(_Liar())

    def from_elsewhere(m: ber.Message, w: bytes) -> list[bytes]:
        other.sendto(w, addr_of_poller[0])
        return []

    addr_of_poller: list[tuple[str, int]] = []
    liar = _Liar(from_elsewhere)
    original = liar.datagram_received

    def remember(data: bytes, addr: tuple[str, int]) -> None:
        addr_of_poller[:] = [addr]
        original(data, addr)

    liar.datagram_received = remember  # type: ignore[method-assign]
    transport, port = await _serve(liar)
    try:
        with pytest.raises(SnmpTimeout):
            await poller.poll(target("spoofed", port, timeout_s=0.2, retries=0))
    finally:
        transport.close()
        other.close()
    assert poller.ignored_datagrams == {"wrong source": 1}


async def test_a_slow_answer_to_the_first_try_counts(poller: SnmpPoller) -> None:
    # Retries resend the same request-id: an answer to try 1 arriving during try 2 is taken.
    seen: list[int] = []

    def answer_first_try_late(m: ber.Message, w: bytes) -> list[bytes]:
        seen.append(m.request_id)
        if seen.count(m.request_id) == 2:  # the retry: answer it
            return [w]
        return []

    poll = await poll_liar(poller, answer_first_try_late, retries=1, timeout_s=0.2)
    assert poll.sys_uptime_cs == 777
    assert len(seen) == 2 * len(set(seen))  # every request sent twice, same request-id


async def test_liars_do_not_disturb_honest_devices_polled_alongside(poller: SnmpPoller) -> None:
    servers = [await _serve(_Liar(spoil)) for _, spoil, _, _ in LIES]
    honest = [await _serve(_Liar()) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(poller.poll(target(f"liar-{n}", port, timeout_s=1.0))
              for n, (_, port) in enumerate(servers)),
            *(poller.poll(target(f"good-{n}", port, timeout_s=1.0))
              for n, (_, port) in enumerate(honest)),
            return_exceptions=True,
        )
    finally:
        for transport, _ in servers + honest:
            transport.close()
    lies, goods = results[: len(servers)], results[len(servers) :]
    assert all(isinstance(r, SnmpError) for r in lies)
    assert [r.device for r in lies if isinstance(r, SnmpError)] == [
        f"liar-{n}" for n in range(len(servers))
    ]
    for n, good in enumerate(goods):
        assert isinstance(good, RawPoll) and good.device == f"good-{n}"
        assert good.sys_uptime_cs == 777 and len(good.interfaces) == 2 and good.warnings == ()


async def test_ipv6_loopback(poller: SnmpPoller) -> None:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        _Liar, local_addr=("::1", 0)
    )
    port = int(transport.get_extra_info("sockname")[1])
    try:
        poll = await poller.poll(
            SnmpTarget(device="v6", host="::1", port=port, credentials=SnmpV2c("public"))
        )
    finally:
        transport.close()
    assert poll.sys_uptime_cs == 777


async def test_an_unresolvable_host_is_an_error_naming_the_device(
    poller: SnmpPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real lookup of a name would ask the system's DNS server (not on 127.0.0.0/8):
    # the resolver answers "no such name" here instead, as it would for ".invalid".
    async def no_such_name(*_args: object, **_kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    with pytest.raises(SnmpError, match="cannot address") as info:
        await poller.poll(SnmpTarget(device="nowhere", host="host.invalid",
                                     credentials=SnmpV2c("public"), timeout_s=0.2, retries=0))
    assert info.value.device == "nowhere"


def test_a_v2c_only_poller_does_not_load_pysnmp() -> None:
    code = (
        "import asyncio, sys, agent.app\n"
        "from agent.snmp import SnmpPoller, SnmpTarget, SnmpV2c\n"
        "async def main():\n"
        "    p = SnmpPoller()\n"
        "    try:\n"
        "        await p.poll(SnmpTarget('d', '127.0.0.1', SnmpV2c('x'), port=9, timeout_s=0.05,"
        " retries=0))\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__)\n"
        "    p.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pysnmp', 'pyasn1'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["SnmpTimeout", "[]"]
