"""The pysnmp 7 backend: SNMPv3 with DES/AES-192/AES-256 privacy (what the lean path,
:mod:`agent.snmp.lean_v3`, does not implement), and any v2c/v3 target whose ``backend``
is ``"pysnmp"`` or when the poller is asked to (comparison runs, tests' oracle).

Imported by :mod:`agent.snmp.poller` only when the first target that needs it is polled,
so an agent whose devices are all lean-supported never loads pysnmp/pyasn1 (~15-25 MB, 100
modules). It speaks the same port as the lean v2c path: one GET/GETBULK exchange
in, ``(error-status, error-index, var-binds in the neutral form)`` out; pysnmp's
error indications (timeouts, USM reports) are translated into :mod:`agent.errors`
here, where they enter. Error-status and every value check stay in
:mod:`agent.snmp.walk` and :mod:`agent.snmp.table`, shared by every backend.

It owns one :class:`~pysnmp.hlapi.v3arch.asyncio.SnmpEngine` for every device it
polls. pysnmp's USM keys users by name, so two devices with the *same* v3 user name
but different keys cannot share an engine; such a device gets an engine of its own
(created on demand, closed with the backend).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyasn1.error import PyAsn1Error
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    usmAesBlumenthalCfb192Protocol,
    usmAesBlumenthalCfb256Protocol,
    usmAesCfb128Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoPrivProtocol,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902

from agent.credentials import SnmpV2c, SnmpV3
from agent.errors import (
    SnmpAuthError,
    SnmpConfigError,
    SnmpProtocolError,
    SnmpResolveError,
    SnmpTimeout,
)
from agent.resolver import literal
from agent.snmp import ber
from agent.snmp.backend import Answer
from agent.snmp.oids import Oid
from agent.snmp.target import SnmpTarget, is_ipv6

_AUTH_PROTOCOLS: Final[dict[str, Any]] = {
    "SHA": usmHMACSHAAuthProtocol,
    "SHA224": usmHMAC128SHA224AuthProtocol,
    "SHA256": usmHMAC192SHA256AuthProtocol,
    "SHA384": usmHMAC256SHA384AuthProtocol,
    "SHA512": usmHMAC384SHA512AuthProtocol,
    "MD5": usmHMACMD5AuthProtocol,
}
# AES192/AES256 as net-snmp means them (Blumenthal key extension); Cisco's
# "AES192C/AES256C" (Reeder) variant is not offered.
_PRIV_PROTOCOLS: Final[dict[str, Any]] = {
    "AES": usmAesCfb128Protocol,
    "AES192": usmAesBlumenthalCfb192Protocol,
    "AES256": usmAesBlumenthalCfb256Protocol,
    "DES": usmDESPrivProtocol,
}

# Error indications that mean "the device answered, and refused us".
_AUTH_INDICATIONS: Final = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.DecryptionError,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
    errind.UnknownCommunityName,
)
# Error indications about our own side: no cipher, an unsupported protocol (cause config).
_CONFIG_INDICATIONS: Final = (
    errind.EncryptionError,
    errind.NoEncryption,
    errind.NoAuthentication,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
    errind.UnsupportedSecurityModel,
)
_NULL: Final = rfc1902.Null("")
_INT_TAGS: Final = frozenset(
    {ber.INTEGER, ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64}
)
_BYTES_TAGS: Final = frozenset({ber.OCTET_STRING, ber.IP_ADDRESS, ber.OPAQUE})


@dataclass(slots=True)
class _Session:
    """What pysnmp needs to talk to one device; cached per device."""

    target: SnmpTarget
    engine: Any
    auth: Any
    transport: Any


def neutral(name: Any, value: Any) -> ber.VarBind:
    """A pysnmp var-bind in the agent's neutral ``(oid, tag, value)`` form."""
    tag_of = value.tagSet[0]
    tag = int(tag_of.tagClass | tag_of.tagFormat | tag_of.tagId)
    converted: ber.Value
    if tag in _INT_TAGS:
        converted = int(value)
    elif tag in _BYTES_TAGS:
        converted = bytes(value.asOctets())
    elif tag == ber.OBJECT_IDENTIFIER:
        converted = tuple(value)
    else:
        converted = None
    return tuple(name), tag, converted


class PysnmpBackend:
    """GET/GETBULK through pysnmp's command generators; one engine for most devices."""

    name = "pysnmp"

    def __init__(self) -> None:
        self._engine: Any = SnmpEngine()
        self._v3_users: dict[str, SnmpV3] = {}  # registered in self._engine
        self._extra_engines: dict[SnmpV3, Any] = {}
        self._sessions: dict[str, _Session] = {}
        self._context: Any = ContextData()

    def close(self) -> None:
        """Close the engines' sockets; call it while the event loop runs."""
        for engine in (self._engine, *self._extra_engines.values()):
            engine.close_dispatcher()
        self._sessions.clear()

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> Answer:
        """One GET/GETBULK: ``(error-status, error-index, var-binds)``; raises SnmpError."""
        session = await self._session(target)
        preposition = "to" if max_repetitions is not None else "from"
        try:
            error_indication, error_status, error_index, var_binds = await self._request(
                session, request, max_repetitions
            )
            _raise_for_indication(target, what, error_indication)
            return (
                int(error_status) if error_status else 0,
                int(error_index) if error_index else 0,
                [neutral(name, value) for name, value in var_binds],
            )
        except (PySnmpError, PyAsn1Error) as exc:
            raise SnmpProtocolError(
                target.device, f"{what} {preposition} {target.address}: {exc}"
            ) from exc

    # -- session set-up ---------------------------------------------------------------

    async def _session(self, target: SnmpTarget) -> _Session:
        cached = self._sessions.get(target.device)
        if cached is not None and cached.target == target:
            return cached
        engine, auth = self._engine_and_auth(target.credentials)
        try:
            transport_class = Udp6TransportTarget if is_ipv6(target.host) else UdpTransportTarget
            transport = await transport_class.create(
                (target.host, target.port), timeout=target.timeout_s, retries=target.retries
            )
        except PySnmpError as exc:
            # A name pysnmp could not resolve, or an address this host cannot use.
            error = SnmpResolveError if literal(target.host) is None else SnmpConfigError
            raise error(target.device, f"cannot address {target.address}: {exc}") from exc
        session = _Session(target, engine, auth, transport)
        self._sessions[target.device] = session
        return session

    def _engine_and_auth(self, credentials: SnmpV2c | SnmpV3) -> tuple[Any, Any]:
        if isinstance(credentials, SnmpV2c):
            return self._engine, CommunityData(credentials.community, mpModel=1)
        auth = UsmUserData(
            credentials.user,
            authKey=credentials.auth_key,
            privKey=credentials.priv_key,
            authProtocol=_AUTH_PROTOCOLS[credentials.auth_protocol],
            privProtocol=(
                _PRIV_PROTOCOLS[credentials.priv_protocol]
                if credentials.priv_key is not None and credentials.priv_protocol is not None
                else usmNoPrivProtocol
            ),
        )
        registered = self._v3_users.setdefault(credentials.user, credentials)
        if registered == credentials:
            return self._engine, auth
        engine = self._extra_engines.get(credentials)
        if engine is None:
            engine = self._extra_engines[credentials] = SnmpEngine()
        return engine, auth

    async def _request(
        self, session: _Session, request: Sequence[Oid], max_repetitions: int | None
    ) -> tuple[Any, Any, Any, Sequence[tuple[Any, Any]]]:
        """One GET (``max_repetitions`` None) or GETBULK exchange; pysnmp's raw outcome.

        What pysnmp's ``get_cmd``/``bulk_cmd`` do, minus their MIB resolution of every
        requested OID (``ObjectType.resolve_with_mib``, ~0.4 ms of CPU per OID even with
        ``lookupMib=False``): numeric OIDs need none, so the var-binds go to the command
        generator as ``(ObjectName, Null)`` pairs. Responses come back unresolved, as
        with ``lookupMib=False``.
        """
        engine, context = session.engine, self._context
        addr_name, _ = LCD.configure(engine, session.auth, session.transport,
                                     context.contextName)
        future: asyncio.Future[tuple[Any, Any, Any, Sequence[tuple[Any, Any]]]]
        future = asyncio.get_running_loop().create_future()

        def done(_engine: Any, _handle: Any, error_indication: Any, error_status: Any,
                 error_index: Any, var_binds: Any, _ctx: Any) -> None:
            if not future.done():
                future.set_result((error_indication, error_status, error_index, var_binds))

        var_binds = [(rfc1902.ObjectName(oid), _NULL) for oid in request]
        if max_repetitions is None:
            cmdgen.GetCommandGenerator().send_varbinds(
                engine, addr_name, context.contextEngineId, context.contextName, var_binds, done
            )
        else:
            cmdgen.BulkCommandGenerator().send_varbinds(
                engine, addr_name, context.contextEngineId, context.contextName,
                0, max_repetitions, var_binds, done,
            )
        return await future


def _raise_for_indication(target: SnmpTarget, what: str, error_indication: Any) -> None:
    """Translate pysnmp's errorIndication into the agent's errors."""
    if not error_indication:
        return
    if isinstance(error_indication, errind.RequestTimedOut):
        raise SnmpTimeout(
            target.device,
            f"no response from {target.address} to {what} within {target.timeout_s:g} s "
            f"x {target.retries + 1} tries",
        ) from error_indication
    if isinstance(error_indication, _AUTH_INDICATIONS):
        raise SnmpAuthError(
            target.device, f"{target.address} refused {what}: {error_indication}"
        ) from error_indication
    if isinstance(error_indication, _CONFIG_INDICATIONS):
        raise SnmpConfigError(
            target.device, f"{what} to {target.address}: {error_indication}"
        ) from error_indication
    exc = error_indication if isinstance(error_indication, BaseException) else None
    raise SnmpProtocolError(
        target.device, f"{target.address} {what}: {error_indication}"
    ) from exc
