"""agent.snmp against real agents: net-snmp's snmpd, snmpsim, and a lying agent.

Behaviour observed here (net-snmp 5.9.3, pysnmp 7.1.30) and asserted below:

- wrong v2c community: snmpd stays silent -> SnmpTimeout;
- SNMPv3 wrong auth key: snmpd sends a usmStatsWrongDigests report -> SnmpAuthError;
- SNMPv3 wrong priv key: snmpd cannot parse the decrypted PDU and drops it
  silently -> SnmpTimeout (nothing distinguishes it from a dead device);
- SNMPv3 unknown user: usmStatsUnknownUserNames report -> SnmpAuthError;
- SNMPv3 authNoPriv for a ``rouser ... priv`` user: error-status
  authorizationError -> SnmpAccessError (cause "access");
- SNMPv3 engine time far off: an authenticated usmStatsNotInTimeWindows report, after
  which the lean path resynchronises and the request succeeds;
- snmpsim cannot serve an out-of-range value (negative Counter32): it answers
  endOfMibView from that cell on, so the column just ends there.

Wire-level lies snmpsim cannot tell (OIDs going backwards, error-status in a
GETBULK) come from ``_LyingAgent``: a real UDP SNMP v2c agent, built on
pysnmp's protocol API, that answers from a table and misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]  # no stubs
from pysnmp.proto import api, rfc1902

import lab
from agent.errors import SnmpAccessError, SnmpAuthError, SnmpProtocolError, SnmpTimeout
from agent.snmp import RawInterface, RawPoll, SnmpPoller, SnmpTarget, SnmpV2c, SnmpV3, oids
from lab import Snmpd, SnmpSim

pytestmark = pytest.mark.integration

Oid = tuple[int, ...]


@pytest.fixture(params=["lean", "pysnmp"])
async def poller(request: pytest.FixtureRequest) -> AsyncIterator[SnmpPoller]:
    """Every test runs on both paths: lean (v2c and SNMPv3 USM) and pysnmp."""
    # Async on purpose: close() must run while the event loop still runs.
    p = SnmpPoller(v2c_backend=request.param, v3_backend=request.param)
    yield p
    p.close()


def v2c(device: str, port: int, community: str, **kw: Any) -> SnmpTarget:
    return SnmpTarget(
        device=device, host="127.0.0.1", port=port, credentials=SnmpV2c(community), **kw
    )


def v3_of(agent: Snmpd, **kw: Any) -> SnmpV3:
    return SnmpV3(agent.v3_user, agent.v3_auth_key, agent.v3_priv_key, **kw)


def by_name(poll: RawPoll) -> dict[str, RawInterface]:
    return {i.name: i for i in poll.interfaces}


def linux_interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net"))


# ----------------------------------------------------------------------- snmpd


async def test_v2c_polls_this_machines_interfaces(snmpd: Snmpd, poller: SnmpPoller) -> None:
    poll = await poller.poll(v2c("host-a", snmpd.port, snmpd.community))

    assert poll.device == "host-a"
    assert poll.sys_uptime_cs > 0
    assert poll.rtt_s > 0
    assert poll.warnings == ()
    # snmpd's IF-MIB is the kernel's interface list: the oracle is /sys.
    assert set(by_name(poll)) == linux_interfaces()
    lo = by_name(poll)["lo"]
    assert lo.descr == "lo"
    assert lo.oper_status == 1 and lo.admin_status == 1
    for interface in poll.interfaces:
        assert interface.hc is True  # Linux snmpd has ifXTable
        assert isinstance(interface.in_octets, int) and interface.in_octets >= 0
        assert isinstance(interface.out_octets, int) and interface.out_octets >= 0
    assert [i.index for i in poll.interfaces] == sorted(i.index for i in poll.interfaces)


async def test_counters_match_net_snmp(snmpd: Snmpd, poller: SnmpPoller) -> None:
    # Counters move between two GETs, so compare a stable column exactly and
    # check the counters only grow between net-snmp's read and ours.
    lo_index = by_name(await poller.poll(v2c("host-a", snmpd.port, snmpd.community)))["lo"].index
    hc_in = f"{oids.dotted(oids.IF_HC_IN_OCTETS)}.{lo_index}"
    before = int(lab.snmpget(snmpd.port, hc_in, community=snmpd.community)[hc_in])
    poll = await poller.poll(v2c("host-a", snmpd.port, snmpd.community))
    lo = by_name(poll)["lo"]
    assert lo.index == lo_index
    assert lo.in_octets is not None and lo.in_octets >= before


async def test_v3_auth_priv_sha_aes(snmpd: Snmpd, poller: SnmpPoller) -> None:
    target = SnmpTarget(
        device="host-v3", host="127.0.0.1", port=snmpd.port, credentials=v3_of(snmpd)
    )
    poll = await poller.poll(target)
    assert set(by_name(poll)) == linux_interfaces()
    assert all(i.hc for i in poll.interfaces)
    # The engine caches the discovered engine id and keys: a second poll works too.
    again = await poller.poll(target)
    assert again.sys_uptime_cs >= poll.sys_uptime_cs


async def test_wrong_community_is_a_timeout(snmpd: Snmpd, poller: SnmpPoller) -> None:
    target = v2c("host-x", snmpd.port, "not-" + snmpd.community, timeout_s=0.3, retries=0)
    with pytest.raises(SnmpTimeout) as info:
        await poller.poll(target)
    assert info.value.device == "host-x"
    assert "host-x" in str(info.value) and f"127.0.0.1:{snmpd.port}" in str(info.value)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"auth_key": "wrong-auth-key-1"}, SnmpAuthError, id="wrong-auth-key"),
        pytest.param({"priv_key": "wrong-priv-key-1"}, SnmpTimeout, id="wrong-priv-key"),
        pytest.param({"user": "nobody"}, SnmpAuthError, id="unknown-user"),
        pytest.param({"priv_key": None}, SnmpAccessError, id="authNoPriv-for-priv-user"),
        pytest.param({"auth_protocol": "MD5"}, SnmpAuthError, id="wrong-auth-protocol"),
    ],
)
async def test_v3_refusals(
    snmpd: Snmpd, poller: SnmpPoller, change: dict[str, Any], error: type[Exception]
) -> None:
    credentials = dataclasses.replace(v3_of(snmpd), **change)
    target = SnmpTarget(
        device="host-v3bad",
        host="127.0.0.1",
        port=snmpd.port,
        credentials=credentials,
        timeout_s=0.5,
        retries=0,
    )
    with pytest.raises(error) as info:
        await poller.poll(target)
    assert "host-v3bad" in str(info.value)


async def test_same_v3_user_with_different_keys_on_two_devices(
    snmpd: Snmpd, make_snmpd: Callable[..., Snmpd], poller: SnmpPoller
) -> None:
    other = make_snmpd(v3_auth_key="other-auth-key-9", v3_priv_key="other-priv-key-9")
    assert other.v3_user == snmpd.v3_user
    targets = [
        SnmpTarget(
            device=f"{name}-{n}", host="127.0.0.1", port=agent.port, credentials=v3_of(agent)
        )
        for n in range(3)
        for name, agent in (("first", snmpd), ("second", other))
    ]
    polls = await asyncio.gather(*(poller.poll(t) for t in targets))
    for poll in polls:
        assert "lo" in by_name(poll)


async def test_nothing_listening_is_a_quick_timeout(poller: SnmpPoller) -> None:
    port = lab.free_udp_port()
    with pytest.raises(SnmpTimeout) as info:
        await poller.poll(v2c("ghost", port, "public", timeout_s=0.2, retries=0))
    assert "ghost" in str(info.value)


class _Snmpd6(Snmpd):
    """snmpd listening on ::1 as well (the shared harness binds 127.0.0.1 only)."""

    def _prepare(self) -> None:
        super()._prepare()
        text = self.conf_path.read_text()
        text = text.replace(
            f"agentaddress udp:{self.host}:{self.port}\n",
            f"agentaddress udp:{self.host}:{self.port},udp6:[::1]:{self.port}\n"
            f"rocommunity6 {self.community} ::1\n",
        )
        self.conf_path.write_text(text)


async def test_ipv6_host(tmp_path: Path, poller: SnmpPoller) -> None:
    with _Snmpd6(tmp_path / "snmpd6") as agent:
        target = SnmpTarget(
            device="host-v6", host="::1", port=agent.port, credentials=SnmpV2c(agent.community)
        )
        poll = await poller.poll(target)
        assert "lo" in by_name(poll)
        with pytest.raises(SnmpTimeout) as info:
            await poller.poll(
                SnmpTarget(
                    device="v6-bad",
                    host="::1",
                    port=agent.port,
                    credentials=SnmpV2c("wrong"),
                    timeout_s=0.2,
                    retries=0,
                )
            )
        assert f"[::1]:{agent.port}" in str(info.value)


# --------------------------------------------------------------------- snmpsim


def _recorded(path: Path) -> dict[int, dict[str, tuple[str, str]]]:
    """``{ifIndex: {column name: (tag, value)}}`` from a recording."""
    columns = {
        oids.dotted(oids.IF_DESCR): "descr",
        oids.dotted(oids.IF_OPER_STATUS): "oper",
        oids.dotted(oids.IF_ADMIN_STATUS): "admin",
        oids.dotted(oids.IF_IN_OCTETS): "in",
        oids.dotted(oids.IF_OUT_OCTETS): "out",
        oids.dotted(oids.IF_NAME): "name",
        oids.dotted(oids.IF_HC_IN_OCTETS): "hc_in",
        oids.dotted(oids.IF_HC_OUT_OCTETS): "hc_out",
        oids.dotted(oids.IF_ALIAS): "alias",
    }
    out: dict[int, dict[str, tuple[str, str]]] = {}
    for oid, cell in lab.snmprec_values(path).items():
        column, _, index = oid.rpartition(".")
        if column in columns:
            out.setdefault(int(index), {})[columns[column]] = cell
    return out


def _text(cell: tuple[str, str]) -> str:
    return cell[1].encode("latin-1").decode("utf-8", "replace").rstrip("\x00")


async def test_recorded_router_with_ifxtable(snmpsim: SnmpSim, poller: SnmpPoller) -> None:
    want = _recorded(lab.RECORDING_IFX)
    poll = await poller.poll(v2c("vyatta", snmpsim.port, lab.COMMUNITY_IFX))

    assert poll.warnings == ()
    assert poll.sys_uptime_cs == int(
        lab.snmprec_values(lab.RECORDING_IFX)[oids.dotted(oids.SYS_UPTIME)][1]
    )
    got = {i.index: i for i in poll.interfaces}
    assert set(got) == set(want)
    for index, cells in want.items():
        interface = got[index]
        assert interface.name == _text(cells["name"])
        assert interface.descr == _text(cells["descr"])
        assert interface.oper_status == int(cells["oper"][1])
        assert interface.admin_status == int(cells["admin"][1])
        assert cells["hc_in"][0] == "70"
        assert interface.hc is True
        assert interface.in_octets == int(cells["hc_in"][1])
        assert interface.out_octets == int(cells["hc_out"][1])
        assert interface.alias == (_text(cells["alias"]) or None)  # ifAlias polled
    assert any(i.in_octets for i in poll.interfaces)  # the recording has traffic


async def test_recorded_radio_with_iftable_only(snmpsim: SnmpSim, poller: SnmpPoller) -> None:
    want = _recorded(lab.RECORDING_IFTABLE_ONLY)
    poll = await poller.poll(v2c("radio", snmpsim.port, lab.COMMUNITY_IFTABLE_ONLY))

    assert poll.warnings == ()
    got = {i.index: i for i in poll.interfaces}
    assert set(got) == set(want)
    for index, cells in want.items():
        interface = got[index]
        assert "name" not in cells
        assert interface.name == _text(cells["descr"])  # no ifName: falls back to ifDescr
        assert interface.hc is False
        assert cells["in"][0] == "65"
        assert interface.in_octets == int(cells["in"][1])
        assert interface.out_octets == int(cells["out"][1])
        assert interface.oper_status == int(cells["oper"][1])
        assert interface.alias is None  # no ifXTable, no ifAlias


async def test_small_max_repetitions_gives_the_same_answer(
    snmpsim: SnmpSim, poller: SnmpPoller
) -> None:
    wide = await poller.poll(v2c("vyatta", snmpsim.port, lab.COMMUNITY_IFX))
    narrow = await poller.poll(
        v2c("vyatta-narrow", snmpsim.port, lab.COMMUNITY_IFX, max_repetitions=1)
    )
    assert narrow.interfaces == wide.interfaces


async def test_concurrent_polls_share_one_engine(
    snmpd: Snmpd, snmpsim: SnmpSim, poller: SnmpPoller
) -> None:
    targets = []
    for n in range(5):
        targets += [
            v2c(f"vyatta-{n}", snmpsim.port, lab.COMMUNITY_IFX),
            v2c(f"radio-{n}", snmpsim.port, lab.COMMUNITY_IFTABLE_ONLY),
            v2c(f"host-{n}", snmpd.port, snmpd.community),
            SnmpTarget(
                device=f"host-v3-{n}", host="127.0.0.1", port=snmpd.port, credentials=v3_of(snmpd)
            ),
        ]
    polls = await asyncio.gather(*(poller.poll(t) for t in targets))
    assert [p.device for p in polls] == [t.device for t in targets]
    alone = {
        "vyatta": await poller.poll(v2c("vyatta-alone", snmpsim.port, lab.COMMUNITY_IFX)),
        "radio": await poller.poll(
            v2c("radio-alone", snmpsim.port, lab.COMMUNITY_IFTABLE_ONLY)
        ),
    }
    for poll in polls:
        kind = poll.device.split("-")[0]
        if kind in alone:
            assert poll.interfaces == alone[kind].interfaces  # static recordings
        else:
            assert set(by_name(poll)) == linux_interfaces()


async def test_one_failing_device_does_not_disturb_the_others(
    snmpsim: SnmpSim, poller: SnmpPoller
) -> None:
    good = v2c("vyatta", snmpsim.port, lab.COMMUNITY_IFX)
    bad = v2c("silent", snmpsim.port, "no-such-community", timeout_s=0.3, retries=0)
    results = await asyncio.gather(poller.poll(bad), poller.poll(good), return_exceptions=True)
    assert isinstance(results[0], SnmpTimeout)
    assert isinstance(results[1], RawPoll) and results[1].interfaces


LIAR_RECORDING = """\
1.3.6.1.2.1.1.3.0|67|4242
1.3.6.1.2.1.2.2.1.2.1|4|eth0
1.3.6.1.2.1.2.2.1.2.2|4x|6574682dff31
1.3.6.1.2.1.2.2.1.2.3|4|eth3
1.3.6.1.2.1.2.2.1.5.1|4|fast
1.3.6.1.2.1.2.2.1.5.2|66|100000000
1.3.6.1.2.1.2.2.1.7.1|2|1
1.3.6.1.2.1.2.2.1.7.2|2|1
1.3.6.1.2.1.2.2.1.8.1|2|1
1.3.6.1.2.1.2.2.1.8.2|2|99
1.3.6.1.2.1.2.2.1.10.1|4|lots
1.3.6.1.2.1.2.2.1.10.2|65|1000
1.3.6.1.2.1.2.2.1.10.3|65|-5
1.3.6.1.2.1.2.2.1.16.1|65|10
1.3.6.1.2.1.2.2.1.16.2|65|2000
1.3.6.1.2.1.31.1.1.1.1.1|4x|c3a9746830
1.3.6.1.2.1.31.1.1.1.1.9|4|ghost
1.3.6.1.2.1.31.1.1.1.6.2|65|1111
1.3.6.1.2.1.31.1.1.1.10.2|65|2222
"""


async def test_a_lying_recording(
    tmp_path: Path, make_snmpsim: Callable[..., SnmpSim], poller: SnmpPoller
) -> None:
    recording = tmp_path / "liar.snmprec"
    recording.write_text(LIAR_RECORDING)
    sim = make_snmpsim({"liar": recording})
    poll = await poller.poll(v2c("liar", sim.port, "liar"))
    got = {i.index: i for i in poll.interfaces}
    warnings = "\n".join(poll.warnings)

    assert poll.sys_uptime_cs == 4242
    # ifName present for 9 only: still an interface (sparse tables are real).
    assert set(got) == {1, 2, 3, 9}
    assert got[9] == RawInterface(9, "ghost", None, None, None, None, None, None, False, None)
    # ifName decoded as UTF-8; ifDescr with a bad byte decoded with replacement.
    assert got[1].name == "éth0"
    assert got[2].name == got[2].descr == "eth-\ufffd1"
    # ifInOctets as OctetString: that value dropped, noted, the rest stands.
    assert got[1].in_octets is None and got[1].out_octets == 10 and got[1].hc is False
    assert "ifInOctets: expected Counter32, got OctetString 'lots'" in warnings
    assert "1.3.6.1.2.1.2.2.1.10.1" in warnings
    # ifSpeed as OctetString, ifOperStatus out of its enumeration.
    assert got[1].speed_bps is None and got[2].speed_bps == 100_000_000
    assert "ifSpeed: expected Gauge32, got OctetString" in warnings
    assert got[2].oper_status is None and got[1].oper_status == 1
    assert "ifOperStatus: expected Integer 1..7, got Integer '99'" in warnings
    # ifHC* as Counter32: not trusted as 64-bit, the 32-bit pair is used.
    assert (got[2].in_octets, got[2].out_octets, got[2].hc) == (1000, 2000, False)
    assert "ifHCInOctets: Counter32 in a 64-bit column; used ifIn/OutOctets" in warnings
    # snmpsim cannot encode Counter32 -5: it answers endOfMibView from there on.
    assert got[3].in_octets is None and got[3].descr == "eth3"


# -------------------------------------------------------------- a lying agent


class _LyingAgent(asyncio.DatagramProtocol):
    """An SNMP v2c agent on 127.0.0.1 that answers from ``table`` - and lies.

    ``loop_column``: GETBULK cursors in that column are answered with the
    column's first row again and again (an agent whose walk never ends).
    ``bulk_error``: every GETBULK gets this error-status (index 1).
    """

    def __init__(
        self,
        table: Sequence[tuple[Oid, Any]],
        loop_column: Oid | None = None,
        bulk_error: int = 0,
    ) -> None:
        self.table = sorted(table, key=lambda row: row[0])
        self.keys = [row[0] for row in self.table]
        self.loop_column = loop_column
        self.bulk_error = bulk_error
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _next(self, oid: Oid) -> tuple[Oid, Any]:
        if self.loop_column and oid[: len(self.loop_column)] == self.loop_column:
            first = bisect.bisect_right(self.keys, self.loop_column)
            return self.table[first]
        position = bisect.bisect_right(self.keys, oid)
        if position >= len(self.table):
            return oid, api.v2c.EndOfMibView()
        return self.table[position]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        request, _ = decoder.decode(data, asn1Spec=proto.Message())
        response = proto.apiMessage.get_response(request)
        request_pdu = proto.apiMessage.get_pdu(request)
        response_pdu = proto.apiMessage.get_pdu(response)
        asked = [tuple(oid) for oid, _ in proto.apiPDU.get_varbinds(request_pdu)]
        answer: list[tuple[Oid, Any]] = []
        if request_pdu.isSameTypeWith(proto.GetRequestPDU()):
            rows = dict(self.table)
            answer = [(oid, rows.get(oid, api.v2c.NoSuchObject())) for oid in asked]
        elif request_pdu.isSameTypeWith(proto.GetBulkRequestPDU()):
            if self.bulk_error:
                proto.apiPDU.set_error_status(response_pdu, self.bulk_error)
                proto.apiPDU.set_error_index(response_pdu, 1)
                answer = [(oid, api.v2c.Null()) for oid in asked]
            else:
                repetitions = int(proto.apiBulkPDU.get_max_repetitions(request_pdu))
                cursors = list(asked)
                for _ in range(repetitions):
                    step = [self._next(oid) for oid in cursors]
                    answer += step
                    cursors = [oid for oid, _ in step]
        proto.apiPDU.set_varbinds(response_pdu, answer)
        assert self.transport is not None
        self.transport.sendto(encoder.encode(response), addr)


def _liar_table() -> list[tuple[Oid, Any]]:
    rows: list[tuple[Oid, Any]] = [(oids.SYS_UPTIME, rfc1902.TimeTicks(777))]
    for index, name in ((1, b"ge-0/0/1"), (2, b"ge-0/0/2")):
        rows += [
            ((*oids.IF_DESCR, index), rfc1902.OctetString(name)),
            ((*oids.IF_OPER_STATUS, index), rfc1902.Integer32(1)),
            ((*oids.IF_IN_OCTETS, index), rfc1902.Counter32(100 * index)),
            ((*oids.IF_OUT_OCTETS, index), rfc1902.Counter32(200 * index)),
        ]
    return rows


async def _serve(agent: _LyingAgent) -> tuple[asyncio.DatagramTransport, int]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: agent, local_addr=("127.0.0.1", 0)
    )
    return transport, int(transport.get_extra_info("sockname")[1])


async def test_lying_agent_honest_baseline(poller: SnmpPoller) -> None:
    transport, port = await _serve(_LyingAgent(_liar_table()))
    try:
        poll = await poller.poll(v2c("liar", port, "public", timeout_s=1.0))
    finally:
        transport.close()
    assert poll.sys_uptime_cs == 777
    assert [(i.name, i.in_octets, i.out_octets) for i in poll.interfaces] == [
        ("ge-0/0/1", 100, 200),
        ("ge-0/0/2", 200, 400),
    ]
    assert poll.warnings == ()


async def test_lying_agent_whose_walk_goes_backwards(poller: SnmpPoller) -> None:
    agent = _LyingAgent(_liar_table(), loop_column=oids.IF_OPER_STATUS)
    transport, port = await _serve(agent)
    try:
        poll = await poller.poll(v2c("looper", port, "public", timeout_s=1.0))
    finally:
        transport.close()
    # The looping column is stopped after its first row; the others are intact.
    assert [i.oper_status for i in poll.interfaces] == [1, None]
    assert [i.in_octets for i in poll.interfaces] == [100, 200]
    assert any("ifOperStatus: non-increasing OID" in w for w in poll.warnings)


async def test_lying_agent_error_status(poller: SnmpPoller) -> None:
    agent = _LyingAgent(_liar_table(), bulk_error=5)  # genErr
    transport, port = await _serve(agent)
    try:
        with pytest.raises(SnmpProtocolError) as info:
            await poller.poll(v2c("generr", port, "public", timeout_s=1.0))
    finally:
        transport.close()
    message = str(info.value)
    assert "generr" in message and "genErr" in message
    assert oids.dotted(oids.IF_DESCR) in message  # the OID error-index points at


async def test_lying_agent_without_sysuptime(poller: SnmpPoller) -> None:
    table = [row for row in _liar_table() if row[0] != oids.SYS_UPTIME]
    transport, port = await _serve(_LyingAgent(table))
    try:
        with pytest.raises(SnmpProtocolError) as info:
            await poller.poll(v2c("no-uptime", port, "public", timeout_s=1.0))
    finally:
        transport.close()
    assert "no-uptime" in str(info.value) and "1.3.6.1.2.1.1.3.0" in str(info.value)


async def test_close_is_idempotent() -> None:
    poller = SnmpPoller()
    poller.close()
    poller.close()


def test_v3_credentials_are_checked_and_not_printed() -> None:
    with pytest.raises(ValueError, match="shorter than 8"):
        SnmpV3("u", "short", None)
    with pytest.raises(ValueError, match="without priv protocol"):
        SnmpV3("u", "long-enough-1", "long-enough-2", priv_protocol=None)
    creds = SnmpV3("u", "secret-auth-1", "secret-priv-1")
    assert "secret" not in repr(creds)
    assert "secret" not in repr(SnmpTarget("d", "127.0.0.1", SnmpV2c("secret-community")))


# ------------------------------------------------------- lean path == pysnmp path


@pytest.mark.parametrize("max_repetitions", [25, 3])
async def test_lean_and_pysnmp_paths_give_identical_polls(
    tmp_path: Path, make_snmpsim: Callable[..., SnmpSim], max_repetitions: int
) -> None:
    # The lying recording too: its warnings must read the same on both paths.
    liar = tmp_path / "liar.snmprec"
    liar.write_text(LIAR_RECORDING)
    sim = make_snmpsim(
        {
            lab.COMMUNITY_IFX: lab.RECORDING_IFX,
            lab.COMMUNITY_IFTABLE_ONLY: lab.RECORDING_IFTABLE_ONLY,
            "liar": liar,
        }
    )
    lean, reference = SnmpPoller(v2c_backend="lean"), SnmpPoller(v2c_backend="pysnmp")
    try:
        for community in (lab.COMMUNITY_IFX, lab.COMMUNITY_IFTABLE_ONLY, "liar"):
            target = v2c(community, sim.port, community, max_repetitions=max_repetitions)
            got, want = await lean.poll(target), await reference.poll(target)
            assert dataclasses.replace(got, rtt_s=0.0) == dataclasses.replace(want, rtt_s=0.0)
            assert got.interfaces
    finally:
        lean.close()
        reference.close()


# ------------------------------------------------------- SNMPv3 on the lean path


def extra_v3(user: str, **kw: Any) -> SnmpV3:
    """One of lab.Snmpd.V3_EXTRA_USERS as agent credentials."""
    for name, auth, auth_key, priv, priv_key in Snmpd.V3_EXTRA_USERS:
        if name == user:
            return SnmpV3(
                name, auth_key, priv_key,
                auth_protocol=cast(Any, auth.replace("-", "")),
                priv_protocol=cast(Any, priv),
                **kw,
            )
    raise KeyError(user)


LEAN_EXTRA_USERS = [u[0] for u in Snmpd.V3_EXTRA_USERS if u[3] in (None, "AES")]


@pytest.mark.parametrize("user", LEAN_EXTRA_USERS)
async def test_v3_every_auth_protocol_and_security_level(
    snmpd: Snmpd, poller: SnmpPoller, user: str
) -> None:
    target = SnmpTarget(
        device=f"host-{user}", host="127.0.0.1", port=snmpd.port, credentials=extra_v3(user)
    )
    poll = await poller.poll(target)
    assert set(by_name(poll)) == linux_interfaces()


@pytest.mark.parametrize(
    ("user", "change", "error"),
    [
        pytest.param("xanet-noauthpriv-sha256", {"auth_key": "wrong-auth-key-1"}, SnmpAuthError,
                     id="authNoPriv-wrong-auth-key"),
        pytest.param("xanet-noauthpriv-sha256", {"user": "nobody"}, SnmpAuthError,
                     id="authNoPriv-unknown-user"),
        pytest.param("xanet-noauthpriv-sha256", {"auth_protocol": "SHA512"}, SnmpAuthError,
                     id="authNoPriv-wrong-auth-protocol"),
        pytest.param("xanet-sha512-aes", {"priv_key": "wrong-priv-key-1"}, SnmpTimeout,
                     id="sha512-wrong-priv-key"),
        pytest.param("xanet-md5-aes", {"auth_key": "wrong-auth-key-1"}, SnmpAuthError,
                     id="md5-wrong-auth-key"),
    ],
)
async def test_v3_refusals_of_other_users(
    snmpd: Snmpd, poller: SnmpPoller, user: str, change: dict[str, Any], error: type[Exception]
) -> None:
    credentials = dataclasses.replace(extra_v3(user), **change)
    target = SnmpTarget(
        device="host-v3bad", host="127.0.0.1", port=snmpd.port, credentials=credentials,
        timeout_s=0.5, retries=0,
    )
    with pytest.raises(error) as info:
        await poller.poll(target)
    assert "host-v3bad" in str(info.value)


async def test_v3_des_goes_to_pysnmp(snmpd: Snmpd) -> None:
    poller = SnmpPoller()  # the product's defaults: lean wherever it can
    try:
        poll = await poller.poll(
            SnmpTarget(device="host-des", host="127.0.0.1", port=snmpd.port,
                       credentials=extra_v3("xanet-sha-des"))
        )
        assert set(by_name(poll)) == linux_interfaces()
        assert poller._pysnmp is not None and poller._lean_v3 is None
    finally:
        poller.close()


@pytest.mark.parametrize("credentials", ["v2c", "v3"])
async def test_a_target_set_to_pysnmp_is_polled_by_pysnmp(snmpd: Snmpd, credentials: str) -> None:
    """``backend = "pysnmp"`` (config ``[snmp] backend``) routes a lean-capable target to
    pysnmp, with the same poll as the lean path gives."""
    poller = SnmpPoller()  # the product's defaults: lean wherever the target allows it
    lean_target = (v2c("host-auto", snmpd.port, snmpd.community) if credentials == "v2c"
                   else SnmpTarget(device="host-auto", host="127.0.0.1", port=snmpd.port,
                                   credentials=v3_of(snmpd)))
    forced = dataclasses.replace(lean_target, device="host-forced", backend="pysnmp")
    try:
        via_pysnmp = await poller.poll(forced)
        assert poller._pysnmp is not None
        assert poller._lean is None and poller._lean_v3 is None
        via_lean = await poller.poll(lean_target)
        assert poller._lean is not None or poller._lean_v3 is not None
        assert set(by_name(via_pysnmp)) == set(by_name(via_lean)) == linux_interfaces()
    finally:
        poller.close()


async def test_v3_lean_resynchronises_after_not_in_time_window(snmpd: Snmpd) -> None:
    poller = SnmpPoller()
    target = SnmpTarget(device="host-v3", host="127.0.0.1", port=snmpd.port,
                        credentials=v3_of(snmpd), retries=0)
    try:
        await poller.poll(target)
        lean = poller._lean_v3
        assert lean is not None
        engines = lean.engines
        assert len(engines) == 1
        engine = next(iter(engines.values()))
        real = (engine.boots, engine.time)
        engine.time += 100_000  # far out of the 150 s window: snmpd reports notInTimeWindow
        poll = await poller.poll(target)
        assert poll.interfaces
        resynced = next(iter(engines.values()))
        assert resynced is not engine  # replaced by the report's boots/time
        assert resynced.boots == real[0] and abs(resynced.time - real[1]) < 100
    finally:
        poller.close()


def masked(poll: RawPoll) -> RawPoll:
    """A poll of this machine without what moves between two polls (counters, uptime)."""
    return dataclasses.replace(
        poll, rtt_s=0.0, sys_uptime_cs=0,
        interfaces=tuple(
            dataclasses.replace(i, in_octets=None, out_octets=None) for i in poll.interfaces
        ),
    )


@pytest.mark.parametrize("user", ["xanetv3", *LEAN_EXTRA_USERS])
async def test_lean_and_pysnmp_v3_give_identical_polls(snmpd: Snmpd, user: str) -> None:
    credentials = v3_of(snmpd) if user == "xanetv3" else extra_v3(user)
    target = SnmpTarget(device="host-v3", host="127.0.0.1", port=snmpd.port,
                        credentials=credentials, max_repetitions=3)
    lean, reference = SnmpPoller(), SnmpPoller(v3_backend="pysnmp")
    try:
        got = await lean.poll(target)
        want = await reference.poll(target)
        assert masked(got) == masked(want)
        assert got.interfaces
        assert reference._lean_v3 is None and lean._pysnmp is None
    finally:
        lean.close()
        reference.close()


V3_ONLY_PROBE = """
import asyncio, sys
from agent.snmp import SnmpPoller, SnmpTarget, SnmpV3

async def main():
    poller = SnmpPoller()
    user, auth_key, priv_key, auth_protocol = sys.argv[2:6]
    credentials = SnmpV3(user, auth_key, priv_key or None, auth_protocol=auth_protocol)
    poll = await poller.poll(SnmpTarget("d", "127.0.0.1", credentials, port=int(sys.argv[1])))
    poller.close()
    assert poll.interfaces
asyncio.run(main())
print(" ".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("level", ["authPriv", "authNoPriv"])
def test_a_v3_only_poll_loads_no_pysnmp(snmpd: Snmpd, level: str) -> None:
    import subprocess
    import sys

    if level == "authPriv":
        args = [*snmpd.v3, "SHA"]
    else:
        c = extra_v3("xanet-noauthpriv-sha256")
        args = [c.user, c.auth_key, "", c.auth_protocol]
    out = subprocess.run(
        [sys.executable, "-c", V3_ONLY_PROBE, str(snmpd.port), *args],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()
    loaded = {name.split(".")[0] for name in out}
    assert "agent" in loaded and "agent.snmp.lean_v3" in out
    assert "pysnmp" not in loaded and "pyasn1" not in loaded
    # AES needs cryptography (~6 MB of RSS); authNoPriv does not load it.
    assert ("cryptography" in loaded) == (level == "authPriv")
