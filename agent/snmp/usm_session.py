"""The SNMPv3 USM exchange, sans-IO: discovery, engine time, resync, and what every answer
means (RFC 3412/3414). Pure: no sockets, no asyncio, no clock of its own.

One :class:`UsmExchange` per GET/GETBULK. :meth:`~UsmExchange.start` gives the first
datagram to send; each datagram that comes back with its msgID is fed to
:meth:`~UsmExchange.receive`, which answers with an outcome of
:mod:`agent.snmp.exchange`. What it does per device:

1. **discovery** - the first request to an address is an unauthenticated, reportable
   GetRequest with an empty engine ID and user; the Report (usmStatsUnknownEngineIDs)
   carries the device's engine ID, boots and time, which are kept per address
   (:data:`Engines`, shared by every exchange of one client);
2. every GET/GETBULK is sent authenticated (authNoPriv) or authenticated and
   AES-128-CFB encrypted (authPriv), with the engine time estimated from the last
   one learned plus the local time since;
3. a **notInTimeWindow** Report (authenticated) resynchronises boots/time and the
   request is sent once more; an **unknownEngineIDs** Report (the device was replaced)
   rediscovers and sends once more. Both only once per exchange, so reports cannot loop.

Reports of usmStatsUnknownUserNames, WrongDigests, UnsupportedSecLevels,
DecryptionErrors - and a notInTimeWindow after the resync - are refusals
(:class:`~agent.snmp.exchange.Refused`: :class:`~agent.errors.SnmpAuthError`, as on
the pysnmp path).

Ignored (the request then times out, as if it had been lost): another msgID, and a
Response whose HMAC does not verify with our key ("bad digest": anyone can forge a
datagram with a guessed msgID, only the device can sign it). An answer that is
malformed, of another security level, engine or user, or that does not decrypt into a
ScopedPDU is :class:`~agent.snmp.exchange.Failed`. A wrong privacy key is silence on
net-snmp (it cannot parse what it decrypted): a timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final

from agent.snmp import ber, usm
from agent.snmp.exchange import Failed, Ignored, Outcome, Refused, Resend, Response, Send
from agent.snmp.oids import Oid, dotted

_USM_STATS: Final = (1, 3, 6, 1, 6, 3, 15, 1, 1)
UNSUPPORTED_SEC_LEVELS: Final = (*_USM_STATS, 1, 0)
NOT_IN_TIME_WINDOWS: Final = (*_USM_STATS, 2, 0)
UNKNOWN_USER_NAMES: Final = (*_USM_STATS, 3, 0)
UNKNOWN_ENGINE_IDS: Final = (*_USM_STATS, 4, 0)
WRONG_DIGESTS: Final = (*_USM_STATS, 5, 0)
DECRYPTION_ERRORS: Final = (*_USM_STATS, 6, 0)
REFUSALS: Final[dict[Oid | None, str]] = {
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
class Engine:
    """What was learned about the authoritative engine at one address."""

    engine_id: bytes
    boots: int
    time: int
    learned_at: float  # local monotonic clock when boots/time were learned

    def now(self, now_s: float) -> tuple[int, int]:
        elapsed = int(now_s - self.learned_at)
        return self.boots, min(self.time + max(elapsed, 0), ber.MAX_INT32)


#: The engines learned, by the peer's address (one table per client).
Engines = dict[Hashable, Engine]


class _Problem(Exception):
    """An answer to a request that cannot be taken (becomes :class:`Failed`)."""


class UsmExchange:
    """One GET (``max_repetitions`` None) or GETBULK through USM, from discovery to the
    Response's ScopedPDU. ``new_id`` gives a fresh msgID, ``new_salt`` the next AES salt."""

    def __init__(
        self,
        *,
        engines: Engines,
        peer: Hashable,
        credentials: Credentials,
        oids: Sequence[Oid],
        max_repetitions: int | None,
        what: str,
        new_id: Callable[[], int],
        new_salt: Callable[[], bytes],
    ) -> None:
        self._engines = engines
        self._peer = peer
        self._credentials = credentials
        self._oids = oids
        self._max_repetitions = max_repetitions
        self._what = what
        self._new_id = new_id
        self._new_salt = new_salt
        self._msg_id = -1
        self._engine: Engine | None = None  # None: the discovery probe is in flight
        self._flags = 0
        self._resynced = False

    @property
    def msg_id(self) -> int:
        """The msgID of the datagram in flight."""
        return self._msg_id

    def start(self, now_s: float) -> Send:
        """The first datagram: the request, or the discovery probe for a new address."""
        engine = self._engines.get(self._peer)
        return self._discovery() if engine is None else self._request(engine, now_s)

    def receive(
        self, data: bytes, now_s: float, message: ber.V3Message | None = None
    ) -> Outcome[ber.ScopedPdu]:
        """What ``data`` (``message``, when the caller decoded it already) means."""
        if message is None:
            try:
                message = ber.decode_v3_message(data)
            except ber.BerError as exc:
                if exc.request_id != self._msg_id:
                    return Ignored("malformed", str(exc))
                return Failed(f"malformed response: {exc}")
        if message.msg_id != self._msg_id:
            return Ignored("unknown msgID", str(message.msg_id))
        try:
            judged = self._judge(message, data, now_s)
        except ber.BerError as exc:
            return Failed(f"malformed response: {exc}")
        except _Problem as exc:
            return Failed(str(exc))
        if not isinstance(judged, ber.ScopedPdu):
            return judged
        if self._engine is None:
            return self._discovered(message, now_s)
        if judged.pdu_tag == ber.RESPONSE:
            return Response(judged)
        return self._reported(judged, message, now_s)

    # -- sending ----------------------------------------------------------------------

    def _discovery(self) -> Send:
        self._engine = None
        self._msg_id = msg_id = self._new_id()
        self._flags = ber.FLAG_REPORTABLE
        scoped = ber.encode_scoped_request(b"", msg_id, (), None)
        data, _ = ber.encode_v3_message(
            msg_id=msg_id, flags=ber.FLAG_REPORTABLE, engine_id=b"", engine_boots=0,
            engine_time=0, user_name=b"", auth_params=b"", priv_params=b"", msg_data=scoped,
        )
        return Send(msg_id, data, f"{self._what} (engine discovery)")

    def _request(self, engine: Engine, now_s: float) -> Send:
        credentials = self._credentials
        self._engine = engine
        self._msg_id = msg_id = self._new_id()
        auth = credentials.auth
        auth_key = usm.localized_key(credentials.auth_password, auth.hash_name, engine.engine_id)
        boots, engine_time = engine.now(now_s)
        scoped = ber.encode_scoped_request(
            engine.engine_id, msg_id, self._oids, self._max_repetitions
        )
        flags = ber.FLAG_REPORTABLE | ber.FLAG_AUTH
        priv_params = b""
        if credentials.priv_password is not None:
            flags |= ber.FLAG_PRIV
            priv_key = usm.localized_priv_key(
                credentials.priv_password, auth.hash_name, engine.engine_id
            )
            priv_params = self._new_salt()
            scoped = usm.aes_encrypt(priv_key, boots, engine_time, priv_params, scoped)
        self._flags = flags
        data, offset = ber.encode_v3_message(
            msg_id=msg_id, flags=flags, engine_id=engine.engine_id, engine_boots=boots,
            engine_time=engine_time, user_name=credentials.user,
            auth_params=bytes(auth.mac_octets), priv_params=priv_params, msg_data=scoped,
        )
        return Send(msg_id, usm.sign(auth, auth_key, data, offset), self._what)

    # -- what came back ---------------------------------------------------------------

    def _discovered(self, message: ber.V3Message, now_s: float) -> Outcome[ber.ScopedPdu]:
        """The discovery Report (judged): keep the engine, send the request."""
        if not 5 <= len(message.engine_id) <= ber.MAX_ENGINE_ID_OCTETS:
            return Failed(f"engine ID of {len(message.engine_id)} octets", "engine discovery")
        engine = Engine(message.engine_id, message.engine_boots, message.engine_time, now_s)
        self._engines[self._peer] = engine
        return Resend(self._request(engine, now_s))

    def _reported(
        self, scoped: ber.ScopedPdu, message: ber.V3Message, now_s: float
    ) -> Outcome[ber.ScopedPdu]:
        """A Report to the request: resync or rediscover once, else a refusal."""
        oid = scoped.varbinds[0][0] if scoped.varbinds else None
        if oid == NOT_IN_TIME_WINDOWS and not self._resynced:
            # Authenticated (checked in _judge): take its boots/time, once.
            self._resynced = True
            assert self._engine is not None
            engine = Engine(self._engine.engine_id, message.engine_boots, message.engine_time,
                            now_s)
            self._engines[self._peer] = engine
            return Resend(self._request(engine, now_s))
        if oid == UNKNOWN_ENGINE_IDS and not self._resynced:
            self._resynced = True  # the device's engine changed: discover it again, once
            self._engines.pop(self._peer, None)
            return Resend(self._discovery())
        return Refused(REFUSALS.get(oid, f"report {dotted(oid)}" if oid else "empty report"))

    def _judge(
        self, message: ber.V3Message, data: bytes, now_s: float
    ) -> ber.ScopedPdu | Ignored:
        """The ScopedPDU taken (a Response, or a Report); raises _Problem / BerError."""
        engine = self._engine
        credentials = self._credentials if engine is not None else None  # None: discovery
        authenticated = bool(message.flags & ber.FLAG_AUTH)
        if authenticated:
            if credentials is None or engine is None or message.engine_id != engine.engine_id:
                raise _Problem("authenticated answer from another engine or to the probe")
            if message.user_name != credentials.user:
                raise _Problem("response for another user")
            key = usm.localized_key(
                credentials.auth_password, credentials.auth.hash_name, message.engine_id
            )
            if not usm.verify(
                credentials.auth, key, data, message.auth_offset, message.auth_params
            ):
                return Ignored("bad digest", f"msgID {message.msg_id}")
        scoped = message.scoped_pdu
        if scoped is None:  # encrypted (the decoder guarantees FLAG_AUTH with FLAG_PRIV)
            assert credentials is not None and message.encrypted is not None
            scoped = _decrypted(credentials, message)
        if scoped.pdu_tag == ber.REPORT:
            if not scoped.varbinds:
                raise _Problem("empty Report")
            oid = scoped.varbinds[0][0]
            if oid == NOT_IN_TIME_WINDOWS and not authenticated:
                # Only an authenticated notInTimeWindow report may move our clock.
                raise _Problem("unauthenticated usmStatsNotInTimeWindows report")
            if credentials is None and oid != UNKNOWN_ENGINE_IDS:
                raise _Problem(f"engine discovery answered with report {dotted(oid)}")
            return scoped
        if scoped.pdu_tag != ber.RESPONSE:
            name = ber.PDU_NAMES.get(scoped.pdu_tag, f"0x{scoped.pdu_tag:02x}")
            raise _Problem(f"answered with a {name} PDU, not a Response")
        if engine is None:
            raise _Problem("engine discovery answered with a Response, not a Report")
        wanted = self._flags & (ber.FLAG_AUTH | ber.FLAG_PRIV)
        if message.flags & (ber.FLAG_AUTH | ber.FLAG_PRIV) != wanted:
            raise _Problem("response at another security level than the request")
        if scoped.request_id != message.msg_id:
            raise _Problem(f"response carries request-id {scoped.request_id}, not ours")
        # Authentic: the device's clock moved on (RFC 3414 3.2 7b).
        boots, estimated = engine.now(now_s)
        if (message.engine_boots, message.engine_time) > (boots, estimated):
            engine.boots, engine.time = message.engine_boots, message.engine_time
            engine.learned_at = now_s
        return scoped


def _decrypted(credentials: Credentials, message: ber.V3Message) -> ber.ScopedPdu:
    """The plaintext ScopedPDU of an encrypted message; raises _Problem."""
    assert message.encrypted is not None
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
        return ber.decode_scoped_pdu(plaintext, message.msg_id, padded=True)
    except ber.BerError as exc:
        raise _Problem(
            f"the response does not decrypt into a ScopedPDU (privacy key?): {exc}"
        ) from exc
