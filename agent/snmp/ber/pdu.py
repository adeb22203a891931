"""The SNMP PDU (RFC 3416), one encoder and one decoder for every protocol version. Pure.

A v1/v2c message (:mod:`agent.snmp.ber.v2c`) carries it after its community, an SNMPv3
ScopedPDU (:mod:`agent.snmp.ber.v3`) after its context: both build and read it here.
For a GetBulkRequest ``error_status`` is non-repeaters and ``error_index``
max-repetitions (the same positions in the PDU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.snmp.ber.primitives import (
    BYTES_TAGS,
    EMPTY_TAGS,
    GET_BULK_REQUEST,
    GET_REQUEST,
    INT_RANGES,
    INTEGER,
    IP_ADDRESS,
    MAX_INT32,
    NULL,
    OBJECT_IDENTIFIER,
    SEQUENCE,
    BerError,
    Oid,
    Value,
    VarBind,
    decode_integer,
    decode_oid,
    encode_oid,
    encode_value,
    expect,
    header,
    integer_body,
    tlv,
    type_name,
)


class PduFields(Protocol):
    """What a PDU holds: a v2c Message and an SNMPv3 ScopedPdu both carry it."""

    @property
    def pdu_tag(self) -> int: ...
    @property
    def request_id(self) -> int: ...
    @property
    def error_status(self) -> int: ...
    @property
    def error_index(self) -> int: ...
    @property
    def varbinds(self) -> Sequence[VarBind]: ...


def encode_pdu(pdu: PduFields) -> bytes:
    """One PDU's TLV."""
    body = b"".join(
        tlv(SEQUENCE, tlv(OBJECT_IDENTIFIER, encode_oid(oid)) + encode_value(tag, value))
        for oid, tag, value in pdu.varbinds
    )
    return tlv(
        pdu.pdu_tag,
        tlv(INTEGER, integer_body(pdu.request_id))
        + tlv(INTEGER, integer_body(pdu.error_status))
        + tlv(INTEGER, integer_body(pdu.error_index))
        + tlv(SEQUENCE, body),
    )


def request_fields(
    request_id: int, oids: Sequence[Oid], max_repetitions: int | None
) -> tuple[int, int, int, int, tuple[VarBind, ...]]:
    """``(pdu_tag, request_id, 0, max_repetitions or 0, var-binds)`` of a GetRequest
    (``max_repetitions`` None) or a GetBulkRequest (non-repeaters 0), ranges checked."""
    if not 0 <= request_id <= MAX_INT32:
        raise ValueError(f"request-id {request_id} out of 0..{MAX_INT32}")
    if max_repetitions is not None and not 0 <= max_repetitions <= MAX_INT32:
        raise ValueError(f"max-repetitions {max_repetitions} out of 0..{MAX_INT32}")
    return (
        GET_REQUEST if max_repetitions is None else GET_BULK_REQUEST,
        request_id,
        0,
        max_repetitions or 0,
        tuple((oid, NULL, None) for oid in oids),
    )


def decode_varbinds(
    data: bytes, pos: int, end: int, request_id: int
) -> tuple[VarBind, ...]:
    out: list[VarBind] = []
    while pos < end:
        what = f"var-bind {len(out) + 1}"
        tag, start, stop = header(data, pos, end, request_id)
        expect(tag, SEQUENCE, what, pos, request_id)
        pos = stop
        tag, name_start, name_stop = header(data, start, stop, request_id)
        expect(tag, OBJECT_IDENTIFIER, f"{what} name", start, request_id)
        oid = decode_oid(data, name_start, name_stop, f"{what} name", request_id)
        tag, value_start, value_stop = header(data, name_stop, stop, request_id)
        if value_stop != stop:
            raise BerError(
                f"{what}: {stop - value_stop} bytes after its value", request_id
            )
        value: Value
        if tag in INT_RANGES:
            value = decode_integer(data, value_start, value_stop, tag, what, request_id)
        elif tag in BYTES_TAGS:
            value = data[value_start:value_stop]
            if tag == IP_ADDRESS and len(value) != 4:
                raise BerError(f"{what}: IpAddress of {len(value)} octets", request_id)
        elif tag in EMPTY_TAGS:
            if value_start != value_stop:
                raise BerError(
                    f"{what}: {type_name(tag)} with {value_stop - value_start} content octets",
                    request_id,
                )
            value = None
        elif tag == OBJECT_IDENTIFIER:
            value = decode_oid(data, value_start, value_stop, f"{what} value", request_id)
        else:
            raise BerError(f"{what}: unknown value tag 0x{tag:02x}", request_id)
        out.append((oid, tag, value))
    return tuple(out)


def decode_pdu_tail(
    data: bytes, pos: int, pdu_end: int, error_id: int | None, request_id: int
) -> tuple[int, int, tuple[VarBind, ...]]:
    """error-status, error-index and the var-bind list: the rest of a PDU after its
    request-id, filling it exactly. Errors carry ``error_id`` (the v2c request-id, the
    v3 msgID)."""
    tag, start, pos = header(data, pos, pdu_end, error_id)
    expect(tag, INTEGER, "error-status", start, error_id)
    error_status = decode_integer(data, start, pos, INTEGER, "error-status", error_id)
    tag, start, pos = header(data, pos, pdu_end, error_id)
    expect(tag, INTEGER, "error-index", start, error_id)
    error_index = decode_integer(data, start, pos, INTEGER, "error-index", error_id)
    tag, start, pos = header(data, pos, pdu_end, error_id)
    expect(tag, SEQUENCE, "var-bind list", start, error_id)
    if pos != pdu_end:
        raise BerError(f"{pdu_end - pos} bytes after the var-bind list", error_id)
    return error_status, error_index, decode_varbinds(data, start, pos, request_id)
