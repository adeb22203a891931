"""The lean backends' asyncio UDP client: sockets, request ids, matching, and the one
retry loop (v2c and SNMPv3 alike).

One unconnected UDP socket per address family serves every device of a client.
Datagrams are matched to requests by id (the v2c request-id, the v3 msgID) *and*
source address: a datagram from anyone else, with an id nobody is waiting for (a late
duplicate, say), or too broken to read an id from, is dropped and counted in
:attr:`UdpClient.ignored` - the request it might have been meant for then times out,
as it would have if the datagram had been lost. A datagram that *is* tied to a
request goes to that request's sans-IO exchange (:mod:`agent.snmp.exchange`), which
says what it means: the answer, something to send next, a refusal
(:class:`~agent.errors.SnmpAuthError`), nothing (ignored and counted), or an unusable
answer (:class:`~agent.errors.SnmpProtocolError`, naming the device and what is wrong).

Timeouts and retries are per target, as pysnmp does them: ``timeout_s`` per try,
``retries`` resends of the same datagram (same id, so a late answer to an earlier try
still counts). A :class:`~agent.snmp.exchange.Resend` starts the loop afresh with its
own datagram and id.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from agent.errors import (
    SnmpAuthError,
    SnmpConfigError,
    SnmpError,
    SnmpProtocolError,
    SnmpResolveError,
    SnmpTimeout,
)
from agent.snmp import ber
from agent.snmp.exchange import Failed, Ignored, Outcome, Refused, Resend, Response, Send
from agent.snmp.target import SnmpTarget, is_ipv6

log = logging.getLogger(__name__)

SockAddr = tuple[Any, ...]
M = TypeVar("M")  # a decoded message
T = TypeVar("T")  # what a request's Response carries

_RECEIVE_BUFFER_BYTES: Final = 4 * 1024 * 1024  # bursts of GETBULK answers from many devices

#: A request's exchange: fed the raw datagram, the local clock and the decoded message.
Receive = Callable[[bytes, float, M], Outcome[Any]]


@dataclass(frozen=True, slots=True)
class Address:
    """Where a device is: family and the socket address responses must come from."""

    family: int
    sockaddr: SockAddr
    shown: str  # host:port for messages


@dataclass(slots=True)
class _Pending(Generic[M]):
    future: asyncio.Future[Outcome[Any]]
    address: Address
    device: str
    what: str
    receive: Receive[M]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: UdpClient[Any]) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: SockAddr) -> None:
        self._client.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an unconnected socket cannot be tied to a request.
        self._client.ignore("socket error", exc)


async def resolve(host: str, port: int, family: int, shown: str) -> Address:
    """``host`` as a socket address of ``family`` (a literal costs no DNS query)."""
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_DGRAM
        )
    if not infos:
        raise socket.gaierror(
            socket.EAI_NODATA, f"no {socket.AddressFamily(family).name} address for {host}"
        )
    return Address(family, infos[0][4], shown)


class Addresses:
    """Each device's resolved address, kept while its target is unchanged."""

    def __init__(self) -> None:
        self._addresses: dict[str, tuple[SnmpTarget, Address]] = {}

    async def of(self, target: SnmpTarget) -> Address:
        cached = self._addresses.get(target.device)
        if cached is not None and cached[0] == target:
            return cached[1]
        family = socket.AF_INET6 if is_ipv6(target.host) else socket.AF_INET
        try:
            address = await resolve(target.host, target.port, family, target.address)
        except (socket.gaierror, UnicodeError) as exc:  # no such name; IDNA-unencodable name
            raise SnmpResolveError(
                target.device, f"cannot address {target.address}: {exc}"
            ) from exc
        except OSError as exc:
            raise SnmpConfigError(
                target.device, f"cannot address {target.address}: {exc}"
            ) from exc
        self._addresses[target.device] = (target, address)
        return address

    def clear(self) -> None:
        self._addresses.clear()


class UdpClient(Generic[M]):
    """Sends requests, matches answers, runs each request's retry loop.

    ``decode`` reads a datagram into a message (raising :class:`ber.BerError`, with the id
    when it got that far), ``id_of`` takes the message's id; ``label`` and ``id_name``
    appear in log lines and ignored-datagram reasons.
    """

    def __init__(
        self,
        decode: Callable[[bytes], M],
        id_of: Callable[[M], int],
        *,
        label: str,
        id_name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._decode = decode
        self._id_of = id_of
        self._label = label
        self._id_name = id_name
        self.clock = clock
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._pending: dict[int, _Pending[M]] = {}
        self._next_id = random.randrange(1, ber.MAX_INT32)
        self._closed = False
        #: datagrams dropped, by reason ("unknown request-id", "wrong source", ...).
        self.ignored: collections.Counter[str] = collections.Counter()

    def new_id(self) -> int:
        """A request id no waiting request holds."""
        while True:
            request_id = self._next_id
            self._next_id = request_id + 1 if request_id < ber.MAX_INT32 else 1
            if request_id not in self._pending:
                return request_id

    async def request(
        self,
        *,
        device: str,
        address: Address,
        first: Send,
        receive: Receive[M],
        timeout_s: float,
        retries: int,
    ) -> Any:
        """Send ``first`` and whatever the exchange asks next; the Response's answer.

        Raises :class:`SnmpTimeout` after ``retries + 1`` tries of ``timeout_s`` each,
        :class:`SnmpAuthError` for a refusal, :class:`SnmpProtocolError` for an answer
        that is malformed or not ours to take.
        """
        if self._closed:
            raise RuntimeError(f"the {self._label} client is closed")
        send = first
        while True:
            outcome = await self._try(device, address, send, receive, timeout_s, retries)
            if isinstance(outcome, Response):
                return outcome.answer
            if isinstance(outcome, Resend):
                send = outcome.send
                continue
            assert isinstance(outcome, Refused)  # Failed is raised, Ignored never resolves
            raise SnmpAuthError(device, f"{address.shown} refused {send.what}: {outcome.problem}")

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

    # -- the retry loop ---------------------------------------------------------------

    async def _try(
        self, device: str, address: Address, send: Send, receive: Receive[M],
        timeout_s: float, retries: int,
    ) -> Outcome[Any]:
        transport = await self._transport(address.family, device)
        future: asyncio.Future[Outcome[Any]] = asyncio.get_running_loop().create_future()
        self._pending[send.msg_id] = _Pending(future, address, device, send.what, receive)
        try:
            for _ in range(retries + 1):
                transport.sendto(send.data, address.sockaddr)
                done, _ = await asyncio.wait((future,), timeout=timeout_s)
                if done:
                    return future.result()
        finally:
            del self._pending[send.msg_id]
            if not future.done():
                future.cancel()
        raise SnmpTimeout(
            device,
            f"no response from {address.shown} to {send.what} within {timeout_s:g} s "
            f"x {retries + 1} tries",
        )

    # -- receiving --------------------------------------------------------------------

    def received(self, data: bytes, addr: SockAddr) -> None:
        """A datagram came in: decode, match, hand to its request's exchange.

        Dropped and counted: unreadable and not tied to a request, an unknown id, a
        wrong source, a second answer, what the exchange ignores. A malformed answer
        that *is* tied to a waiting request (right source and id) fails that request.
        """
        try:
            message = self._decode(data)
        except ber.BerError as exc:
            pending = self._pending.get(exc.request_id) if exc.request_id is not None else None
            if pending is None or not same_source(addr, pending.address):
                self.ignore("malformed", f"from {addr[:2]}: {exc}")
            else:
                self._fail(pending, Failed(f"malformed response: {exc}"))
            return
        request_id = self._id_of(message)
        found = self._pending.get(request_id)
        if found is None:
            self.ignore(f"unknown {self._id_name}", f"{request_id} from {addr[:2]}")
            return
        if not same_source(addr, found.address):
            self.ignore("wrong source", f"{self._id_name} {request_id} from {addr[:2]}")
            return
        if found.future.done():
            self.ignore("duplicate", f"{self._id_name} {request_id} from {addr[:2]}")
            return
        outcome = found.receive(data, self.clock(), message)
        if isinstance(outcome, Ignored):
            self.ignore(outcome.reason, outcome.detail)
        elif isinstance(outcome, Failed):
            self._fail(found, outcome)
        else:
            found.future.set_result(outcome)

    def ignore(self, reason: str, detail: object) -> None:
        self.ignored[reason] += 1
        log.debug("%s datagram ignored (%s): %s", self._label, reason, detail)

    def _fail(self, pending: _Pending[M], failed: Failed) -> None:
        if not pending.future.done():
            pending.future.set_exception(
                SnmpProtocolError(
                    pending.device,
                    f"{pending.address.shown} {failed.what or pending.what}: {failed.problem}",
                )
            )

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


def same_source(addr: SockAddr, address: Address) -> bool:
    return bool(addr[0] == address.sockaddr[0] and addr[1] == address.sockaddr[1])
