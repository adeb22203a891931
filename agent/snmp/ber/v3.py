"""The SNMPv3 message (RFC 3412) with USM security parameters (RFC 3414) and its
ScopedPDU: framing only, encoded and decoded. Pure.

No crypto here: :mod:`agent.snmp.usm` authenticates and encrypts, and
:mod:`agent.snmp.usm_session` judges what a decoded message means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent.snmp.ber.pdu import decode_pdu_tail, encode_pdu, request_fields
from agent.snmp.ber.primitives import (
    INTEGER,
    MAX_INT32,
    MAX_MESSAGE_OCTETS,
    MIN_INT32,
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


def encode_scoped_pdu(scoped: ScopedPdu) -> bytes:
    """A ScopedPDU's TLV: the plaintext that is sent as is or encrypted."""
    return tlv(
        SEQUENCE,
        tlv(OCTET_STRING, scoped.context_engine_id)
        + tlv(OCTET_STRING, scoped.context_name)
        + encode_pdu(scoped),
    )


def encode_scoped_request(
    context_engine_id: bytes, request_id: int, oids: Sequence[Oid], max_repetitions: int | None
) -> bytes:
    """A GetRequest (``max_repetitions`` None) or GetBulkRequest ScopedPDU (empty context)."""
    return encode_scoped_pdu(
        ScopedPdu(context_engine_id, b"", *request_fields(request_id, oids, max_repetitions))
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
    global_data = tlv(
        SEQUENCE,
        tlv(INTEGER, integer_body(msg_id))
        + tlv(INTEGER, integer_body(max_size))
        + tlv(OCTET_STRING, bytes((flags,)))
        + tlv(INTEGER, integer_body(USM_SECURITY_MODEL)),
    )
    priv_tlv = tlv(OCTET_STRING, priv_params)
    usm = tlv(
        SEQUENCE,
        tlv(OCTET_STRING, engine_id)
        + tlv(INTEGER, integer_body(engine_boots))
        + tlv(INTEGER, integer_body(engine_time))
        + tlv(OCTET_STRING, user_name)
        + tlv(OCTET_STRING, auth_params)
        + priv_tlv,
    )
    data_tlv = tlv(OCTET_STRING, msg_data) if flags & FLAG_PRIV else msg_data
    message = tlv(
        SEQUENCE,
        tlv(INTEGER, integer_body(VERSION_3))
        + global_data
        + tlv(OCTET_STRING, usm)
        + data_tlv,
    )
    # The security parameters end right before msgData; the auth parameters' content
    # right before the privacy parameters' TLV.
    return message, len(message) - len(data_tlv) - len(priv_tlv) - len(auth_params)


def _octets(
    data: bytes, pos: int, end: int, what: str, msg_id: int | None, limit: int
) -> tuple[bytes, int, int]:
    """``(content, content start, next position)`` of an OCTET STRING of <= ``limit``."""
    tag, start, stop = header(data, pos, end, msg_id)
    expect(tag, OCTET_STRING, what, pos, msg_id)
    if stop - start > limit:
        raise BerError(f"{what}: {stop - start} octets, at most {limit} allowed", msg_id)
    return data[start:stop], start, stop


def _int_field(
    data: bytes, pos: int, end: int, what: str, msg_id: int | None, low: int, high: int
) -> tuple[int, int]:
    tag, start, stop = header(data, pos, end, msg_id)
    expect(tag, INTEGER, what, pos, msg_id)
    number = decode_integer(data, start, stop, INTEGER, what, msg_id)
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
    tag, pos, stop = header(data, 0, end, msg_id)
    expect(tag, SEQUENCE, "ScopedPDU", 0, msg_id)
    if stop != end and not padded:
        raise BerError(f"{end - stop} bytes after the ScopedPDU", msg_id)
    return _scoped_pdu_body(data, pos, stop, msg_id)


def _scoped_pdu_body(data: bytes, pos: int, end: int, msg_id: int | None) -> ScopedPdu:
    context_engine_id, _, pos = _octets(
        data, pos, end, "contextEngineID", msg_id, MAX_ENGINE_ID_OCTETS
    )
    context_name, _, pos = _octets(data, pos, end, "contextName", msg_id, 255)
    pdu_at = pos
    pdu_tag, pos, pdu_end = header(data, pos, end, msg_id)
    if pdu_tag not in PDU_TAGS:
        raise BerError(f"PDU at byte {pdu_at}: unknown PDU tag 0x{pdu_tag:02x}", msg_id)
    if pdu_end != end:
        raise BerError(f"{end - pdu_end} bytes after the PDU", msg_id)
    request_id, pos = _int_field(data, pos, pdu_end, "request-id", msg_id, MIN_INT32, MAX_INT32)
    error_status, error_index, varbinds = decode_pdu_tail(data, pos, pdu_end, msg_id, request_id)
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
    pos, end, problem = outer(data)
    version, pos = _int_field(data, pos, end, "version", None, VERSION_3, VERSION_3)
    tag, global_start, global_end = header(data, pos, end, None)
    expect(tag, SEQUENCE, "msgGlobalData", pos, None)
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
    tag, usm_start, usm_end = header(data, global_end, end, msg_id)
    expect(tag, OCTET_STRING, "msgSecurityParameters", global_end, msg_id)
    data_at = usm_end
    tag, pos, seq_end = header(data, usm_start, usm_end, msg_id)
    expect(tag, SEQUENCE, "UsmSecurityParameters", usm_start, msg_id)
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
    tag, start, stop = header(data, data_at, end, msg_id)
    if stop != end:
        raise BerError(f"{end - stop} bytes after msgData", msg_id)
    scoped: ScopedPdu | None = None
    encrypted: bytes | None = None
    if flags & FLAG_PRIV:
        expect(tag, OCTET_STRING, "encryptedPDU", data_at, msg_id)
        encrypted = data[start:stop]
    else:
        expect(tag, SEQUENCE, "ScopedPDU", data_at, msg_id)
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
