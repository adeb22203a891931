"""agent.snmp.usm and the SNMPv3 framing of agent.snmp.ber: known answers, the pyasn1/pysnmp oracle,
fuzzing, and the lean v3 client's protocol flows against a scripted agent on 127.0.0.1.

The decoders may only ever return a message or raise BerError - for any input; the
client may only ever take, ignore (and count) or fail a request with an SnmpError.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder  # type: ignore[import-untyped]  # no stubs
from pysnmp.proto.mpmod.rfc3412 import ScopedPDU, SNMPv3Message
from pysnmp.proto.secmod.rfc3414 import localkey
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters
from pysnmp.proto.secmod.rfc3826.priv import aes as pysnmp_aes

from agent.errors import SnmpAuthError, SnmpError, SnmpProtocolError, SnmpTimeout
from agent.snmp import SnmpPoller, SnmpTarget, SnmpV3, ber, lean_supports, udp, usm, usm_session
from agent.snmp.ber import BerError
from agent.snmp.lean_v3 import LeanV3
from agent.snmp.udp import Address

RFC3414_ENGINE = bytes.fromhex("000000000000000000000002")
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


# ------------------------------------------------------------------ key localisation


def test_rfc3414_a3_md5_key_localisation() -> None:
    # RFC 3414 A.3.1: password "maplesyrup", engine ID 00..02.
    key = usm.localized_key(b"maplesyrup", "md5", RFC3414_ENGINE)
    assert key.hex() == "526f5eed9fcce26f8964c2930787d82b"
    assert usm.password_to_key(b"maplesyrup", "md5").hex() == "9faf3283884e92834ebc9847d8edd963"


def test_rfc3414_a3_sha_key_localisation() -> None:
    # RFC 3414 A.3.2.
    key = usm.localized_key(b"maplesyrup", "sha1", RFC3414_ENGINE)
    assert key.hex() == "6695febc9288e36282235fc7151f128497b38f3f"
    assert (
        usm.password_to_key(b"maplesyrup", "sha1").hex()
        == "9fb5cc0381497b3793528939ff788d5d79145211"
    )


@pytest.mark.parametrize("protocol", sorted(usm.AUTH_PROTOCOLS))
def test_localisation_of_every_protocol_matches_pysnmp(protocol: str) -> None:
    hash_name = usm.AUTH_PROTOCOLS[protocol].hash_name
    func = getattr(hashlib, hash_name)
    engine = bytes.fromhex("80001f8880e9bd0c1d12667a5100000000")
    want = localkey.password_to_key(b"a-longer-password", ber_octets(engine), func)
    assert usm.localized_key(b"a-longer-password", hash_name, engine) == bytes(want)


def test_localized_keys_are_cached() -> None:
    usm.localized_key(b"cached-password", "sha1", RFC3414_ENGINE)
    before = usm.password_to_key.cache_info().misses
    usm.localized_key(b"cached-password", "sha1", RFC3414_ENGINE)
    usm.localized_key(b"cached-password", "sha1", RFC3414_ENGINE[:-1] + b"\x03")
    assert usm.password_to_key.cache_info().misses == before  # Ku reused


def test_short_password_is_rejected() -> None:
    with pytest.raises(ValueError):
        usm.password_to_key(b"", "sha1")


def ber_octets(data: bytes) -> Any:
    from pyasn1.type import univ  # type: ignore[import-untyped]  # no stubs

    return univ.OctetString(data)


# ------------------------------------------------------------------ HMAC and AES


def test_hmac_lengths_are_rfc3414_and_rfc7860() -> None:
    lengths = {name: p.mac_octets for name, p in usm.AUTH_PROTOCOLS.items()}
    assert lengths == {
        "MD5": 12, "SHA": 12, "SHA224": 16, "SHA256": 24, "SHA384": 32, "SHA512": 48,
    }


@pytest.mark.parametrize("protocol", sorted(usm.AUTH_PROTOCOLS))
def test_sign_and_verify(protocol: str) -> None:
    auth = usm.AUTH_PROTOCOLS[protocol]
    key = usm.localized_key(b"authpass-1234", auth.hash_name, RFC3414_ENGINE)
    message, offset = ber.encode_v3_message(
        msg_id=7, flags=ber.FLAG_AUTH | ber.FLAG_REPORTABLE, engine_id=RFC3414_ENGINE,
        engine_boots=1, engine_time=2, user_name=b"u", auth_params=bytes(auth.mac_octets),
        priv_params=b"", msg_data=ber.encode_scoped_request(RFC3414_ENGINE, 7, [SYS_UPTIME], None),
    )
    signed = usm.sign(auth, key, message, offset)
    decoded = ber.decode_v3_message(signed)
    assert decoded.auth_offset == offset
    assert usm.verify(auth, key, signed, offset, decoded.auth_params)
    tampered = signed[:-1] + bytes((signed[-1] ^ 1,))
    assert not usm.verify(auth, key, tampered, offset, decoded.auth_params)
    assert not usm.verify(auth, key[::-1], signed, offset, decoded.auth_params)
    assert not usm.verify(auth, key, signed, offset, decoded.auth_params[:-1])


def test_aes_cfb_known_answer_nist_sp800_38a() -> None:
    # NIST SP 800-38A F.3.13 CFB128-AES128.Encrypt, IV = boots | time | salt.
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    plaintext = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    ciphertext = usm.aes_encrypt(
        key, 0x00010203, 0x04050607, bytes.fromhex("08090a0b0c0d0e0f"), plaintext
    )
    assert ciphertext.hex() == (
        "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b"
    )
    assert usm.aes_decrypt(
        key, 0x00010203, 0x04050607, bytes.fromhex("08090a0b0c0d0e0f"), ciphertext
    ) == plaintext


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, ber.MAX_INT32),
       st.integers(0, ber.MAX_INT32), st.binary(min_size=8, max_size=8))
def test_aes_cfb_matches_cryptography_and_pysnmp(
    plaintext: bytes, boots: int, engine_time: int, salt: bytes
) -> None:
    key = usm.localized_priv_key(b"privpass-1234", "sha1", RFC3414_ENGINE)
    ours = usm.aes_encrypt(key, boots, engine_time, salt, plaintext)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB

    iv = boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + salt
    encryptor = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    assert ours == encryptor.update(plaintext) + encryptor.finalize()
    if plaintext:
        # pysnmp's RFC 3826 decryption of the same bytes (its IV from the same fields).
        params = usm_params(boots, engine_time, salt)
        pysnmp_key = usm.localized_key(b"privpass-1234", "sha1", RFC3414_ENGINE)
        got = pysnmp_aes.Aes().decrypt_data(ber_octets(pysnmp_key), params, ber_octets(ours))
        assert bytes(got) == plaintext


def usm_params(boots: int, engine_time: int, salt: bytes) -> Any:
    """pysnmp's privParameters: (boots, time, salt as a list of octets)."""
    return (boots, engine_time, list(salt))


def test_bad_salt_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        usm.aes_decrypt(bytes(16), 0, 0, b"short", b"data")


# ------------------------------------------------------------------ framing vs pyasn1


def test_v3_request_decodes_with_pysnmp() -> None:
    scoped = ber.encode_scoped_request(RFC3414_ENGINE, 99, [SYS_UPTIME, (1, 3, 6, 1, 2)], 25)
    message, _ = ber.encode_v3_message(
        msg_id=99, flags=ber.FLAG_AUTH | ber.FLAG_REPORTABLE, engine_id=RFC3414_ENGINE,
        engine_boots=3, engine_time=1234, user_name=b"xanetv3", auth_params=bytes(12),
        priv_params=b"", msg_data=scoped,
    )
    msg, rest = decoder.decode(message, asn1Spec=SNMPv3Message())
    assert rest == b""
    assert int(msg["msgVersion"]) == 3
    assert int(msg["msgGlobalData"]["msgID"]) == 99
    assert bytes(msg["msgGlobalData"]["msgFlags"]) == b"\x05"
    assert int(msg["msgGlobalData"]["msgSecurityModel"]) == 3
    params, rest = decoder.decode(
        bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
    )
    assert rest == b""
    assert bytes(params["msgAuthoritativeEngineId"]) == RFC3414_ENGINE
    assert int(params["msgAuthoritativeEngineBoots"]) == 3
    assert int(params["msgAuthoritativeEngineTime"]) == 1234
    assert bytes(params["msgUserName"]) == b"xanetv3"
    pdu_scope, rest = decoder.decode(scoped, asn1Spec=ScopedPDU())
    assert bytes(pdu_scope["contextEngineId"]) == RFC3414_ENGINE
    bulk = pdu_scope["data"]["get-bulk-request"]
    assert int(bulk["max-repetitions"]) == 25
    assert [tuple(vb["name"]) for vb in bulk["variable-bindings"]] == [SYS_UPTIME, (1, 3, 6, 1, 2)]


def test_round_trip_of_an_encrypted_message() -> None:
    message, _ = ber.encode_v3_message(
        msg_id=5, flags=ber.FLAG_AUTH | ber.FLAG_PRIV, engine_id=b"engine",
        engine_boots=1, engine_time=2, user_name=b"u", auth_params=bytes(12),
        priv_params=bytes(8), msg_data=b"\x01\x02\x03",
    )
    decoded = ber.decode_v3_message(message)
    assert decoded.encrypted == b"\x01\x02\x03" and decoded.scoped_pdu is None
    assert decoded.priv_params == bytes(8) and decoded.user_name == b"u"


def response_message(flags: int = ber.FLAG_AUTH, **scoped_kw: Any) -> bytes:
    scoped = ber.ScopedPdu(
        **{
            "context_engine_id": b"engine-id", "context_name": b"", "pdu_tag": ber.RESPONSE,
            "request_id": 5, "error_status": 0, "error_index": 0,
            "varbinds": ((SYS_UPTIME, ber.TIMETICKS, 12345), ((1, 3, 6, 1, 9), ber.COUNTER64,
                                                              2**64 - 1)),
        } | scoped_kw
    )
    message, _ = ber.encode_v3_message(
        msg_id=5, flags=flags, engine_id=b"engine-id", engine_boots=1, engine_time=2,
        user_name=b"user", auth_params=bytes(12), priv_params=b"",
        msg_data=ber.encode_scoped_pdu(scoped),
    )
    return message


VALID = response_message()


def test_plaintext_response_decodes() -> None:
    decoded = ber.decode_v3_message(VALID)
    assert decoded.msg_id == 5 and decoded.engine_id == b"engine-id"
    assert decoded.scoped_pdu is not None
    assert decoded.scoped_pdu.varbinds[1] == ((1, 3, 6, 1, 9), ber.COUNTER64, 2**64 - 1)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (VALID + b"\x00", "trailing garbage"),
        (VALID[:-1], "truncated"),
        (VALID.replace(b"\x02\x01\x03", b"\x02\x01\x01", 1), "version"),
        (VALID.replace(b"\x04\x01\x01\x02\x01\x03", b"\x04\x01\x01\x02\x01\x01", 1),
         "not USM"),
        (VALID.replace(b"\x04\x01\x01", b"\x04\x01\x02", 1), "privacy without"),
        (VALID.replace(b"\x04\x01\x01", b"\x04\x00", 1), None),
    ],
)
def test_malformed_v3_messages(data: bytes, problem: str | None) -> None:
    with pytest.raises(BerError) as info:
        ber.decode_v3_message(data)
    if problem is not None:
        assert problem in str(info.value)


def test_msg_id_is_carried_by_errors_after_it_is_read() -> None:
    with pytest.raises(BerError) as info:
        ber.decode_v3_message(VALID + b"\x00")
    assert info.value.request_id == 5


def test_decrypted_scoped_pdu_may_be_padded_only_when_asked() -> None:
    scoped = ber.encode_scoped_request(b"engine", 1, [SYS_UPTIME], None)
    assert ber.decode_scoped_pdu(scoped + b"\x00" * 7, padded=True).request_id == 1
    with pytest.raises(BerError):
        ber.decode_scoped_pdu(scoped + b"\x00" * 7)


# ------------------------------------------------------------------ fuzzing


def decodes_or_rejects(data: bytes) -> None:
    try:
        message = ber.decode_v3_message(data)
    except BerError:
        return
    assert isinstance(message, ber.V3Message)


def scoped_decodes_or_rejects(data: bytes) -> None:
    try:
        scoped = ber.decode_scoped_pdu(data, padded=True)
    except BerError:
        return
    assert isinstance(scoped, ber.ScopedPdu)


@settings(max_examples=2_000)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    decodes_or_rejects(data)
    scoped_decodes_or_rejects(data)


def tlv(tag: int, body: bytes) -> bytes:
    return ber.tlv(tag, body)


@settings(max_examples=1_000)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_fuzz_random_usm_and_scoped_pdu_in_a_plausible_frame(usm_body: bytes, data: bytes) -> None:
    global_data = tlv(
        0x30, tlv(2, b"\x05") + tlv(2, b"\x05\xdc") + tlv(4, b"\x01") + tlv(2, b"\x03")
    )
    head = tlv(2, b"\x03") + global_data
    decodes_or_rejects(tlv(0x30, head + tlv(4, tlv(0x30, usm_body)) + tlv(0x30, data)))
    decodes_or_rejects(tlv(0x30, head + tlv(4, usm_body) + data))
    scoped_decodes_or_rejects(tlv(0x30, tlv(4, b"") + tlv(4, b"") + tlv(0xA2, data)))


def test_every_truncation_is_rejected() -> None:
    for cut in range(len(VALID)):
        with pytest.raises(BerError):
            ber.decode_v3_message(VALID[:cut])


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
    assume(position + 1 < len(VALID))
    rest = VALID[position + 2 :] if replace else VALID[position + 1 :]
    decodes_or_rejects(VALID[: position + 1] + length + rest)


@settings(max_examples=500)
@given(st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=40))
def test_fuzz_inserted_garbage(position: int, garbage: bytes) -> None:
    decodes_or_rejects(VALID[:position] + garbage + VALID[position:])


# The client's receive path: whatever arrives for a pending request, the request is
# taken, ignored (counted) or failed with an SnmpError - nothing else escapes.
CLIENT_CREDENTIALS = usm_session.Credentials(
    user=b"user", auth=usm.AUTH_PROTOCOLS["SHA"], auth_password=b"authpass-1234",
    priv_password=b"privpass-1234",
)


def signed_response(data: bytes) -> bytes:
    """``data`` (a v3 message) with a valid SHA digest under CLIENT_CREDENTIALS' key."""
    decoded = ber.decode_v3_message(data)
    key = usm.localized_key(b"authpass-1234", "sha1", decoded.engine_id)
    return usm.sign(usm.AUTH_PROTOCOLS["SHA"], key, data, decoded.auth_offset)


def encrypted_response() -> bytes:
    """VALID's ScopedPDU AES-encrypted for CLIENT_CREDENTIALS, authPriv, signed."""
    scoped = ber.decode_v3_message(VALID).scoped_pdu
    assert scoped is not None
    priv_key = usm.localized_priv_key(b"privpass-1234", "sha1", b"engine-id")
    salt = b"\x00\x00\x00\x00\x00\x00\x00\x09"
    message, _ = ber.encode_v3_message(
        msg_id=5, flags=ber.FLAG_AUTH | ber.FLAG_PRIV, engine_id=b"engine-id", engine_boots=1,
        engine_time=2, user_name=b"user", auth_params=bytes(12), priv_params=salt,
        msg_data=usm.aes_encrypt(priv_key, 1, 2, salt, ber.encode_scoped_pdu(scoped)),
    )
    return signed_response(message)


ENCRYPTED = encrypted_response()


def receive(
    loop: asyncio.AbstractEventLoop, datagram: bytes, flags: int
) -> tuple[asyncio.Future[Any], Any]:
    """``datagram`` handed to a client waiting for msgID 5 at ``flags``."""
    backend = LeanV3()
    client = backend.client
    address = Address(socket.AF_INET, ("127.0.0.1", 161), "127.0.0.1:161")
    credentials = CLIENT_CREDENTIALS
    if not flags & ber.FLAG_PRIV:
        credentials = dataclasses.replace(credentials, priv_password=None)
    session = usm_session.UsmExchange(
        engines={address.sockaddr: usm_session.Engine(b"engine-id", 1, 2, 0.0)},
        peer=address.sockaddr, credentials=credentials, oids=[SYS_UPTIME],
        max_repetitions=None, what="GET", new_id=lambda: 5, new_salt=lambda: bytes(8),
    )
    send = session.start(0.0)
    assert send.msg_id == 5
    future: asyncio.Future[Any] = loop.create_future()
    # Private reach on purpose: a request in flight without a socket, to feed the receive path.
    client._pending[5] = udp._Pending(future, address, "d", send.what, session.receive)
    client.received(datagram, ("127.0.0.1", 161))
    return future, client


def test_encrypted_response_is_taken() -> None:
    loop = asyncio.new_event_loop()
    try:
        future, _ = receive(loop, ENCRYPTED, ber.FLAG_AUTH | ber.FLAG_PRIV)
        answer = future.result()
        assert answer.answer.varbinds[0] == (SYS_UPTIME, ber.TIMETICKS, 12345)
    finally:
        loop.close()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from([(VALID, ber.FLAG_AUTH), (ENCRYPTED, ber.FLAG_AUTH | ber.FLAG_PRIV)]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=0, max_size=4),
    st.booleans(),
)
def test_fuzz_client_receive_path(
    base: tuple[bytes, int], changes: list[tuple[int, int]], sign: bool
) -> None:
    valid, flags = base
    data = bytearray(valid)
    for position, byte in changes:
        data[position % len(data)] = byte
    datagram = bytes(data)
    if sign:
        try:
            datagram = signed_response(datagram)
        except BerError:
            pass
    loop = asyncio.new_event_loop()
    try:
        future, client = receive(loop, datagram, flags)
        if future.done():
            exc = future.exception()
            assert exc is None or isinstance(exc, SnmpError)
        else:
            assert sum(client.ignored.values()) == 1
    finally:
        loop.close()


# ------------------------------------------------------------------ scripted agent


class ScriptedAgent(asyncio.DatagramProtocol):
    """A minimal SNMPv3 agent (engine discovery, SHA auth, no priv) that misbehaves on cue.

    ``behaviour``: "ok", "bad-digest" (responses signed with another key),
    "not-in-time" (every authenticated request gets a notInTimeWindow report),
    "not-in-time-once" (the first one only), "unknown-user".
    """

    ENGINE = b"\x80\x00\x1f\x88\x04scripted"

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0
        self.boots, self.time = 7, 5000

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def reply(self, request: ber.V3Message, flags: int, scoped: ber.ScopedPdu,
              key_password: bytes | None, addr: Any) -> None:
        auth = usm.AUTH_PROTOCOLS["SHA"]
        data, offset = ber.encode_v3_message(
            msg_id=request.msg_id, flags=flags, engine_id=self.ENGINE, engine_boots=self.boots,
            engine_time=self.time, user_name=request.user_name,
            auth_params=bytes(auth.mac_octets) if flags & ber.FLAG_AUTH else b"",
            priv_params=b"", msg_data=ber.encode_scoped_pdu(scoped),
        )
        if key_password is not None:
            data = usm.sign(auth, usm.localized_key(key_password, "sha1", self.ENGINE), data,
                            offset)
        assert self.transport is not None
        self.transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        request = ber.decode_v3_message(data)
        assert request.scoped_pdu is not None
        pdu = request.scoped_pdu

        def report(oid: tuple[int, ...], flags: int = 0, key: bytes | None = None) -> None:
            scoped = ber.ScopedPdu(self.ENGINE, b"", ber.REPORT, pdu.request_id, 0, 0,
                                   ((oid, ber.COUNTER32, 1),))
            self.reply(request, flags, scoped, key, addr)

        if not request.engine_id:
            report(usm_session.UNKNOWN_ENGINE_IDS)
            return
        self.requests += 1
        if self.behaviour == "unknown-user":
            report(usm_session.UNKNOWN_USER_NAMES)
            return
        if self.behaviour == "not-in-time" or (
            self.behaviour == "not-in-time-once" and self.requests == 1
        ):
            self.time += 1000
            report(usm_session.NOT_IN_TIME_WINDOWS, ber.FLAG_AUTH, b"authpass-1234")
            return
        key = b"another-key-123" if self.behaviour == "bad-digest" else b"authpass-1234"
        scoped = ber.ScopedPdu(self.ENGINE, b"", ber.RESPONSE, pdu.request_id, 0, 0,
                               ((SYS_UPTIME, ber.TIMETICKS, 4242),))
        self.reply(request, ber.FLAG_AUTH, scoped, key, addr)


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[str], Any]]:
    transports: list[asyncio.DatagramTransport] = []

    async def start(behaviour: str) -> tuple[ScriptedAgent, int]:
        transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: ScriptedAgent(behaviour), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        return protocol, transport.get_extra_info("sockname")[1]

    yield start
    for transport in transports:
        transport.close()


async def scripted_get(port: int) -> tuple[SnmpPoller, Any]:
    poller = SnmpPoller()
    target = SnmpTarget("scripted", "127.0.0.1", SnmpV3("user", "authpass-1234", None),
                        port=port, timeout_s=0.3, retries=0)
    backend = poller.backend(target)
    try:
        return poller, await backend.exchange(target, [SYS_UPTIME], None, "GET sysUpTime")
    except BaseException:
        poller.close()
        raise


async def test_scripted_agent_answers(scripted: Callable[[str], Any]) -> None:
    agent, port = await scripted("ok")
    poller, (status, _, varbinds) = await scripted_get(port)
    poller.close()
    assert status == 0
    assert list(varbinds) == [(SYS_UPTIME, ber.TIMETICKS, 4242)]
    assert agent.requests == 1


async def test_not_in_time_window_resynchronises_once(scripted: Callable[[str], Any]) -> None:
    agent, port = await scripted("not-in-time-once")
    poller, (_, _, varbinds) = await scripted_get(port)
    poller.close()
    assert varbinds[0][2] == 4242
    assert agent.requests == 2


async def test_not_in_time_window_after_the_resync_is_an_auth_error(
    scripted: Callable[[str], Any],
) -> None:
    agent, port = await scripted("not-in-time")
    with pytest.raises(SnmpAuthError, match="NotInTimeWindows"):
        await scripted_get(port)
    assert agent.requests == 2


async def test_unknown_user_report_is_an_auth_error(scripted: Callable[[str], Any]) -> None:
    _, port = await scripted("unknown-user")
    with pytest.raises(SnmpAuthError, match=r"scripted.*UnknownUserNames"):
        await scripted_get(port)


async def test_response_with_a_bad_digest_is_ignored_then_times_out(
    scripted: Callable[[str], Any],
) -> None:
    _, port = await scripted("bad-digest")
    poller = SnmpPoller()
    target = SnmpTarget("scripted", "127.0.0.1", SnmpV3("user", "authpass-1234", None),
                        port=port, timeout_s=0.3, retries=1)
    with pytest.raises(SnmpTimeout):
        await poller.poll(target)
    assert poller.ignored_datagrams == {"bad digest": 2}
    poller.close()


def test_dispatch_lean_or_pysnmp() -> None:
    assert lean_supports(SnmpV3("u", "authpass-1", None))
    assert lean_supports(SnmpV3("u", "authpass-1", "privpass-1", "SHA512", "AES"))
    assert lean_supports(SnmpV3("u", "authpass-1", "privpass-1", "MD5", "AES"))
    for priv in ("DES", "AES192", "AES256"):
        assert not lean_supports(SnmpV3("u", "authpass-1", "privpass-1", "SHA", priv))  # type: ignore[arg-type]


def test_protocol_error_class_is_used_for_unusable_answers() -> None:
    # A response at another security level than asked is not taken.
    loop = asyncio.new_event_loop()
    try:
        future, _ = receive(loop, signed_response(VALID), ber.FLAG_AUTH | ber.FLAG_PRIV)
        with pytest.raises(SnmpProtocolError, match="security level"):
            future.result()
    finally:
        loop.close()
