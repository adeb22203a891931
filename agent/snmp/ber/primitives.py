"""BER primitives of SNMP: tags, limits, TLV encoding, and the distrustful TLV reader. Pure.

What every SNMP message (v1/v2c, :mod:`agent.snmp.ber.v2c`; v3,
:mod:`agent.snmp.ber.v3`) and its PDU (:mod:`agent.snmp.ber.pdu`) are built from.

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

INT_RANGES: Final = {
    INTEGER: (MIN_INT32, MAX_INT32),
    COUNTER32: (0, MAX_U32),
    GAUGE32: (0, MAX_U32),
    TIMETICKS: (0, MAX_U32),
    COUNTER64: (0, MAX_U64),
}
BYTES_TAGS: Final = frozenset({OCTET_STRING, IP_ADDRESS, OPAQUE})
EMPTY_TAGS: Final = frozenset({NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
PDU_TAGS: Final = frozenset(PDU_NAMES)


class BerError(ValueError):
    """A message that is not a well-formed SNMP message.

    ``request_id`` is the message's request-id when decoding got that far, else None.
    """

    def __init__(self, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def type_name(tag: int) -> str:
    return TYPE_NAMES.get(tag, f"tag 0x{tag:02x}")


# --------------------------------------------------------------------------- encoding


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(body)) + body


def integer_body(n: int) -> bytes:
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
    if tag in INT_RANGES:
        low, high = INT_RANGES[tag]
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{type_name(tag)} needs an int in {low}..{high}, got {value!r}")
        return tlv(tag, integer_body(value))
    if tag in BYTES_TAGS:
        if not isinstance(value, bytes) or (tag == IP_ADDRESS and len(value) != 4):
            raise ValueError(f"{type_name(tag)} needs bytes, got {value!r}")
        return tlv(tag, value)
    if tag == OBJECT_IDENTIFIER:
        if not isinstance(value, tuple):
            raise ValueError(f"ObjectIdentifier needs a tuple, got {value!r}")
        return tlv(tag, encode_oid(value))
    if tag in EMPTY_TAGS:
        return bytes((tag, 0))
    raise ValueError(f"cannot encode tag 0x{tag:02x}")


# --------------------------------------------------------------------------- decoding


def header(
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


def expect(tag: int, want: int, what: str, pos: int, request_id: int | None) -> None:
    if tag != want:
        raise BerError(
            f"{what} at byte {pos}: expected tag 0x{want:02x}, got 0x{tag:02x}", request_id
        )


def decode_integer(
    data: bytes, start: int, stop: int, tag: int, what: str, request_id: int | None
) -> int:
    if start == stop:
        raise BerError(f"{what}: empty {type_name(tag)}", request_id)
    if stop - start > _MAX_INT_OCTETS:
        raise BerError(f"{what}: {type_name(tag)} of {stop - start} octets", request_id)
    number = int.from_bytes(data[start:stop], "big", signed=True)
    low, high = INT_RANGES[tag]
    if not low <= number <= high:
        raise BerError(f"{what}: {type_name(tag)} {number} out of {low}..{high}", request_id)
    return number


def decode_oid(data: bytes, start: int, stop: int, what: str, request_id: int | None) -> Oid:
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


def outer(data: bytes) -> tuple[int, int, str | None]:
    """The message SEQUENCE: (start of its content, its end within the datagram, the
    framing problem to raise once the request id is known - truncated or padded)."""
    end = len(data)
    if end > MAX_MESSAGE_OCTETS:
        raise BerError(f"message of {end} bytes")
    tag, pos, stop = header(data, 0, end, None, clamp=True)
    expect(tag, SEQUENCE, "message", 0, None)
    problem: str | None = None
    if stop > end:
        problem = f"truncated: the message says {stop} bytes, the datagram has {end}"
    elif stop < end:
        problem = f"{end - stop} bytes of trailing garbage after the message"
    return pos, min(stop, end), problem
