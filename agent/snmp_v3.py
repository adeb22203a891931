"""The agent's lean SNMPv3 client (USM): :mod:`agent.ber` + :mod:`agent.usm` over asyncio UDP.

What it does per device (RFC 3412/3414):

1. **discovery** - the first request to an address is an unauthenticated, reportable
   GetRequest with an empty engine ID and user; the Report (usmStatsUnknownEngineIDs)
   carries the device's engine ID, boots and time, which are kept per address;
2. every GET/GETBULK is sent authenticated (authNoPriv) or authenticated and
   AES-128-CFB encrypted (authPriv), with the engine time estimated from the last
   one learned plus the local time since;
3. a **notInTimeWindow** Report (authenticated) resynchronises boots/time and the
   request is sent once more; an **unknownEngineIDs** Report (the device was replaced)
   rediscovers and sends once more. Both only once per exchange.

Reports of usmStatsUnknownUserNames, WrongDigests, UnsupportedSecLevels,
DecryptionErrors - and a notInTimeWindow after the resync - are refusals:
:class:`~agent.errors.SnmpAuthError`, as on the pysnmp path.

Datagrams are matched by msgID *and* source address. What is ignored and counted in
:attr:`V3Client.ignored` (the request then times out, as if it had been lost): a wrong
source, an unknown msgID, a message too broken to read a msgID from, and - new with
v3 - a Response whose HMAC does not verify with our key ("bad digest": anyone can
forge a datagram with a guessed msgID, only the device can sign it). A datagram that
is the answer (source, msgID) but malformed, of another security level, engine or
user, or that does not decrypt into a ScopedPDU fails the request at once with
:class:`~agent.errors.SnmpProtocolError`, as on the v2c path. A wrong privacy key is
silence on net-snmp (it cannot parse what it decrypted): a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from agent import ber, usm
from agent.errors import SnmpAuthError, SnmpProtocolError, SnmpTimeout
from agent.oids import dotted
from agent.snmp_v2c import Address, UdpClient

log = logging.getLogger(__name__)

Oid = tuple[int, ...]
SockAddr = tuple[Any, ...]


_USM_STATS: Final = (1, 3, 6, 1, 6, 3, 15, 1, 1)
UNSUPPORTED_SEC_LEVELS: Final = (*_USM_STATS, 1, 0)
NOT_IN_TIME_WINDOWS: Final = (*_USM_STATS, 2, 0)
UNKNOWN_USER_NAMES: Final = (*_USM_STATS, 3, 0)
UNKNOWN_ENGINE_IDS: Final = (*_USM_STATS, 4, 0)
WRONG_DIGESTS: Final = (*_USM_STATS, 5, 0)
DECRYPTION_ERRORS: Final = (*_USM_STATS, 6, 0)
_REFUSALS: Final[dict[Oid | None, str]] = {
    UNSUPPORTED_SEC_LEVELS: "usmStatsUnsupportedSecLevels (security level not allowed)",
    NOT_IN_TIME_WINDOWS: "usmStatsNotInTimeWindows (engine time out of the window)",
    UNKNOWN_USER_NAMES: "usmStatsUnknownUserNames (unknown user)",
    UNKNOWN_ENGINE_IDS: "usmStatsUnknownEngineIDs (unknown engine ID)",
    WRONG_DIGESTS: "usmStatsWrongDigests (wrong authentication key or protocol)",
    DECRYPTION_ERRORS: "usmStatsDecryptionErrors (wrong privacy key or protocol)",
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """A USM user as the lean path needs it; keys are the passwords (localized per engine)."""

    user: bytes
    auth: usm.AuthProtocol
    auth_password: bytes
    priv_password: bytes | None  # None: authNoPriv; else AES-128


@dataclass(slots=True)
class _Engine:
    """What was learned about the authoritative engine at one address."""

    engine_id: bytes
    boots: int
    time: int
    learned_at: float  # local monotonic clock when boots/time were learned

    def now(self, clock: Callable[[], float]) -> tuple[int, int]:
        elapsed = int(clock() - self.learned_at)
        return self.boots, min(self.time + max(elapsed, 0), ber.MAX_INT32)


@dataclass(frozen=True, slots=True)
class _Answer:
    """A message taken for a request: a Response's ScopedPDU, or a Report."""

    message: ber.V3Message
    scoped: ber.ScopedPdu


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[_Answer]
    address: Address
    device: str
    what: str
    credentials: Credentials | None  # None: the discovery probe
    engine: _Engine | None
    flags: int


class V3Client(UdpClient[_Pending]):
    """Sends SNMPv3/USM GET/GETBULK requests and waits for their responses.

    :attr:`ignored` counts dropped datagrams by reason ("bad digest", "wrong source", ...).
    """

    label = "SNMPv3"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._engines: dict[SockAddr, _Engine] = {}
        self._salt = random.getrandbits(64)

    # -- requests ---------------------------------------------------------------------

    async def request(
        self,
        *,
        device: str,
        address: Address,
        credentials: Credentials,
        oids: Sequence[Oid],
        max_repetitions: int | None,
        timeout_s: float,
        retries: int,
        what: str,
    ) -> ber.ScopedPdu:
        """One GET (``max_repetitions`` None) or GETBULK exchange: the Response's ScopedPDU.

        Raises :class:`SnmpTimeout`, :class:`SnmpAuthError` (USM refusals) or
        :class:`SnmpProtocolError` (an answer that is malformed or not ours to take).
        """
        if self._closed:
            raise RuntimeError("V3Client is closed")
        resynced = False
        while True:
            engine = self._engines.get(address.sockaddr)
            if engine is None:
                engine = await self._discover(device, address, timeout_s, retries, what)
            answer = await self._exchange(
                device, address, credentials, engine, oids, max_repetitions,
                timeout_s, retries, what,
            )
            scoped = answer.scoped
            if scoped.pdu_tag == ber.RESPONSE:
                return scoped
            # A Report (the only other PDU _received lets through).
            oid = scoped.varbinds[0][0] if scoped.varbinds else None
            if oid == NOT_IN_TIME_WINDOWS and not resynced:
                # Authenticated (checked in _received): take its boots/time, once.
                resynced = True
                self._engines[address.sockaddr] = _Engine(
                    engine.engine_id, answer.message.engine_boots,
                    answer.message.engine_time, self._clock(),
                )
                continue
            if oid == UNKNOWN_ENGINE_IDS and not resynced:
                resynced = True  # the device's engine changed: discover it again, once
                self._engines.pop(address.sockaddr, None)
                continue
            shown = _REFUSALS.get(oid, f"report {dotted(oid)}" if oid else "empty report")
            raise SnmpAuthError(device, f"{address.shown} refused {what}: {shown}")

    # -- internals --------------------------------------------------------------------

    async def _discover(
        self, device: str, address: Address, timeout_s: float, retries: int, what: str
    ) -> _Engine:
        msg_id = self._new_id()
        scoped = ber.encode_scoped_request(b"", msg_id, (), None)
        data, _ = ber.encode_v3_message(
            msg_id=msg_id, flags=ber.FLAG_REPORTABLE, engine_id=b"", engine_boots=0,
            engine_time=0, user_name=b"", auth_params=b"", priv_params=b"", msg_data=scoped,
        )
        answer = await self._send(
            data, msg_id,
            _Pending(_future(), address, device, f"{what} (engine discovery)", None, None,
                     ber.FLAG_REPORTABLE),
            timeout_s, retries,
        )
        message = answer.message
        if not 5 <= len(message.engine_id) <= ber.MAX_ENGINE_ID_OCTETS:
            raise SnmpProtocolError(
                device,
                f"{address.shown} engine discovery: engine ID of {len(message.engine_id)} octets",
            )
        engine = _Engine(message.engine_id, message.engine_boots, message.engine_time,
                         self._clock())
        self._engines[address.sockaddr] = engine
        return engine

    async def _exchange(
        self, device: str, address: Address, credentials: Credentials, engine: _Engine,
        oids: Sequence[Oid], max_repetitions: int | None, timeout_s: float, retries: int,
        what: str,
    ) -> _Answer:
        msg_id = self._new_id()
        auth = credentials.auth
        auth_key = usm.localized_key(credentials.auth_password, auth.hash_name, engine.engine_id)
        boots, engine_time = engine.now(self._clock)
        scoped = ber.encode_scoped_request(engine.engine_id, msg_id, oids, max_repetitions)
        flags = ber.FLAG_REPORTABLE | ber.FLAG_AUTH
        priv_params = b""
        if credentials.priv_password is not None:
            flags |= ber.FLAG_PRIV
            priv_key = usm.localized_priv_key(
                credentials.priv_password, auth.hash_name, engine.engine_id
            )
            self._salt = (self._salt + 1) & 0xFFFF_FFFF_FFFF_FFFF
            priv_params = self._salt.to_bytes(usm.SALT_OCTETS, "big")
            scoped = usm.aes_encrypt(priv_key, boots, engine_time, priv_params, scoped)
        data, offset = ber.encode_v3_message(
            msg_id=msg_id, flags=flags, engine_id=engine.engine_id, engine_boots=boots,
            engine_time=engine_time, user_name=credentials.user,
            auth_params=bytes(auth.mac_octets), priv_params=priv_params, msg_data=scoped,
        )
        data = usm.sign(auth, auth_key, data, offset)
        return await self._send(
            data, msg_id, _Pending(_future(), address, device, what, credentials, engine, flags),
            timeout_s, retries,
        )

    async def _send(
        self, data: bytes, msg_id: int, pending: _Pending, timeout_s: float, retries: int
    ) -> _Answer:
        transport = await self._transport(pending.address.family, pending.device)
        self._pending[msg_id] = pending
        future = pending.future
        try:
            for _ in range(retries + 1):
                transport.sendto(data, pending.address.sockaddr)
                done, _ = await asyncio.wait((future,), timeout=timeout_s)
                if done:
                    return future.result()
        finally:
            del self._pending[msg_id]
            if not future.done():
                future.cancel()
        raise SnmpTimeout(
            pending.device,
            f"no response from {pending.address.shown} to {pending.what} within "
            f"{timeout_s:g} s x {retries + 1} tries",
        )

    def _received(self, data: bytes, addr: SockAddr) -> None:
        matched = self._match(data, addr, ber.decode_v3_message, _msg_id, "msgID")
        if matched is None:
            return
        message, pending = matched
        try:
            answer = self._judge(message, data, pending)
        except ber.BerError as exc:
            self._fail(pending, f"malformed response: {exc}")
            return
        except _Problem as exc:
            self._fail(pending, str(exc))
            return
        if answer is not None:
            pending.future.set_result(answer)

    def _judge(self, message: ber.V3Message, data: bytes, pending: _Pending) -> _Answer | None:
        """The answer for ``pending``; None when ignored; raises _Problem / BerError."""
        credentials = pending.credentials
        authenticated = bool(message.flags & ber.FLAG_AUTH)
        if authenticated:
            if credentials is None or message.engine_id != _engine_id(pending):
                raise _Problem("authenticated answer from another engine or to the probe")
            if message.user_name != credentials.user:
                raise _Problem("response for another user")
            key = usm.localized_key(
                credentials.auth_password, credentials.auth.hash_name, message.engine_id
            )
            if not usm.verify(
                credentials.auth, key, data, message.auth_offset, message.auth_params
            ):
                self._ignore("bad digest", f"msgID {message.msg_id}")
                return None
        scoped = message.scoped_pdu
        if scoped is None:  # encrypted (the decoder guarantees FLAG_AUTH with FLAG_PRIV)
            assert credentials is not None and message.encrypted is not None
            if credentials.priv_password is None:
                raise _Problem("encrypted response to an authNoPriv request")
            priv_key = usm.localized_priv_key(
                credentials.priv_password, credentials.auth.hash_name, message.engine_id
            )
            try:
                plaintext = usm.aes_decrypt(
                    priv_key, message.engine_boots, message.engine_time,
                    message.priv_params, message.encrypted,
                )
            except ValueError as exc:
                raise _Problem(f"cannot decrypt the response: {exc}") from exc
            try:
                scoped = ber.decode_scoped_pdu(plaintext, message.msg_id, padded=True)
            except ber.BerError as exc:
                raise _Problem(
                    f"the response does not decrypt into a ScopedPDU (privacy key?): {exc}"
                ) from exc
        if scoped.pdu_tag == ber.REPORT:
            if not scoped.varbinds:
                raise _Problem("empty Report")
            oid = scoped.varbinds[0][0]
            if oid == NOT_IN_TIME_WINDOWS and not authenticated:
                # Only an authenticated notInTimeWindow report may move our clock.
                raise _Problem("unauthenticated usmStatsNotInTimeWindows report")
            if credentials is None and oid != UNKNOWN_ENGINE_IDS:
                raise _Problem(f"engine discovery answered with report {dotted(oid)}")
            return _Answer(message, scoped)
        if scoped.pdu_tag != ber.RESPONSE:
            name = ber.PDU_NAMES.get(scoped.pdu_tag, f"0x{scoped.pdu_tag:02x}")
            raise _Problem(f"answered with a {name} PDU, not a Response")
        if credentials is None:
            raise _Problem("engine discovery answered with a Response, not a Report")
        wanted = pending.flags & (ber.FLAG_AUTH | ber.FLAG_PRIV)
        if message.flags & (ber.FLAG_AUTH | ber.FLAG_PRIV) != wanted:
            raise _Problem("response at another security level than the request")
        if scoped.request_id != message.msg_id:
            raise _Problem(f"response carries request-id {scoped.request_id}, not ours")
        engine = pending.engine
        if engine is not None:  # authentic: the device's clock moved on (RFC 3414 3.2 7b)
            boots, estimated = engine.now(self._clock)
            if (message.engine_boots, message.engine_time) > (boots, estimated):
                engine.boots, engine.time = message.engine_boots, message.engine_time
                engine.learned_at = self._clock()
        return _Answer(message, scoped)


def _msg_id(message: ber.V3Message) -> int:
    return message.msg_id


class _Problem(Exception):
    """An answer to a request that cannot be taken (becomes SnmpProtocolError)."""


def _engine_id(pending: _Pending) -> bytes | None:
    return pending.engine.engine_id if pending.engine is not None else None


def _future() -> asyncio.Future[_Answer]:
    return asyncio.get_running_loop().create_future()
