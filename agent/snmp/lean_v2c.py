"""The native SNMP v2c backend: :mod:`agent.snmp.ber.v2c` over :mod:`agent.snmp.udp`, and
what makes a datagram a v2c Response to our request."""

from __future__ import annotations

from collections.abc import Sequence

from agent.credentials import SnmpV2c
from agent.snmp import ber
from agent.snmp.backend import Answer
from agent.snmp.exchange import Failed, Outcome, Response, Send
from agent.snmp.oids import Oid
from agent.snmp.target import SnmpTarget
from agent.snmp.udp import Addresses, UdpClient


def judge(message: ber.Message, community: bytes) -> Outcome[ber.Message]:
    """The answer to a v2c request of ``community`` (matched by request-id and source)."""
    if message.version != ber.VERSION_2C:
        shown = "SNMPv1" if message.version == ber.VERSION_1 else f"version {message.version}"
        return Failed(f"response is an {shown} message, not SNMPv2c")
    if message.community != community:
        return Failed("response carries a different community")
    if message.pdu_tag != ber.RESPONSE:
        name = ber.PDU_NAMES.get(message.pdu_tag, f"0x{message.pdu_tag:02x}")
        return Failed(f"answered with a {name} PDU, not a Response")
    return Response(message)


def _request_id(message: ber.Message) -> int:
    return message.request_id


class LeanV2c:
    """v2c GET/GETBULK with the lean codec: one UDP client for every v2c device."""

    name = "lean-v2c"

    def __init__(self) -> None:
        self.client: UdpClient[ber.Message] = UdpClient(
            ber.decode_message, _request_id, label="SNMP", id_name="request-id"
        )
        self._addresses = Addresses()

    async def exchange(
        self, target: SnmpTarget, request: Sequence[Oid], max_repetitions: int | None, what: str
    ) -> Answer:
        credentials = target.credentials
        if not isinstance(credentials, SnmpV2c):  # pragma: no cover - routed by SnmpPoller
            raise TypeError("the lean path speaks v2c only")
        address = await self._addresses.of(target)
        community = credentials.community.encode()
        request_id = self.client.new_id()
        data = ber.encode_request(community, request_id, request, max_repetitions)

        def receive(_data: bytes, _now_s: float, message: ber.Message) -> Outcome[ber.Message]:
            return judge(message, community)

        message: ber.Message = await self.client.request(
            device=target.device, address=address, first=Send(request_id, data, what),
            receive=receive, timeout_s=target.timeout_s, retries=target.retries,
        )
        return message.error_status, message.error_index, message.varbinds

    def close(self) -> None:
        self.client.close()
        self._addresses.clear()
