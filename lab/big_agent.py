"""A real SNMP v2c agent on a UDP socket that answers from a *computed* MIB: huge tables,
long strings, walks that never end - the devices of issue 14 rows 5 and 6.

Nothing is stored: the next OID after any OID is computed, so a table of 5,000 rows or
an endless one costs this responder nothing. Answers are encoded with ``agent.snmp.ber``
(checked byte for byte against pysnmp by tests/test_ber.py). A GETBULK answer is cut to
fit one UDP datagram, as RFC 3416 lets an agent do.

    transport, port = await serve(BigMib(rows=5000))      # in a test's event loop
    python -m lab.big_agent --port 16100 --mode endless    # a process of its own (benches)

Modes (``BigMib`` arguments): ``rows`` ifIndex 1..rows (None: endless), ``descr`` the
ifDescr of each row, ``instances`` "index" (ifIndex rows) or "nested" (``col.1.n``: rows
that are not rows, endless).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Literal, cast

from agent.snmp import ber, oids

Oid = tuple[int, ...]
_MAX_DATAGRAM = 60_000


def _default_descr(index: int) -> str:
    return f"ge-0/0/{index}"


class BigMib:
    """sysUpTime plus ifDescr, ifOperStatus, ifHCIn/OutOctets over computed rows
    (``every_column``: each of the 11 columns the agent walks)."""

    def __init__(self, rows: int | None = 5000, *, descr: Callable[[int], str] = _default_descr,
                 instances: Literal["index", "nested"] = "index", uptime_cs: int = 4242,
                 every_column: bool = False) -> None:
        self.rows = rows
        self.descr = descr
        self.instances = instances
        self.uptime_cs = uptime_cs
        self.columns: list[tuple[Oid, Callable[[int], tuple[int, ber.Value]]]] = sorted([
            (oids.IF_DESCR, lambda i: (ber.OCTET_STRING, self.descr(i).encode())),
            (oids.IF_OPER_STATUS, lambda i: (ber.INTEGER, 1)),
            (oids.IF_HC_IN_OCTETS, lambda i: (ber.COUNTER64, 1000 * i)),
            (oids.IF_HC_OUT_OCTETS, lambda i: (ber.COUNTER64, 2000 * i)),
        ] + ([
            (oids.IF_SPEED, lambda i: (ber.GAUGE32, 10**9)),
            (oids.IF_ADMIN_STATUS, lambda i: (ber.INTEGER, 1)),
            (oids.IF_IN_OCTETS, lambda i: (ber.COUNTER32, 1000 * i)),
            (oids.IF_OUT_OCTETS, lambda i: (ber.COUNTER32, 2000 * i)),
            (oids.IF_NAME, lambda i: (ber.OCTET_STRING, f"ge{i}".encode())),
            (oids.IF_HIGH_SPEED, lambda i: (ber.GAUGE32, 1000)),
            (oids.IF_COUNTER_DISCONTINUITY_TIME, lambda i: (ber.TIMETICKS, 0)),
        ] if every_column else []), key=lambda c: c[0])

    def get(self, oid: Oid) -> ber.VarBind:
        if oid == oids.SYS_UPTIME:
            return oid, ber.TIMETICKS, self.uptime_cs
        return oid, ber.NO_SUCH_OBJECT, None

    def next(self, oid: Oid) -> ber.VarBind:
        if oid < oids.SYS_UPTIME:
            return oids.SYS_UPTIME, ber.TIMETICKS, self.uptime_cs
        for column, value in self.columns:
            n = len(column)
            inside = oid[:n] == column
            if not inside and oid > column:
                continue  # past this column's subtree
            suffix = oid[n:] if inside else ()
            if self.instances == "nested":  # col.1.k for k = 1, 2, ... for ever
                if suffix[:1] > (1,):
                    continue
                k = suffix[1] + 1 if suffix[:1] == (1,) and len(suffix) > 1 else 1
                return (*column, 1, k), *value(k)
            index = suffix[0] + 1 if suffix else 1
            if self.rows is None or index <= self.rows:
                return (*column, index), *value(index)
        return oid, ber.END_OF_MIB_VIEW, None


class BigAgent(asyncio.DatagramProtocol):
    def __init__(self, mib: BigMib) -> None:
        self.mib = mib
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        request = ber.decode_message(data)
        asked = [oid for oid, _, _ in request.varbinds]
        if request.pdu_tag == ber.GET_REQUEST:
            varbinds = [self.mib.get(oid) for oid in asked]
        else:
            varbinds, cursors = [], asked
            for _ in range(request.error_index):  # max-repetitions
                step = [self.mib.next(oid) for oid in cursors]
                varbinds += step
                cursors = [oid for oid, _, _ in step]
        while True:
            wire = ber.encode_message(replace(request, pdu_tag=ber.RESPONSE, error_status=0,
                                              error_index=0, varbinds=tuple(varbinds)))
            if len(wire) <= _MAX_DATAGRAM or len(varbinds) <= len(asked):
                break
            varbinds = varbinds[: max(len(asked), len(varbinds) - len(asked))]
        assert self.transport is not None
        self.transport.sendto(wire, addr)


async def serve(mib: BigMib, host: str = "127.0.0.1",
                port: int = 0) -> tuple[asyncio.DatagramTransport, int]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: BigAgent(mib), local_addr=(host, port))
    return transport, int(transport.get_extra_info("sockname")[1])


MODES: dict[str, Callable[[], BigMib]] = {
    "wide": lambda: BigMib(rows=5000),
    "long-descr": lambda: BigMib(rows=3, descr=lambda i: "x" * 300 if i == 2 else f"eth{i}"),
    "endless": lambda: BigMib(rows=None),
    "endless-11": lambda: BigMib(rows=None, every_column=True),
    "endless-nested": lambda: BigMib(rows=None, instances="nested"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=sorted(MODES), default="endless")
    args = p.parse_args()

    async def run() -> None:
        await serve(MODES[args.mode](), port=args.port)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
