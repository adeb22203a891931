"""The native SNMPv3 backend: a :class:`~agent.snmp.usm_session.UsmExchange` per request
over :mod:`agent.snmp.udp`, for the credentials :func:`~agent.snmp.routing.lean_supports`.

Imported when the first such target is polled: v2c-only agents load no crypto.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from agent.credentials import SnmpV3
from agent.snmp import ber, usm
from agent.snmp.backend import Answer
from agent.snmp.oids import Oid
from agent.snmp.routing import lean_supports
from agent.snmp.target import SnmpTarget
from agent.snmp.udp import Addresses, UdpClient
from agent.snmp.usm_session import Credentials, Engines, UsmExchange


def _msg_id(message: ber.V3Message) -> int:
    return message.msg_id


def credentials_of(credentials: SnmpV3) -> Credentials:
    """The USM user as the session needs it (protocol objects, bytes)."""
    return Credentials(
        user=credentials.user.encode(),
        auth=usm.AUTH_PROTOCOLS[credentials.auth_protocol],
        auth_password=credentials.auth_key.encode(),
        priv_password=credentials.priv_key.encode() if credentials.priv_key is not None else None,
    )


class LeanV3:
    """SNMPv3/USM GET/GETBULK with the lean codec: one UDP client, engines per address.

    :attr:`client`'s ``ignored`` counts dropped datagrams by reason ("bad digest",
    "wrong source", ...).
    """

    name = "lean-v3"

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.client: UdpClient[ber.V3Message] = UdpClient(
            ber.decode_v3_message, _msg_id, label="SNMPv3", id_name="msgID",
            **({"clock": clock} if clock is not None else {}),
        )
        self.engines: Engines = {}
        self._addresses = Addresses()
        self._salt = random.getrandbits(64)

    def _new_salt(self) -> bytes:
        self._salt = (self._salt + 1) & 0xFFFF_FFFF_FFFF_FFFF
        return self._salt.to_bytes(usm.SALT_OCTETS, "big")

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> Answer:
        credentials = target.credentials
        if not isinstance(credentials, SnmpV3) or not lean_supports(credentials):
            raise TypeError("routed by SnmpPoller")  # pragma: no cover
        address = await self._addresses.of(target)
        session = UsmExchange(
            engines=self.engines, peer=address.sockaddr, credentials=credentials_of(credentials),
            oids=request, max_repetitions=max_repetitions, what=what,
            new_id=self.client.new_id, new_salt=self._new_salt,
        )
        scoped: ber.ScopedPdu = await self.client.request(
            device=target.device, address=address, first=session.start(self.client.clock()),
            receive=session.receive, timeout_s=target.timeout_s, retries=target.retries,
        )
        return scoped.error_status, scoped.error_index, scoped.varbinds

    def close(self) -> None:
        self.client.close()
        self._addresses.clear()
