"""The agent's lean SNMP v2c client: :mod:`agent.ber` over asyncio UDP.

One unconnected UDP socket per address family serves every v2c device of a
poller. Requests are matched to responses by request-id *and* source address:
a datagram from anyone else, with a request-id nobody is waiting for (a late
duplicate, say), or too broken to read a request-id from, is dropped and
counted in :attr:`V2cClient.ignored` - the request it might have been meant for
then times out, as it would have if the datagram had been lost. A datagram that
*is* the answer (right source, right request-id) but is malformed, of another
version, community or PDU type fails that request at once with a
:class:`~agent.errors.SnmpProtocolError` that names the device and what is wrong.

Timeouts and retries are per target, as pysnmp does them: ``timeout_s`` per try,
``retries`` resends of the same message (same request-id, so a late answer to an
earlier try still counts).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from agent import ber
from agent.errors import SnmpConfigError, SnmpError, SnmpProtocolError, SnmpTimeout

log = logging.getLogger(__name__)

Oid = tuple[int, ...]
SockAddr = tuple[Any, ...]

_RECEIVE_BUFFER_BYTES: Final = 4 * 1024 * 1024  # bursts of GETBULK answers from many devices


@dataclass(frozen=True, slots=True)
class Address:
    """Where a device is: family and the socket address responses must come from."""

    family: int
    sockaddr: SockAddr
    shown: str  # host:port for messages


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[ber.Message]
    address: Address
    community: bytes
    device: str
    what: str


class _PendingLike(Protocol):
    future: asyncio.Future[Any]
    address: Address
    device: str
    what: str


P = TypeVar("P", bound=_PendingLike)
M = TypeVar("M")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: UdpClient[Any]) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: SockAddr) -> None:
        self._client._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an unconnected socket cannot be tied to a request.
        self._client._ignore("socket error", exc)


class UdpClient(Generic[P]):
    """What the v2c and v3 clients share: one unconnected UDP socket per address family,
    the table of pending requests by id, ids, dropped-datagram accounting, closing."""

    label = "SNMP"

    def __init__(self) -> None:
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._pending: dict[int, P] = {}
        self._next_id = random.randrange(1, ber.MAX_INT32)
        self._closed = False
        #: datagrams dropped, by reason ("unknown request-id", "wrong source", ...).
        self.ignored: collections.Counter[str] = collections.Counter()

    @staticmethod
    async def resolve(host: str, port: int, family: int, shown: str) -> Address:
        """``host`` as a socket address of ``family`` (a literal costs no DNS query)."""
        try:
            infos = socket.getaddrinfo(
                host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, family=family, type=socket.SOCK_DGRAM
            )
        if not infos:
            raise socket.gaierror(
                socket.EAI_NODATA, f"no {socket.AddressFamily(family).name} address for {host}"
            )
        return Address(family, infos[0][4], shown)

    def close(self) -> None:
        """Close the sockets; waiting requests fail. Idempotent."""
        self._closed = True
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    SnmpError(pending.device, f"{pending.what}: the SNMP client was closed")
                )

    def _received(self, data: bytes, addr: SockAddr) -> None:
        raise NotImplementedError

    def _match(
        self, data: bytes, addr: SockAddr, decode: Callable[[bytes], M],
        id_of: Callable[[M], int], id_name: str,
    ) -> tuple[M, P] | None:
        """Decode a datagram and find the request it answers; None when it is dropped.

        Dropped and counted: unreadable and not tied to a request, an unknown id, a
        wrong source, a second answer. A malformed answer that *is* tied to a waiting
        request (right source and id) fails that request at once.
        """
        try:
            message = decode(data)
        except ber.BerError as exc:
            pending = self._pending.get(exc.request_id) if exc.request_id is not None else None
            if pending is None or not same_source(addr, pending.address):
                self._ignore("malformed", f"from {addr[:2]}: {exc}")
            else:
                self._fail(pending, f"malformed response: {exc}")
            return None
        request_id = id_of(message)
        found = self._pending.get(request_id)
        if found is None:
            self._ignore(f"unknown {id_name}", f"{request_id} from {addr[:2]}")
            return None
        if not same_source(addr, found.address):
            self._ignore("wrong source", f"{id_name} {request_id} from {addr[:2]}")
            return None
        if found.future.done():
            self._ignore("duplicate", f"{id_name} {request_id} from {addr[:2]}")
            return None
        return message, found

    def _new_id(self) -> int:
        while True:
            request_id = self._next_id
            self._next_id = request_id + 1 if request_id < ber.MAX_INT32 else 1
            if request_id not in self._pending:
                return request_id

    async def _transport(self, family: int, device: str) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is not None:
            return transport
        loop = asyncio.get_running_loop()
        wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
        try:
            created, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(wildcard, 0), family=family
            )
        except OSError as exc:
            raise SnmpConfigError(device, f"cannot open a UDP socket: {exc}") from exc
        if family in self._transports:  # another poll opened one meanwhile
            created.close()
            return self._transports[family]
        sock = created.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER_BYTES)
            except OSError:  # a smaller buffer still works: best effort
                log.debug("could not raise the SNMP socket's receive buffer", exc_info=True)
        self._transports[family] = created
        return created

    def _ignore(self, reason: str, detail: object) -> None:
        self.ignored[reason] += 1
        log.debug("%s datagram ignored (%s): %s", self.label, reason, detail)

    def _fail(self, pending: P, problem: str) -> None:
        if not pending.future.done():
            pending.future.set_exception(
                SnmpProtocolError(
                    pending.device, f"{pending.address.shown} {pending.what}: {problem}"
                )
            )


class V2cClient(UdpClient[_Pending]):
    """Sends v2c GET/GETBULK requests and waits for their responses."""

    # -- requests ---------------------------------------------------------------------

    async def request(
        self,
        *,
        device: str,
        address: Address,
        community: bytes,
        oids: Sequence[Oid],
        max_repetitions: int | None,
        timeout_s: float,
        retries: int,
        what: str,
    ) -> ber.Message:
        """One GET (``max_repetitions`` None) or GETBULK exchange: the device's Response.

        Raises :class:`SnmpTimeout` after ``retries + 1`` tries of ``timeout_s`` each,
        :class:`SnmpProtocolError` for an answer that is malformed or not ours to take.
        """
        if self._closed:
            raise RuntimeError("V2cClient is closed")
        transport = await self._transport(address.family, device)
        request_id = self._new_id()
        data = ber.encode_request(community, request_id, oids, max_repetitions)
        future: asyncio.Future[ber.Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, address, community, device, what)
        try:
            for _ in range(retries + 1):
                transport.sendto(data, address.sockaddr)
                done, _ = await asyncio.wait((future,), timeout=timeout_s)
                if done:
                    return future.result()
        finally:
            del self._pending[request_id]
            if not future.done():
                future.cancel()
        raise SnmpTimeout(
            device,
            f"no response from {address.shown} to {what} within {timeout_s:g} s "
            f"x {retries + 1} tries",
        )

    # -- internals --------------------------------------------------------------------

    def _received(self, data: bytes, addr: SockAddr) -> None:
        matched = self._match(data, addr, ber.decode_message, _request_id, "request-id")
        if matched is None:
            return
        message, pending = matched
        if message.version != ber.VERSION_2C:
            shown = "SNMPv1" if message.version == ber.VERSION_1 else f"version {message.version}"
            self._fail(pending, f"response is an {shown} message, not SNMPv2c")
        elif message.community != pending.community:
            self._fail(pending, "response carries a different community")
        elif message.pdu_tag != ber.RESPONSE:
            name = ber.PDU_NAMES.get(message.pdu_tag, f"0x{message.pdu_tag:02x}")
            self._fail(pending, f"answered with a {name} PDU, not a Response")
        else:
            pending.future.set_result(message)


def _request_id(message: ber.Message) -> int:
    return message.request_id


def same_source(addr: SockAddr, address: Address) -> bool:
    return bool(addr[0] == address.sockaddr[0] and addr[1] == address.sockaddr[1])
