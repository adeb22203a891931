"""BER codec of SNMP v2c messages: pure, no I/O (RFC 1901 message, RFC 3416 PDUs).

The agent's v2c polling path encodes its GetRequest/GetBulkRequest here and decodes
the device's Response here; :mod:`agent.snmp_v2c` carries the bytes over UDP.

Var-binds come out in the agent's neutral form ``(oid, tag, value)``: ``tag`` the
BER tag byte of the value (``INTEGER`` ... ``END_OF_MIB_VIEW`` below), ``value`` an
``int`` for the numeric types, ``bytes`` for OCTET STRING / IpAddress / Opaque, an
OID tuple for OBJECT IDENTIFIER and ``None`` for NULL and the three exceptions.

The decoder trusts nothing in the datagram: every length is checked against what
is left of its enclosing value, long-form lengths are bounded (at most 4 length
octets), indefinite lengths and constructed/high-tag-number forms are rejected,
every integer is bounded to its type's range (and to 9 content octets before it is
converted), OIDs to 128 sub-identifiers of at most 2^32-1, and bytes after the
message are rejected. SNMP's grammar has a fixed depth, so decoding is a loop, not a
recursion. Anything wrong raises :class:`BerError` (a ``ValueError``), which says
what and where, and carries the request-id when the decoder got that far (so the
caller can tie the failure to its request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

Oid = tuple[int, ...]
Value = int | bytes | Oid | None
VarBind = tuple[Oid, int, Value]

# Universal and SNMP application tags (RFC 2578), context tags of the exceptions.
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
SEQUENCE: Final = 0x30
IP_ADDRESS: Final = 0x40
COUNTER32: Final = 0x41
GAUGE32: Final = 0x42  # also Unsigned32
TIMETICKS: Final = 0x43
OPAQUE: Final = 0x44
COUNTER64: Final = 0x46
NO_SUCH_OBJECT: Final = 0x80
NO_SUCH_INSTANCE: Final = 0x81
END_OF_MIB_VIEW: Final = 0x82

# PDU tags (context, constructed).
GET_REQUEST: Final = 0xA0
GET_NEXT_REQUEST: Final = 0xA1
RESPONSE: Final = 0xA2
SET_REQUEST: Final = 0xA3
GET_BULK_REQUEST: Final = 0xA5
INFORM_REQUEST: Final = 0xA6
SNMPV2_TRAP: Final = 0xA7
REPORT: Final = 0xA8

PDU_NAMES: Final = {
    GET_REQUEST: "GetRequest",
    GET_NEXT_REQUEST: "GetNextRequest",
    RESPONSE: "Response",
    SET_REQUEST: "SetRequest",
    GET_BULK_REQUEST: "GetBulkRequest",
    INFORM_REQUEST: "InformRequest",
    SNMPV2_TRAP: "SNMPv2-Trap",
    REPORT: "Report",
}
TYPE_NAMES: Final = {
    INTEGER: "Integer",
    OCTET_STRING: "OctetString",
    NULL: "Null",
    OBJECT_IDENTIFIER: "ObjectIdentifier",
    IP_ADDRESS: "IpAddress",
    COUNTER32: "Counter32",
    GAUGE32: "Gauge32",
    TIMETICKS: "TimeTicks",
    OPAQUE: "Opaque",
    COUNTER64: "Counter64",
    NO_SUCH_OBJECT: "NoSuchObject",
    NO_SUCH_INSTANCE: "NoSuchInstance",
    END_OF_MIB_VIEW: "EndOfMibView",
}

VERSION_1: Final = 0
VERSION_2C: Final = 1

MAX_INT32: Final = 2**31 - 1
MIN_INT32: Final = -(2**31)
MAX_U32: Final = 2**32 - 1
MAX_U64: Final = 2**64 - 1
MAX_SUBID: Final = 2**32 - 1
MAX_OID_LENGTH: Final = 128  # sub-identifiers (RFC 2578 section 3.5)
MAX_LENGTH_OCTETS: Final = 4  # long-form length octets accepted
MAX_MESSAGE_OCTETS: Final = 65_535  # the largest UDP payload
_MAX_INT_OCTETS: Final = 9  # Counter64 2^64-1 needs 9 (a leading zero)

_INT_RANGES: Final = {
    INTEGER: (MIN_INT32, MAX_INT32),
    COUNTER32: (0, MAX_U32),
    GAUGE32: (0, MAX_U32),
    TIMETICKS: (0, MAX_U32),
    COUNTER64: (0, MAX_U64),
}
_BYTES_TAGS: Final = frozenset({OCTET_STRING, IP_ADDRESS, OPAQUE})
_EMPTY_TAGS: Final = frozenset({NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
_PDU_TAGS: Final = frozenset(PDU_NAMES)


class BerError(ValueError):
    """A message that is not a well-formed SNMP v1/v2c message.

    ``request_id`` is the message's request-id when decoding got that far, else None.
    """

    def __init__(self, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


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


def type_name(tag: int) -> str:
    return TYPE_NAMES.get(tag, f"tag 0x{tag:02x}")


# --------------------------------------------------------------------------- encoding


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer_body(n: int) -> bytes:
    return n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True)


def encode_oid(oid: Oid) -> bytes:
    """The content octets of an OBJECT IDENTIFIER; ValueError when it cannot be one."""
    if len(oid) < 2 or len(oid) > MAX_OID_LENGTH:
        raise ValueError(f"OID needs 2..{MAX_OID_LENGTH} sub-identifiers, has {len(oid)}")
    first, second = oid[0], oid[1]
    if first not in (0, 1, 2) or (first < 2 and not 0 <= second < 40):
        raise ValueError(f"OID cannot start {first}.{second}")
    out = bytearray()
    for sub in (40 * first + second, *oid[2:]):
        if not 0 <= sub <= MAX_SUBID:
            raise ValueError(f"OID sub-identifier {sub} out of 0..{MAX_SUBID}")
        if sub < 0x80:
            out.append(sub)
            continue
        chunk = [sub & 0x7F]
        sub >>= 7
        while sub:
            chunk.append(0x80 | (sub & 0x7F))
            sub >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def encode_value(tag: int, value: Value) -> bytes:
    """One value TLV; ValueError when ``value`` does not fit ``tag``."""
    if tag in _INT_RANGES:
        low, high = _INT_RANGES[tag]
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{type_name(tag)} needs an int in {low}..{high}, got {value!r}")
        return _tlv(tag, _integer_body(value))
    if tag in _BYTES_TAGS:
        if not isinstance(value, bytes) or (tag == IP_ADDRESS and len(value) != 4):
            raise ValueError(f"{type_name(tag)} needs bytes, got {value!r}")
        return _tlv(tag, value)
    if tag == OBJECT_IDENTIFIER:
        if not isinstance(value, tuple):
            raise ValueError(f"ObjectIdentifier needs a tuple, got {value!r}")
        return _tlv(tag, encode_oid(value))
    if tag in _EMPTY_TAGS:
        return bytes((tag, 0))
    raise ValueError(f"cannot encode tag 0x{tag:02x}")


def encode_message(message: Message) -> bytes:
    varbinds = b"".join(
        _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, encode_oid(oid)) + encode_value(tag, value))
        for oid, tag, value in message.varbinds
    )
    pdu = (
        _tlv(INTEGER, _integer_body(message.request_id))
        + _tlv(INTEGER, _integer_body(message.error_status))
        + _tlv(INTEGER, _integer_body(message.error_index))
        + _tlv(SEQUENCE, varbinds)
    )
    return _tlv(
        SEQUENCE,
        _tlv(INTEGER, _integer_body(message.version))
        + _tlv(OCTET_STRING, message.community)
        + _tlv(message.pdu_tag, pdu),
    )


def encode_request(
    community: bytes, request_id: int, oids: Sequence[Oid], max_repetitions: int | None
) -> bytes:
    """A v2c GetRequest (``max_repetitions`` None) or GetBulkRequest (non-repeaters 0)."""
    if not 0 <= request_id <= MAX_INT32:
        raise ValueError(f"request-id {request_id} out of 0..{MAX_INT32}")
    bulk = max_repetitions is not None
    if max_repetitions is not None and not 0 <= max_repetitions <= MAX_INT32:
        raise ValueError(f"max-repetitions {max_repetitions} out of 0..{MAX_INT32}")
    return encode_message(
        Message(
            version=VERSION_2C,
            community=community,
            pdu_tag=GET_BULK_REQUEST if bulk else GET_REQUEST,
            request_id=request_id,
            error_status=0,
            error_index=max_repetitions if max_repetitions is not None else 0,
            varbinds=tuple((oid, NULL, None) for oid in oids),
        )
    )


# --------------------------------------------------------------------------- decoding


def _header(
    data: bytes, pos: int, end: int, request_id: int | None, *, clamp: bool = False
) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the TLV at ``pos``, inside ``[pos, end)``.

    ``clamp``: a content end past ``end`` is returned, not raised (the caller judges it).
    """
    if pos + 2 > end:
        raise BerError(f"truncated: value header at byte {pos} needs 2 bytes", request_id)
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        octets = length & 0x7F
        if octets == 0:
            raise BerError(f"indefinite length at byte {pos - 1}", request_id)
        if octets > MAX_LENGTH_OCTETS:
            raise BerError(f"length of {octets} octets at byte {pos - 1}", request_id)
        if pos + octets > end:
            raise BerError(f"truncated: length octets at byte {pos}", request_id)
        length = int.from_bytes(data[pos : pos + octets], "big")
        pos += octets
    stop = pos + length
    if stop > end and not clamp:
        raise BerError(
            f"length {length} at byte {pos} runs past its container ({end - pos} bytes left)",
            request_id,
        )
    return tag, pos, stop


def _expect(tag: int, want: int, what: str, pos: int, request_id: int | None) -> None:
    if tag != want:
        raise BerError(
            f"{what} at byte {pos}: expected tag 0x{want:02x}, got 0x{tag:02x}", request_id
        )


def _integer(
    data: bytes, start: int, stop: int, tag: int, what: str, request_id: int | None
) -> int:
    if start == stop:
        raise BerError(f"{what}: empty {type_name(tag)}", request_id)
    if stop - start > _MAX_INT_OCTETS:
        raise BerError(f"{what}: {type_name(tag)} of {stop - start} octets", request_id)
    number = int.from_bytes(data[start:stop], "big", signed=True)
    low, high = _INT_RANGES[tag]
    if not low <= number <= high:
        raise BerError(f"{what}: {type_name(tag)} {number} out of {low}..{high}", request_id)
    return number


def _oid(data: bytes, start: int, stop: int, what: str, request_id: int | None) -> Oid:
    if start == stop:
        raise BerError(f"{what}: empty OID", request_id)
    chunk = data[start:stop]
    if max(chunk) < 0x80:  # every sub-identifier one octet: the common case
        if len(chunk) + 1 > MAX_OID_LENGTH:
            raise BerError(f"{what}: OID longer than {MAX_OID_LENGTH} sub-identifiers", request_id)
        first = chunk[0]
        head = (first // 40, first % 40) if first < 80 else (2, first - 80)
        return head + tuple(chunk[1:])
    subs: list[int] = []
    sub = 0
    continued = False
    for byte in chunk:
        if not continued and byte == 0x80:
            raise BerError(f"{what}: OID sub-identifier with a leading 0x80 octet", request_id)
        sub = (sub << 7) | (byte & 0x7F)
        if sub > MAX_SUBID + 80:  # +80: the first sub-identifier carries 2.x as 80+x
            raise BerError(f"{what}: OID sub-identifier above {MAX_SUBID}", request_id)
        if byte & 0x80:
            continued = True
            continue
        subs.append(sub)
        sub = 0
        continued = False
        if len(subs) + 1 > MAX_OID_LENGTH:
            raise BerError(f"{what}: OID longer than {MAX_OID_LENGTH} sub-identifiers", request_id)
    if continued:
        raise BerError(f"{what}: OID ends inside a sub-identifier", request_id)
    first = subs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    if any(s > MAX_SUBID for s in subs[1:]):
        raise BerError(f"{what}: OID sub-identifier above {MAX_SUBID}", request_id)
    return head + tuple(subs[1:])


def _varbinds(
    data: bytes, pos: int, end: int, request_id: int
) -> tuple[VarBind, ...]:
    out: list[VarBind] = []
    while pos < end:
        what = f"var-bind {len(out) + 1}"
        tag, start, stop = _header(data, pos, end, request_id)
        _expect(tag, SEQUENCE, what, pos, request_id)
        pos = stop
        tag, name_start, name_stop = _header(data, start, stop, request_id)
        _expect(tag, OBJECT_IDENTIFIER, f"{what} name", start, request_id)
        oid = _oid(data, name_start, name_stop, f"{what} name", request_id)
        tag, value_start, value_stop = _header(data, name_stop, stop, request_id)
        if value_stop != stop:
            raise BerError(
                f"{what}: {stop - value_stop} bytes after its value", request_id
            )
        value: Value
        if tag in _INT_RANGES:
            value = _integer(data, value_start, value_stop, tag, what, request_id)
        elif tag in _BYTES_TAGS:
            value = data[value_start:value_stop]
            if tag == IP_ADDRESS and len(value) != 4:
                raise BerError(f"{what}: IpAddress of {len(value)} octets", request_id)
        elif tag in _EMPTY_TAGS:
            if value_start != value_stop:
                raise BerError(
                    f"{what}: {type_name(tag)} with {value_stop - value_start} content octets",
                    request_id,
                )
            value = None
        elif tag == OBJECT_IDENTIFIER:
            value = _oid(data, value_start, value_stop, f"{what} value", request_id)
        else:
            raise BerError(f"{what}: unknown value tag 0x{tag:02x}", request_id)
        out.append((oid, tag, value))
    return tuple(out)


def _outer(data: bytes) -> tuple[int, int, str | None]:
    """The message SEQUENCE: (start of its content, its end within the datagram, the
    framing problem to raise once the request id is known - truncated or padded)."""
    end = len(data)
    if end > MAX_MESSAGE_OCTETS:
        raise BerError(f"message of {end} bytes")
    tag, pos, stop = _header(data, 0, end, None, clamp=True)
    _expect(tag, SEQUENCE, "message", 0, None)
    problem: str | None = None
    if stop > end:
        problem = f"truncated: the message says {stop} bytes, the datagram has {end}"
    elif stop < end:
        problem = f"{end - stop} bytes of trailing garbage after the message"
    return pos, min(stop, end), problem


def decode_message(data: bytes) -> Message:
    """Decode one SNMP v1/v2c message (any PDU but the v1 Trap); raises :class:`BerError`.

    The version, community and PDU type are returned, not judged: that is the
    caller's business (it knows what it asked whom).
    """
    # The message's and the PDU's own lengths are checked once the request-id is read,
    # so that a truncated or padded answer can still be tied to its request.
    pos, end, problem = _outer(data)
    tag, start, pos = _header(data, pos, end, None)
    _expect(tag, INTEGER, "version", start, None)
    version = _integer(data, start, pos, INTEGER, "version", None)
    tag, start, pos = _header(data, pos, end, None)
    _expect(tag, OCTET_STRING, "community", start, None)
    community = data[start:pos]
    pdu_at = pos
    pdu_tag, pos, pdu_end = _header(data, pos, end, None, clamp=True)
    if pdu_tag not in _PDU_TAGS:
        raise BerError(f"PDU at byte {pdu_at}: unknown PDU tag 0x{pdu_tag:02x}")
    if problem is None and pdu_end != end:
        problem = f"the PDU ends {pdu_end - end:+d} bytes from the message's end"
    pdu_end = min(pdu_end, end)
    tag, start, pos = _header(data, pos, pdu_end, None)
    _expect(tag, INTEGER, "request-id", start, None)
    request_id = _integer(data, start, pos, INTEGER, "request-id", None)
    if problem is not None:
        raise BerError(problem, request_id)
    error_status, error_index, varbinds = _pdu_tail(data, pos, pdu_end, request_id, request_id)
    return Message(
        version=version,
        community=community,
        pdu_tag=pdu_tag,
        request_id=request_id,
        error_status=error_status,
        error_index=error_index,
        varbinds=varbinds,
    )


def _pdu_tail(
    data: bytes, pos: int, pdu_end: int, error_id: int | None, request_id: int
) -> tuple[int, int, tuple[VarBind, ...]]:
    """error-status, error-index and the var-bind list: the rest of a PDU after its
    request-id, filling it exactly. Errors carry ``error_id`` (the v2c request-id, the
    v3 msgID)."""
    tag, start, pos = _header(data, pos, pdu_end, error_id)
    _expect(tag, INTEGER, "error-status", start, error_id)
    error_status = _integer(data, start, pos, INTEGER, "error-status", error_id)
    tag, start, pos = _header(data, pos, pdu_end, error_id)
    _expect(tag, INTEGER, "error-index", start, error_id)
    error_index = _integer(data, start, pos, INTEGER, "error-index", error_id)
    tag, start, pos = _header(data, pos, pdu_end, error_id)
    _expect(tag, SEQUENCE, "var-bind list", start, error_id)
    if pos != pdu_end:
        raise BerError(f"{pdu_end - pos} bytes after the var-bind list", error_id)
    return error_status, error_index, _varbinds(data, start, pos, request_id)


# --------------------------------------------------------------------------- SNMPv3
#
# RFC 3412 message, RFC 3414 USM security parameters, RFC 3412 ScopedPDU. Only the
# framing lives here (pure, no crypto): agent.usm authenticates and encrypts.

VERSION_3: Final = 3
USM_SECURITY_MODEL: Final = 3
FLAG_AUTH: Final = 0x01
FLAG_PRIV: Final = 0x02
FLAG_REPORTABLE: Final = 0x04
MAX_ENGINE_ID_OCTETS: Final = 32  # SnmpEngineID is 5..32 octets (RFC 3411); 0 in a probe
MAX_USER_NAME_OCTETS: Final = 32
MAX_SECURITY_PARAM_OCTETS: Final = 64  # authentication (<= 48) and privacy (8) parameters
MSG_MAX_SIZE: Final = 65_507  # what we announce: the largest UDP/IPv4 payload
_MIN_MSG_MAX_SIZE: Final = 484  # RFC 3412 msgMaxSize (484..2^31-1)


@dataclass(frozen=True, slots=True)
class ScopedPdu:
    """A ScopedPDU (RFC 3412) with its PDU; for a GetBulkRequest ``error_status`` is
    non-repeaters and ``error_index`` max-repetitions."""

    context_engine_id: bytes
    context_name: bytes
    pdu_tag: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: tuple[VarBind, ...]


@dataclass(frozen=True, slots=True)
class V3Message:
    """One SNMPv3 message with USM security parameters.

    ``scoped_pdu`` is the plaintext ScopedPDU, or None when the message is encrypted:
    then ``encrypted`` holds the ciphertext. ``auth_offset`` is where the
    authentication parameters' content octets start in the datagram (to zero them
    when the digest is checked).
    """

    msg_id: int
    max_size: int
    flags: int
    engine_id: bytes
    engine_boots: int
    engine_time: int
    user_name: bytes
    auth_params: bytes
    auth_offset: int
    priv_params: bytes
    scoped_pdu: ScopedPdu | None
    encrypted: bytes | None


def _pdu_tlv(
    pdu_tag: int,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: Sequence[VarBind],
) -> bytes:
    body = b"".join(
        _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, encode_oid(oid)) + encode_value(tag, value))
        for oid, tag, value in varbinds
    )
    return _tlv(
        pdu_tag,
        _tlv(INTEGER, _integer_body(request_id))
        + _tlv(INTEGER, _integer_body(error_status))
        + _tlv(INTEGER, _integer_body(error_index))
        + _tlv(SEQUENCE, body),
    )


def encode_scoped_pdu(scoped: ScopedPdu) -> bytes:
    """A ScopedPDU's TLV: the plaintext that is sent as is or encrypted."""
    return _tlv(
        SEQUENCE,
        _tlv(OCTET_STRING, scoped.context_engine_id)
        + _tlv(OCTET_STRING, scoped.context_name)
        + _pdu_tlv(
            scoped.pdu_tag,
            scoped.request_id,
            scoped.error_status,
            scoped.error_index,
            scoped.varbinds,
        ),
    )


def encode_scoped_request(
    context_engine_id: bytes, request_id: int, oids: Sequence[Oid], max_repetitions: int | None
) -> bytes:
    """A GetRequest (``max_repetitions`` None) or GetBulkRequest ScopedPDU (empty context)."""
    if not 0 <= request_id <= MAX_INT32:
        raise ValueError(f"request-id {request_id} out of 0..{MAX_INT32}")
    if max_repetitions is not None and not 0 <= max_repetitions <= MAX_INT32:
        raise ValueError(f"max-repetitions {max_repetitions} out of 0..{MAX_INT32}")
    return encode_scoped_pdu(
        ScopedPdu(
            context_engine_id=context_engine_id,
            context_name=b"",
            pdu_tag=GET_REQUEST if max_repetitions is None else GET_BULK_REQUEST,
            request_id=request_id,
            error_status=0,
            error_index=max_repetitions or 0,
            varbinds=tuple((oid, NULL, None) for oid in oids),
        )
    )


def encode_v3_message(
    *,
    msg_id: int,
    flags: int,
    engine_id: bytes,
    engine_boots: int,
    engine_time: int,
    user_name: bytes,
    auth_params: bytes,
    priv_params: bytes,
    msg_data: bytes,
    max_size: int = MSG_MAX_SIZE,
) -> tuple[bytes, int]:
    """``(message, offset of the authentication parameters' content octets)``.

    ``msg_data`` is the plaintext ScopedPDU TLV, or the ciphertext (it is wrapped in
    an OCTET STRING here when ``flags`` has :data:`FLAG_PRIV`).
    """
    if not 0 <= msg_id <= MAX_INT32:
        raise ValueError(f"msgID {msg_id} out of 0..{MAX_INT32}")
    if not 0 <= engine_boots <= MAX_INT32 or not 0 <= engine_time <= MAX_INT32:
        raise ValueError("engine boots/time out of 0..2^31-1")
    if len(engine_id) > MAX_ENGINE_ID_OCTETS or len(user_name) > MAX_USER_NAME_OCTETS:
        raise ValueError("engine ID or user name longer than 32 octets")
    global_data = _tlv(
        SEQUENCE,
        _tlv(INTEGER, _integer_body(msg_id))
        + _tlv(INTEGER, _integer_body(max_size))
        + _tlv(OCTET_STRING, bytes((flags,)))
        + _tlv(INTEGER, _integer_body(USM_SECURITY_MODEL)),
    )
    priv_tlv = _tlv(OCTET_STRING, priv_params)
    usm = _tlv(
        SEQUENCE,
        _tlv(OCTET_STRING, engine_id)
        + _tlv(INTEGER, _integer_body(engine_boots))
        + _tlv(INTEGER, _integer_body(engine_time))
        + _tlv(OCTET_STRING, user_name)
        + _tlv(OCTET_STRING, auth_params)
        + priv_tlv,
    )
    data_tlv = _tlv(OCTET_STRING, msg_data) if flags & FLAG_PRIV else msg_data
    message = _tlv(
        SEQUENCE,
        _tlv(INTEGER, _integer_body(VERSION_3))
        + global_data
        + _tlv(OCTET_STRING, usm)
        + data_tlv,
    )
    # The security parameters end right before msgData; the auth parameters' content
    # right before the privacy parameters' TLV.
    return message, len(message) - len(data_tlv) - len(priv_tlv) - len(auth_params)


def _octets(
    data: bytes, pos: int, end: int, what: str, msg_id: int | None, limit: int
) -> tuple[bytes, int, int]:
    """``(content, content start, next position)`` of an OCTET STRING of <= ``limit``."""
    tag, start, stop = _header(data, pos, end, msg_id)
    _expect(tag, OCTET_STRING, what, pos, msg_id)
    if stop - start > limit:
        raise BerError(f"{what}: {stop - start} octets, at most {limit} allowed", msg_id)
    return data[start:stop], start, stop


def _int_field(
    data: bytes, pos: int, end: int, what: str, msg_id: int | None, low: int, high: int
) -> tuple[int, int]:
    tag, start, stop = _header(data, pos, end, msg_id)
    _expect(tag, INTEGER, what, pos, msg_id)
    number = _integer(data, start, stop, INTEGER, what, msg_id)
    if not low <= number <= high:
        raise BerError(f"{what}: {number} out of {low}..{high}", msg_id)
    return number, stop


def decode_scoped_pdu(
    data: bytes, msg_id: int | None = None, *, padded: bool = False
) -> ScopedPdu:
    """Decode a plaintext ScopedPDU; raises :class:`BerError`.

    ``padded``: bytes after the ScopedPDU are ignored (decrypted data may carry
    padding, RFC 3414 8.3.2); otherwise they are an error.
    """
    end = len(data)
    if end > MAX_MESSAGE_OCTETS:
        raise BerError(f"ScopedPDU of {end} bytes", msg_id)
    tag, pos, stop = _header(data, 0, end, msg_id)
    _expect(tag, SEQUENCE, "ScopedPDU", 0, msg_id)
    if stop != end and not padded:
        raise BerError(f"{end - stop} bytes after the ScopedPDU", msg_id)
    return _scoped_pdu_body(data, pos, stop, msg_id)


def _scoped_pdu_body(data: bytes, pos: int, end: int, msg_id: int | None) -> ScopedPdu:
    context_engine_id, _, pos = _octets(
        data, pos, end, "contextEngineID", msg_id, MAX_ENGINE_ID_OCTETS
    )
    context_name, _, pos = _octets(data, pos, end, "contextName", msg_id, 255)
    pdu_at = pos
    pdu_tag, pos, pdu_end = _header(data, pos, end, msg_id)
    if pdu_tag not in _PDU_TAGS:
        raise BerError(f"PDU at byte {pdu_at}: unknown PDU tag 0x{pdu_tag:02x}", msg_id)
    if pdu_end != end:
        raise BerError(f"{end - pdu_end} bytes after the PDU", msg_id)
    request_id, pos = _int_field(data, pos, pdu_end, "request-id", msg_id, MIN_INT32, MAX_INT32)
    error_status, error_index, varbinds = _pdu_tail(data, pos, pdu_end, msg_id, request_id)
    return ScopedPdu(
        context_engine_id=context_engine_id,
        context_name=context_name,
        pdu_tag=pdu_tag,
        request_id=request_id,
        error_status=error_status,
        error_index=error_index,
        varbinds=varbinds,
    )


def decode_v3_message(data: bytes) -> V3Message:
    """Decode one SNMPv3/USM message (the ScopedPDU too when it is in plaintext).

    Raises :class:`BerError`, carrying the msgID (as ``request_id``) once it is read.
    Nothing is judged but the grammar and the ranges: flags, engine and user are the
    caller's (it knows what it asked whom).
    """
    pos, end, problem = _outer(data)
    version, pos = _int_field(data, pos, end, "version", None, VERSION_3, VERSION_3)
    tag, global_start, global_end = _header(data, pos, end, None)
    _expect(tag, SEQUENCE, "msgGlobalData", pos, None)
    msg_id, pos = _int_field(data, global_start, global_end, "msgID", None, 0, MAX_INT32)
    if problem is not None:
        raise BerError(problem, msg_id)
    max_size, pos = _int_field(
        data, pos, global_end, "msgMaxSize", msg_id, _MIN_MSG_MAX_SIZE, MAX_INT32
    )
    flags_octets, _, pos = _octets(data, pos, global_end, "msgFlags", msg_id, 1)
    if len(flags_octets) != 1:
        raise BerError("msgFlags: empty", msg_id)
    flags = flags_octets[0]
    if flags & FLAG_PRIV and not flags & FLAG_AUTH:
        raise BerError("msgFlags: privacy without authentication", msg_id)
    model, pos = _int_field(data, pos, global_end, "msgSecurityModel", msg_id, 1, MAX_INT32)
    if model != USM_SECURITY_MODEL:
        raise BerError(f"msgSecurityModel {model}, not USM (3)", msg_id)
    if pos != global_end:
        raise BerError(f"{global_end - pos} bytes after msgGlobalData", msg_id)
    # msgSecurityParameters: an OCTET STRING wrapping UsmSecurityParameters.
    tag, usm_start, usm_end = _header(data, global_end, end, msg_id)
    _expect(tag, OCTET_STRING, "msgSecurityParameters", global_end, msg_id)
    data_at = usm_end
    tag, pos, seq_end = _header(data, usm_start, usm_end, msg_id)
    _expect(tag, SEQUENCE, "UsmSecurityParameters", usm_start, msg_id)
    if seq_end != usm_end:
        raise BerError(f"{usm_end - seq_end} bytes after UsmSecurityParameters", msg_id)
    engine_id, _, pos = _octets(
        data, pos, seq_end, "msgAuthoritativeEngineID", msg_id, MAX_ENGINE_ID_OCTETS
    )
    engine_boots, pos = _int_field(
        data, pos, seq_end, "msgAuthoritativeEngineBoots", msg_id, 0, MAX_INT32
    )
    engine_time, pos = _int_field(
        data, pos, seq_end, "msgAuthoritativeEngineTime", msg_id, 0, MAX_INT32
    )
    user_name, _, pos = _octets(data, pos, seq_end, "msgUserName", msg_id, MAX_USER_NAME_OCTETS)
    auth_params, auth_offset, pos = _octets(
        data, pos, seq_end, "msgAuthenticationParameters", msg_id, MAX_SECURITY_PARAM_OCTETS
    )
    priv_params, _, pos = _octets(
        data, pos, seq_end, "msgPrivacyParameters", msg_id, MAX_SECURITY_PARAM_OCTETS
    )
    if pos != seq_end:
        raise BerError(f"{seq_end - pos} bytes after msgPrivacyParameters", msg_id)
    # msgData: a ScopedPDU, or an OCTET STRING of ciphertext.
    tag, start, stop = _header(data, data_at, end, msg_id)
    if stop != end:
        raise BerError(f"{end - stop} bytes after msgData", msg_id)
    scoped: ScopedPdu | None = None
    encrypted: bytes | None = None
    if flags & FLAG_PRIV:
        _expect(tag, OCTET_STRING, "encryptedPDU", data_at, msg_id)
        encrypted = data[start:stop]
    else:
        _expect(tag, SEQUENCE, "ScopedPDU", data_at, msg_id)
        scoped = _scoped_pdu_body(data, start, stop, msg_id)
    del version
    return V3Message(
        msg_id=msg_id,
        max_size=max_size,
        flags=flags,
        engine_id=engine_id,
        engine_boots=engine_boots,
        engine_time=engine_time,
        user_name=user_name,
        auth_params=auth_params,
        auth_offset=auth_offset,
        priv_params=priv_params,
        scoped_pdu=scoped,
        encrypted=encrypted,
    )
