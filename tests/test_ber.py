"""agent.snmp.ber: known vectors against pyasn1/pysnmp (the oracle), round trips, and fuzzing.

The decoder may only ever return a Message or raise BerError - for any input.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]  # no stubs
from pysnmp.proto import api, rfc1902, rfc1905

from agent.snmp import ber
from agent.snmp.ber import BerError, Message, VarBind

PROTO = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
IF_DESCR_1 = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 1)


# ------------------------------------------------------------------ the oracle


def pyasn1_value(tag: int, value: ber.Value) -> Any:
    return {
        ber.INTEGER: lambda: rfc1902.Integer32(value),
        ber.OCTET_STRING: lambda: rfc1902.OctetString(value),
        ber.NULL: lambda: rfc1902.Null(""),
        ber.OBJECT_IDENTIFIER: lambda: rfc1902.ObjectIdentifier(value),
        ber.IP_ADDRESS: lambda: rfc1902.IpAddress(value),
        ber.COUNTER32: lambda: rfc1902.Counter32(value),
        ber.GAUGE32: lambda: rfc1902.Gauge32(value),
        ber.TIMETICKS: lambda: rfc1902.TimeTicks(value),
        ber.OPAQUE: lambda: rfc1902.Opaque(value),
        ber.COUNTER64: lambda: rfc1902.Counter64(value),
        ber.NO_SUCH_OBJECT: lambda: rfc1905.NoSuchObject(),
        ber.NO_SUCH_INSTANCE: lambda: rfc1905.NoSuchInstance(),
        ber.END_OF_MIB_VIEW: lambda: rfc1905.EndOfMibView(),
    }[tag]()


def pyasn1_encode(message: Message) -> bytes:
    """The same message as pysnmp would put it on the wire."""
    pdu_class = {
        ber.GET_REQUEST: PROTO.GetRequestPDU,
        ber.GET_BULK_REQUEST: PROTO.GetBulkRequestPDU,
        ber.RESPONSE: PROTO.ResponsePDU,
    }[message.pdu_tag]
    pdu = pdu_class()
    if message.pdu_tag == ber.GET_BULK_REQUEST:
        PROTO.apiBulkPDU.set_defaults(pdu)
        PROTO.apiBulkPDU.set_request_id(pdu, message.request_id)
        PROTO.apiBulkPDU.set_non_repeaters(pdu, message.error_status)
        PROTO.apiBulkPDU.set_max_repetitions(pdu, message.error_index)
    else:
        PROTO.apiPDU.set_defaults(pdu)
        PROTO.apiPDU.set_request_id(pdu, message.request_id)
        PROTO.apiPDU.set_error_status(pdu, message.error_status)
        PROTO.apiPDU.set_error_index(pdu, message.error_index)
    PROTO.apiPDU.set_varbinds(
        pdu, [(oid, pyasn1_value(tag, value)) for oid, tag, value in message.varbinds]
    )
    msg = PROTO.Message()
    PROTO.apiMessage.set_defaults(msg)
    PROTO.apiMessage.set_community(msg, message.community)
    PROTO.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def pyasn1_varbinds(data: bytes) -> list[VarBind]:
    msg, rest = decoder.decode(data, asn1Spec=PROTO.Message())
    assert rest == b""
    pdu = PROTO.apiMessage.get_pdu(msg)
    out: list[VarBind] = []
    for name, value in PROTO.apiPDU.get_varbinds(pdu):
        tag_of = value.tagSet[0]
        tag = int(tag_of.tagClass | tag_of.tagFormat | tag_of.tagId)
        converted: ber.Value
        if tag in (ber.OCTET_STRING, ber.IP_ADDRESS, ber.OPAQUE):
            converted = bytes(value.asOctets())
        elif tag == ber.OBJECT_IDENTIFIER:
            converted = tuple(value)
        elif tag in (ber.NULL, ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE, ber.END_OF_MIB_VIEW):
            converted = None
        else:
            converted = int(value)
        out.append((tuple(name), tag, converted))
    return out


ALL_TYPES: tuple[VarBind, ...] = (
    ((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.TIMETICKS, 4_294_967_295),
    (IF_DESCR_1, ber.OCTET_STRING, b"ge-0/0/1\x00\xff"),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1), ber.INTEGER, -2_147_483_648),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1), ber.INTEGER, 2_147_483_647),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), ber.COUNTER32, 4_294_967_295),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 5, 1), ber.GAUGE32, 128),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), ber.COUNTER64, 2**64 - 1),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, 1), ber.COUNTER64, 0),
    ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), ber.IP_ADDRESS, b"\x0a\x00\x00\x01"),
    ((1, 3, 6, 1, 4, 1, 99999, 4294967295), ber.OPAQUE, b"\x9f\x78\x04"),
    ((1, 3, 6, 1, 2, 1, 1, 2, 0), ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)),
    ((2, 999, 3), ber.NULL, None),
    ((1, 3, 6, 1, 2, 1, 99, 1), ber.NO_SUCH_OBJECT, None),
    ((1, 3, 6, 1, 2, 1, 99, 2), ber.NO_SUCH_INSTANCE, None),
    ((1, 3, 6, 1, 2, 1, 99, 3), ber.END_OF_MIB_VIEW, None),
)


def response(varbinds: tuple[VarBind, ...] = ALL_TYPES, **kw: Any) -> Message:
    fields: dict[str, Any] = {
        "version": 1, "community": b"public", "pdu_tag": ber.RESPONSE,
        "request_id": 0x1234_5678, "error_status": 0, "error_index": 0, "varbinds": varbinds,
    }
    return Message(**{**fields, **kw})


# ------------------------------------------------------------------ known vectors


@pytest.mark.parametrize("max_repetitions", [None, 0, 25, 300])
@pytest.mark.parametrize("request_id", [0, 1, 127, 128, 0x7FFF_FFFF])
def test_requests_are_byte_identical_to_pysnmps(
    max_repetitions: int | None, request_id: int
) -> None:
    oids = [(1, 3, 6, 1, 2, 1, 1, 3, 0), IF_DESCR_1, (1, 3, 6, 1, 4, 1, 2636, 3, 1, 13, 1, 5)]
    ours = ber.encode_request(b"s3cret-community", request_id, oids, max_repetitions)
    bulk = max_repetitions is not None
    expected = pyasn1_encode(
        Message(1, b"s3cret-community", ber.GET_BULK_REQUEST if bulk else ber.GET_REQUEST,
                request_id, 0, max_repetitions or 0,
                tuple((oid, ber.NULL, None) for oid in oids))
    )
    assert ours == expected


def test_a_response_with_every_type_matches_pysnmp_both_ways() -> None:
    message = response()
    wire = pyasn1_encode(message)
    assert ber.decode_message(wire) == message  # pysnmp's bytes, our decoder
    assert ber.encode_message(message) == wire  # our bytes are pysnmp's bytes
    assert pyasn1_varbinds(ber.encode_message(message)) == list(ALL_TYPES)


def test_a_big_response_uses_long_form_lengths() -> None:
    varbinds = tuple(((*IF_DESCR_1[:-1], i), ber.OCTET_STRING, b"x" * 200) for i in range(250))
    wire = pyasn1_encode(response(varbinds))
    assert wire[1] == 0x82  # two length octets
    assert ber.decode_message(wire).varbinds == varbinds
    bigger = pyasn1_encode(response(varbinds * 2))  # no UDP datagram is that big
    with pytest.raises(BerError, match=r"message of 1[0-9]{5} bytes"):
        ber.decode_message(bigger)


# ------------------------------------------------------------------ round trips

oids = st.tuples(st.integers(0, 1), st.integers(0, 39)).flatmap(
    lambda head: st.lists(st.integers(0, ber.MAX_SUBID), max_size=126).map(
        lambda tail: (*head, *tail)
    )
) | st.lists(st.integers(0, ber.MAX_SUBID - 80), min_size=2, max_size=128).map(
    lambda subs: (2, *subs[1:])
)


def value_of(tag: int) -> st.SearchStrategy[ber.Value]:
    if tag == ber.INTEGER:
        return st.integers(ber.MIN_INT32, ber.MAX_INT32)
    if tag in (ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS):
        return st.integers(0, ber.MAX_U32)
    if tag == ber.COUNTER64:
        return st.integers(0, ber.MAX_U64)
    if tag == ber.IP_ADDRESS:
        return st.binary(min_size=4, max_size=4)
    if tag in (ber.OCTET_STRING, ber.OPAQUE):
        return st.binary(max_size=300)
    if tag == ber.OBJECT_IDENTIFIER:
        return oids
    return st.none()


varbinds = st.lists(
    st.tuples(oids, st.sampled_from(sorted(ber.TYPE_NAMES))).flatmap(
        lambda pair: value_of(pair[1]).map(lambda value: (pair[0], pair[1], value))
    ),
    max_size=40,
).map(tuple)
messages = st.builds(
    Message,
    version=st.sampled_from([0, 1]),
    community=st.binary(max_size=64),
    pdu_tag=st.sampled_from(sorted(ber.PDU_NAMES)),
    request_id=st.integers(ber.MIN_INT32, ber.MAX_INT32),
    error_status=st.integers(ber.MIN_INT32, ber.MAX_INT32),
    error_index=st.integers(ber.MIN_INT32, ber.MAX_INT32),
    varbinds=varbinds,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_decode_of_encode_is_identity(message: Message) -> None:
    assert ber.decode_message(ber.encode_message(message)) == message


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(varbinds, st.integers(0, ber.MAX_INT32))
def test_pyasn1_reads_what_we_write(vbs: tuple[VarBind, ...], request_id: int) -> None:
    message = response(vbs, request_id=request_id)
    assert pyasn1_varbinds(ber.encode_message(message)) == list(vbs)


# ------------------------------------------------------------------ what is rejected


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes((n,)) if n < 0x80 else bytes((0x82,)) + n.to_bytes(2, "big")
    return bytes((tag,)) + length + body


def message_with(varbind_list: bytes, *, pdu_extra: bytes = b"", tail: bytes = b"") -> bytes:
    pdu = tlv(0x02, b"\x07") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00") + varbind_list
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + tlv(0xA2, pdu + pdu_extra)) + tail


def one_varbind(value_tlv: bytes, name: bytes = b"\x2b\x06\x01") -> bytes:
    return tlv(0x30, tlv(0x30, tlv(0x06, name) + value_tlv))


GOOD = message_with(one_varbind(tlv(0x41, b"\x05")))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"", "truncated", id="empty"),
        pytest.param(GOOD + b"\x00", "trailing garbage", id="trailing-byte"),
        pytest.param(GOOD[:-1], "truncated: the message says", id="truncated"),
        pytest.param(b"\x30\x80" + GOOD[2:] + b"\x00\x00", "indefinite length", id="indefinite"),
        pytest.param(b"\x30\x85\x00\x00\x00\x00\x10" + GOOD[2:], "length of 5 octets",
                     id="five-length-octets"),
        pytest.param(b"\x30\x84\xff\xff\xff\xff" + GOOD[2:], "the message says 4294967301",
                     id="huge-length"),
        pytest.param(b"\x31" + GOOD[1:], "expected tag 0x30", id="not-a-sequence"),
        pytest.param(message_with(one_varbind(tlv(0x41, b"\xff"))), "Counter32 -1 out of",
                     id="negative-counter32"),
        pytest.param(message_with(one_varbind(tlv(0x41, b"\x01\x00\x00\x00\x00"))),
                     "Counter32 4294967296 out of", id="counter32-too-big"),
        pytest.param(message_with(one_varbind(tlv(0x46, b"\x01" + b"\x00" * 8))),
                     "Counter64 18446744073709551616 out of", id="counter64-too-big"),
        pytest.param(message_with(one_varbind(tlv(0x46, b"\x00" * 10))), "of 10 octets",
                     id="counter64-ten-octets"),
        pytest.param(message_with(one_varbind(tlv(0x02, b"\x00\x80\x00\x00\x00"))),
                     "Integer 2147483648 out of", id="integer32-too-big"),
        pytest.param(message_with(one_varbind(tlv(0x02, b""))), "empty Integer",
                     id="empty-integer"),
        pytest.param(message_with(one_varbind(tlv(0x40, b"\x01\x02\x03"))),
                     "IpAddress of 3 octets", id="short-ipaddress"),
        pytest.param(message_with(one_varbind(tlv(0x05, b"\x00"))), "Null with 1 content",
                     id="null-with-content"),
        pytest.param(message_with(one_varbind(tlv(0x82, b"\x00"))), "EndOfMibView with 1",
                     id="end-of-mib-with-content"),
        pytest.param(message_with(one_varbind(tlv(0x03, b"\x00"))), "unknown value tag 0x03",
                     id="bit-string"),
        pytest.param(message_with(one_varbind(tlv(0x24, tlv(0x04, b"x")))),
                     "unknown value tag 0x24", id="constructed-octet-string"),
        pytest.param(message_with(one_varbind(b"\x1f\x81\x00")), "unknown value tag 0x1f",
                     id="high-tag-number"),
        pytest.param(message_with(one_varbind(tlv(0x05, b""), name=b"\x2b\x90\x80\x80\x80\x00")),
                     "above 4294967295", id="subid-too-big"),
        pytest.param(message_with(one_varbind(tlv(0x05, b""), name=b"\x2b\x81")),
                     "ends inside a sub-identifier", id="subid-unterminated"),
        pytest.param(message_with(one_varbind(tlv(0x05, b""), name=b"\x2b\x80\x01")),
                     "leading 0x80", id="subid-non-minimal"),
        pytest.param(message_with(one_varbind(tlv(0x05, b""), name=b"\x2b" + b"\x01" * 128)),
                     "longer than 128", id="oid-too-long"),
        pytest.param(message_with(one_varbind(tlv(0x05, b""), name=b"")), "empty OID",
                     id="empty-oid"),
        pytest.param(message_with(tlv(0x30, tlv(0x30, tlv(0x06, b"\x2b") + tlv(0x05, b"")
                                                + b"\x05\x00"))),
                     "2 bytes after its value", id="varbind-extra-value"),
        pytest.param(message_with(one_varbind(tlv(0x05, b"")), pdu_extra=b"\x05\x00"),
                     "bytes after the var-bind list", id="pdu-extra"),
        pytest.param(tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"p") + tlv(0xA4, b"")),
                     "unknown PDU tag 0xa4", id="v1-trap"),
    ],
)
def test_malformed_messages_are_rejected(data: bytes, problem: str) -> None:
    assert ber.decode_message(GOOD).varbinds == (((1, 3, 6, 1), ber.COUNTER32, 5),)
    with pytest.raises(BerError, match=problem):
        ber.decode_message(data)


def test_a_rejected_message_names_its_request_id_once_it_was_read() -> None:
    with pytest.raises(BerError) as info:
        ber.decode_message(message_with(one_varbind(tlv(0x41, b"\xff"))))
    assert info.value.request_id == 7
    with pytest.raises(BerError) as early:
        ber.decode_message(b"\x30\x03\x02\x01")
    assert early.value.request_id is None


def test_non_minimal_lengths_and_integers_are_accepted() -> None:
    # Some agents pad lengths and integers; both are valid BER.
    value = b"\x41\x82\x00\x03\x00\x00\x05"  # Counter32 5, 2 length octets, padded body
    data = message_with(one_varbind(value))
    assert ber.decode_message(data).varbinds == (((1, 3, 6, 1), ber.COUNTER32, 5),)


@pytest.mark.parametrize(
    ("oid", "problem"),
    [((1,), "2..128"), ((3, 1), "cannot start"), ((1, 40), "cannot start"),
     ((1, 3, 2**32), "out of"), ((1, 3, -1), "out of"), ((1, 3) + (1,) * 127, "2..128")],
)
def test_unencodable_oids_are_refused(oid: tuple[int, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ber.encode_oid(oid)


@pytest.mark.parametrize(
    ("tag", "value"),
    [(ber.COUNTER32, -1), (ber.COUNTER64, 2**64), (ber.INTEGER, 2**31), (ber.IP_ADDRESS, b"1"),
     (ber.OCTET_STRING, 5), (0x03, b"")],
)
def test_unencodable_values_are_refused(tag: int, value: ber.Value) -> None:
    with pytest.raises(ValueError, match=r"needs|cannot encode"):
        ber.encode_value(tag, value)


# ------------------------------------------------------------------ fuzzing

VALID = ber.encode_message(response())


def decodes_or_rejects(data: bytes) -> None:
    """The only outcomes allowed: a Message, or BerError."""
    try:
        message = ber.decode_message(data)
    except BerError:
        return
    assert isinstance(message, Message)
    assert ber.decode_message(ber.encode_message(message)) == message


@settings(max_examples=2_000)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    decodes_or_rejects(data)


@settings(max_examples=1_000)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_inside_a_plausible_frame(body: bytes) -> None:
    decodes_or_rejects(tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + tlv(0xA2, body)))


def test_every_truncation_is_rejected() -> None:
    for cut in range(len(VALID)):
        with pytest.raises(BerError):
            ber.decode_message(VALID[:cut])


@settings(max_examples=2_000)
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6
    )
)
def test_fuzz_mutated_valid_response(changes: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for position, byte in changes:
        data[position] = byte
    decodes_or_rejects(bytes(data))


@settings(max_examples=1_000)
@given(
    st.integers(0, len(VALID) - 1),
    st.sampled_from([b"\x80", b"\x84\xff\xff\xff\xff", b"\x89" + b"\xff" * 9, b"\x82\xff\xff",
                     b"\xff", b"\x00"]),
    st.booleans(),
)
def test_fuzz_huge_and_odd_lengths_spliced_in(position: int, length: bytes, replace: bool) -> None:
    # Put a hostile length right after some byte (as if that byte were a tag).
    assume(position + 1 < len(VALID))
    rest = VALID[position + 2 :] if replace else VALID[position + 1 :]
    decodes_or_rejects(VALID[: position + 1] + length + rest)


@settings(max_examples=500)
@given(st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=40))
def test_fuzz_inserted_garbage(position: int, garbage: bytes) -> None:
    decodes_or_rejects(VALID[:position] + garbage + VALID[position:])
