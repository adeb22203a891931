"""A minimal SNMP v2c GET/GETBULK codec over asyncio UDP — a *measuring stick*, not product code.

It answered one question of issue 9 - what would a leaner SNMP codec than pysnmp/pyasn1
cost per device poll? - and the product's answer is agent.snmp.ber + agent.snmp.udp. It
stays as the floor of any Python v2c codec: the same exchange as agent.snmp (GET sysUpTime.0,
then one multi-column GETBULK loop) decoding every value to a Python int/bytes, with none
of the checks a product needs (no retries, no v3, no validation of hostile input beyond
what a struct parse trips over); requests are agent.snmp.ber's (the same bytes).
bench/snmp_poll.py runs it next to xanet: the distance between the two is what the
hardening and the value checks cost.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

# requests are the product's (the checks are in decoding)
from agent.snmp.ber import encode_request

Oid = tuple[int, ...]

_END_TAGS = (0x80, 0x81, 0x82)  # noSuchObject, noSuchInstance, endOfMibView


def _read(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at ``pos``."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def _decode_oid(b: bytes) -> Oid:
    first = b[0]
    out = [first // 40, first % 40] if first < 80 else [2, first - 80]
    sub = 0
    for byte in b[1:]:
        sub = (sub << 7) | (byte & 0x7F)
        if not byte & 0x80:
            out.append(sub)
            sub = 0
    return tuple(out)


def decode_response(buf: bytes) -> tuple[int, int, list[tuple[Oid, int, Any]]]:
    """(request id, error status, [(oid, value tag, value)])."""
    _, pos, _ = _read(buf, 0)  # message SEQUENCE
    _, s, pos = _read(buf, pos)  # version
    _, s, pos = _read(buf, pos)  # community
    _, pos, _ = _read(buf, pos)  # Response-PDU
    _, s, e = _read(buf, pos)
    request_id = int.from_bytes(buf[s:e], "big", signed=True)
    _, s, pos = _read(buf, e)
    error_status = int.from_bytes(buf[s:pos], "big")
    _, s, pos = _read(buf, pos)  # error index
    _, pos, end = _read(buf, pos)  # varbind list
    out = []
    while pos < end:
        _, vb, pos = _read(buf, pos)
        _, s, e = _read(buf, vb)
        oid = _decode_oid(buf[s:e])
        tag, s, e = _read(buf, e)
        value: Any
        if tag == 0x04:
            value = buf[s:e]
        elif tag in _END_TAGS or tag == 0x05:
            value = None
        elif tag == 0x06:
            value = _decode_oid(buf[s:e])
        else:
            value = int.from_bytes(buf[s:e], "big", signed=(tag == 0x02))
        out.append((oid, tag, value))
    return request_id, error_status, out


class LeanClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.ids = itertools.count(1)
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        _, pos, _ = _read(data, 0)
        _, s, pos = _read(data, pos)
        _, s, pos = _read(data, pos)
        _, pos, _ = _read(data, pos)
        _, s, e = _read(data, pos)
        fut = self.pending.pop(int.from_bytes(data[s:e], "big", signed=True), None)
        if fut is not None and not fut.done():
            fut.set_result(data)

    async def request(self, addr: tuple[str, int], community: bytes, oids: list[Oid],
                      max_repetitions: int | None,
                      timeout_s: float = 2.0) -> list[tuple[Oid, int, Any]]:
        rid = next(self.ids) & 0x7FFFFFFF
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        self.transport.sendto(encode_request(community, rid, oids, max_repetitions), addr)
        data = await asyncio.wait_for(fut, timeout_s)
        _, status, varbinds = decode_response(data)
        if status:
            raise RuntimeError(f"error-status {status}")
        return varbinds


async def open_client() -> LeanClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(LeanClient, local_addr=("127.0.0.1", 0))
    return proto


async def poll(client: LeanClient, addr: tuple[str, int], community: bytes, sys_uptime: Oid,
               columns: list[Oid], max_repetitions: int) -> tuple[int, dict[Oid, dict[int, Any]]]:
    """GET sysUpTime + the multi-column GETBULK walk; ({column: {ifIndex: value}}, requests)."""
    await client.request(addr, community, [sys_uptime], None)
    requests = 1
    cursors = list(columns)
    active = list(range(len(columns)))
    table: dict[Oid, dict[int, Any]] = {c: {} for c in columns}
    while active:
        varbinds = await client.request(addr, community, [cursors[i] for i in active],
                                        max_repetitions)
        requests += 1
        done = set()
        for pos, (oid, tag, value) in enumerate(varbinds):
            col = active[pos % len(active)]
            column = columns[col]
            if tag in _END_TAGS or oid[:len(column)] != column:
                done.add(col)
            else:
                cursors[col] = oid
                table[column][oid[-1]] = value
        active = [c for c in active if c not in done]
    return requests, table
