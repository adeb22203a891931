"""The SNMP v1/v2c message (RFC 1901): community and PDU, encoded and decoded. Pure.

The agent's v2c polling path encodes its GetRequest/GetBulkRequest here and decodes
the device's Response here; :mod:`agent.snmp.lean_v2c` carries the bytes over UDP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent.snmp.ber.pdu import decode_pdu_tail, encode_pdu, request_fields
from agent.snmp.ber.primitives import (
    INTEGER,
    OCTET_STRING,
    PDU_TAGS,
    SEQUENCE,
    BerError,
    Oid,
    VarBind,
    decode_integer,
    expect,
    header,
    integer_body,
    outer,
    tlv,
)

VERSION_1: Final = 0
VERSION_2C: Final = 1


@dataclass(frozen=True, slots=True)
class Message:
    """One SNMP v1/v2c message.

    For a GetBulkRequest ``error_status`` is non-repeaters and ``error_index``
    max-repetitions (the same positions in the PDU).
    """

    version: int
    community: bytes
    pdu_tag: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: tuple[VarBind, ...]


def encode_message(message: Message) -> bytes:
    return tlv(
        SEQUENCE,
        tlv(INTEGER, integer_body(message.version))
        + tlv(OCTET_STRING, message.community)
        + encode_pdu(message),
    )


def encode_request(
    community: bytes, request_id: int, oids: Sequence[Oid], max_repetitions: int | None
) -> bytes:
    """A v2c GetRequest (``max_repetitions`` None) or GetBulkRequest (non-repeaters 0)."""
    return encode_message(
        Message(VERSION_2C, community, *request_fields(request_id, oids, max_repetitions))
    )


def decode_message(data: bytes) -> Message:
    """Decode one SNMP v1/v2c message (any PDU but the v1 Trap); raises :class:`BerError`.

    The version, community and PDU type are returned, not judged: that is the
    caller's business (it knows what it asked whom).
    """
    # The message's and the PDU's own lengths are checked once the request-id is read,
    # so that a truncated or padded answer can still be tied to its request.
    pos, end, problem = outer(data)
    tag, start, pos = header(data, pos, end, None)
    expect(tag, INTEGER, "version", start, None)
    version = decode_integer(data, start, pos, INTEGER, "version", None)
    tag, start, pos = header(data, pos, end, None)
    expect(tag, OCTET_STRING, "community", start, None)
    community = data[start:pos]
    pdu_at = pos
    pdu_tag, pos, pdu_end = header(data, pos, end, None, clamp=True)
    if pdu_tag not in PDU_TAGS:
        raise BerError(f"PDU at byte {pdu_at}: unknown PDU tag 0x{pdu_tag:02x}")
    if problem is None and pdu_end != end:
        problem = f"the PDU ends {pdu_end - end:+d} bytes from the message's end"
    pdu_end = min(pdu_end, end)
    tag, start, pos = header(data, pos, pdu_end, None)
    expect(tag, INTEGER, "request-id", start, None)
    request_id = decode_integer(data, start, pos, INTEGER, "request-id", None)
    if problem is not None:
        raise BerError(problem, request_id)
    error_status, error_index, varbinds = decode_pdu_tail(
        data, pos, pdu_end, request_id, request_id
    )
    return Message(
        version=version,
        community=community,
        pdu_tag=pdu_tag,
        request_id=request_id,
        error_status=error_status,
        error_index=error_index,
        varbinds=varbinds,
    )
