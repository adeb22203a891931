"""agent.snmp.usm_session without sockets: the USM policy as a table of (what the device
sends, what the exchange decides).

A fake device (``Device``) builds the datagrams an authoritative engine would send -
discovery reports, signed responses, signed or unsigned USM reports, encrypted
responses - and the exchange is fed them through ``receive(bytes)``. No asyncio, no
clock: ``now_s`` is a number the test chooses.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.snmp import ber, usm
from agent.snmp.exchange import Failed, Ignored, Refused, Resend, Response, Send
from agent.snmp.usm_session import (
    DECRYPTION_ERRORS,
    NOT_IN_TIME_WINDOWS,
    UNKNOWN_ENGINE_IDS,
    UNKNOWN_USER_NAMES,
    UNSUPPORTED_SEC_LEVELS,
    WRONG_DIGESTS,
    Credentials,
    Engine,
    Engines,
    UsmExchange,
)

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
ENGINE_ID = b"\x80\x00\x1f\x88\x04device"
PEER: Hashable = ("127.0.0.1", 161)
AUTH_NO_PRIV = Credentials(b"user", usm.AUTH_PROTOCOLS["SHA"], b"authpass-1234", None)
AUTH_PRIV = dataclasses.replace(AUTH_NO_PRIV, priv_password=b"privpass-1234")


class Device:
    """What an SNMPv3 agent with ENGINE_ID (boots 7, time 5000) would answer."""

    def __init__(self, engine_id: bytes = ENGINE_ID, boots: int = 7, time: int = 5000) -> None:
        self.engine_id, self.boots, self.time = engine_id, boots, time

    def message(
        self, msg_id: int, scoped: ber.ScopedPdu, *, flags: int = 0, user: bytes = b"user",
        key: bytes | None = None, priv: bytes | None = None, engine_id: bytes | None = None,
    ) -> bytes:
        engine_id = self.engine_id if engine_id is None else engine_id
        auth = usm.AUTH_PROTOCOLS["SHA"]
        msg_data = ber.encode_scoped_pdu(scoped)
        priv_params = b""
        if priv is not None:
            flags |= ber.FLAG_PRIV
            priv_params = bytes(7) + b"\x01"
            priv_key = usm.localized_priv_key(priv, "sha1", engine_id)
            msg_data = usm.aes_encrypt(priv_key, self.boots, self.time, priv_params, msg_data)
        data, offset = ber.encode_v3_message(
            msg_id=msg_id, flags=flags, engine_id=engine_id, engine_boots=self.boots,
            engine_time=self.time, user_name=user if flags & ber.FLAG_AUTH else b"",
            auth_params=bytes(auth.mac_octets) if flags & ber.FLAG_AUTH else b"",
            priv_params=priv_params, msg_data=msg_data,
        )
        if key is not None:
            data = usm.sign(auth, usm.localized_key(key, "sha1", engine_id), data, offset)
        return data

    def report(self, msg_id: int, oid: tuple[int, ...], *, signed: bool = False,
               **kw: object) -> bytes:
        scoped = ber.ScopedPdu(self.engine_id, b"", ber.REPORT, msg_id, 0, 0,
                               ((oid, ber.COUNTER32, 1),))
        if signed:
            return self.message(msg_id, scoped, flags=ber.FLAG_AUTH, key=b"authpass-1234",
                                **kw)  # type: ignore[arg-type]
        return self.message(msg_id, scoped, **kw)  # type: ignore[arg-type]

    def response(self, msg_id: int, *, request_id: int | None = None, pdu_tag: int = ber.RESPONSE,
                 key: bytes | None = b"authpass-1234", flags: int = ber.FLAG_AUTH,
                 **kw: object) -> bytes:
        scoped = ber.ScopedPdu(self.engine_id, b"", pdu_tag,
                               msg_id if request_id is None else request_id, 0, 0,
                               ((SYS_UPTIME, ber.TIMETICKS, 4242),))
        return self.message(msg_id, scoped, flags=flags, key=key,
                            **kw)  # type: ignore[arg-type]


def exchange(
    credentials: Credentials = AUTH_NO_PRIV, engines: Engines | None = None
) -> tuple[UsmExchange, Engines]:
    engines = {} if engines is None else engines
    ids = itertools.count(100)
    return UsmExchange(
        engines=engines, peer=PEER, credentials=credentials, oids=[SYS_UPTIME],
        max_repetitions=None, what="GET sysUpTime", new_id=lambda: next(ids),
        new_salt=lambda: bytes(8),
    ), engines


def known_engine(learned_at: float = 0.0) -> Engines:
    return {PEER: Engine(ENGINE_ID, 7, 5000, learned_at)}


def sent(send: Send) -> ber.V3Message:
    return ber.decode_v3_message(send.data)


# ------------------------------------------------------------------ discovery


def test_an_unknown_engine_is_discovered_first_then_the_request_is_sent() -> None:
    session, engines = exchange()
    probe = session.start(now_s=10.0)
    message = sent(probe)
    assert probe.what == "GET sysUpTime (engine discovery)"
    assert message.engine_id == b"" and message.user_name == b""
    assert message.flags == ber.FLAG_REPORTABLE
    outcome = session.receive(Device().report(probe.msg_id, UNKNOWN_ENGINE_IDS), now_s=10.0)
    assert isinstance(outcome, Resend)
    assert engines[PEER] == Engine(ENGINE_ID, 7, 5000, 10.0)
    request = sent(outcome.send)
    assert outcome.send.what == "GET sysUpTime"
    assert request.engine_id == ENGINE_ID and request.user_name == b"user"
    assert request.flags == ber.FLAG_REPORTABLE | ber.FLAG_AUTH
    assert (request.engine_boots, request.engine_time) == (7, 5000)
    assert outcome.send.msg_id != probe.msg_id == session.msg_id - 1


def test_a_known_engine_is_not_discovered_again_and_its_time_is_estimated() -> None:
    session, _ = exchange(engines=known_engine(learned_at=100.0))
    request = sent(session.start(now_s=130.5))
    assert request.engine_id == ENGINE_ID
    assert (request.engine_boots, request.engine_time) == (7, 5030)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(lambda d, m: d.report(m, UNKNOWN_USER_NAMES), "report 1.3.6.1.6.3.15.1.1.3.0",
                     id="another-report"),
        pytest.param(lambda d, m: d.response(m, key=None, flags=0), "Response, not a Report",
                     id="a-response"),
        pytest.param(lambda d, m: d.report(m, UNKNOWN_ENGINE_IDS, signed=True),
                     "authenticated answer", id="an-authenticated-report"),
    ],
)
def test_discovery_takes_only_an_unauthenticated_unknown_engine_report(
    answer: object, problem: str
) -> None:
    session, engines = exchange()
    probe = session.start(0.0)
    outcome = session.receive(answer(Device(), probe.msg_id), 0.0)  # type: ignore[operator]
    assert isinstance(outcome, Failed) and problem in outcome.problem
    assert engines == {}


@pytest.mark.parametrize("engine_id", [b"1234", b"12345", bytes(32)])
def test_discovery_of_an_engine_id_of_a_wrong_length_fails(engine_id: bytes) -> None:
    session, engines = exchange()
    probe = session.start(0.0)
    outcome = session.receive(Device(engine_id).report(probe.msg_id, UNKNOWN_ENGINE_IDS), 0.0)
    if 5 <= len(engine_id) <= 32:
        assert isinstance(outcome, Resend)
        return
    assert outcome == Failed(f"engine ID of {len(engine_id)} octets", "engine discovery")
    assert engines == {}


# ------------------------------------------------------------------ the request's answers


def started(credentials: Credentials = AUTH_NO_PRIV) -> tuple[UsmExchange, Engines, Send]:
    session, engines = exchange(credentials, known_engine())
    return session, engines, session.start(0.0)


def test_a_signed_response_is_taken() -> None:
    session, _, request = started()
    outcome = session.receive(Device().response(request.msg_id), 0.0)
    assert isinstance(outcome, Response)
    assert outcome.answer.varbinds == ((SYS_UPTIME, ber.TIMETICKS, 4242),)


def test_an_encrypted_response_is_decrypted_and_taken() -> None:
    session, _, request = started(AUTH_PRIV)
    assert sent(request).flags & ber.FLAG_PRIV and sent(request).encrypted is not None
    outcome = session.receive(Device().response(request.msg_id, priv=b"privpass-1234"), 0.0)
    assert isinstance(outcome, Response)
    assert outcome.answer.varbinds[0][2] == 4242


def test_a_response_moves_the_engine_clock_forward_never_back() -> None:
    session, engines, request = started()
    session.receive(Device(time=5100).response(request.msg_id), now_s=10.0)
    assert (engines[PEER].time, engines[PEER].learned_at) == (5100, 10.0)
    session, _ = exchange(engines=engines)
    request = session.start(20.0)
    session.receive(Device(time=4000).response(request.msg_id), now_s=20.0)
    assert engines[PEER].time == 5100


# (what the device sends, the outcome's type, what the outcome says)
REFUSALS = [
    (UNKNOWN_USER_NAMES, "usmStatsUnknownUserNames (unknown user)"),
    (WRONG_DIGESTS, "usmStatsWrongDigests (wrong authentication key or protocol)"),
    (DECRYPTION_ERRORS, "usmStatsDecryptionErrors (wrong privacy key or protocol)"),
    (UNSUPPORTED_SEC_LEVELS, "usmStatsUnsupportedSecLevels (security level not allowed)"),
    ((1, 3, 6, 1, 6, 3, 15, 1, 1, 99, 0), "report 1.3.6.1.6.3.15.1.1.99.0"),
]


@pytest.mark.parametrize(("oid", "cause"), REFUSALS)
def test_usm_reports_are_refusals_with_their_cause(oid: tuple[int, ...], cause: str) -> None:
    session, _, request = started()
    assert session.receive(Device().report(request.msg_id, oid), 0.0) == Refused(cause)


def test_an_empty_report_is_a_failure() -> None:
    session, _, request = started()
    scoped = ber.ScopedPdu(ENGINE_ID, b"", ber.REPORT, request.msg_id, 0, 0, ())
    assert session.receive(Device().message(request.msg_id, scoped), 0.0) == Failed(
        "empty Report")


def test_not_in_time_window_resynchronises_and_resends_once() -> None:
    session, engines, request = started()
    device = Device(time=9000)
    outcome = session.receive(device.report(request.msg_id, NOT_IN_TIME_WINDOWS, signed=True),
                              now_s=3.0)
    assert isinstance(outcome, Resend)
    assert engines[PEER] == Engine(ENGINE_ID, 7, 9000, 3.0)
    again = sent(outcome.send)
    assert (again.engine_boots, again.engine_time) == (7, 9000)
    # A second notInTimeWindow in the same exchange: refused, no loop.
    second = session.receive(device.report(outcome.send.msg_id, NOT_IN_TIME_WINDOWS,
                                           signed=True), now_s=3.0)
    assert second == Refused("usmStatsNotInTimeWindows (engine time out of the window)")


def test_an_unauthenticated_not_in_time_window_report_moves_no_clock() -> None:
    session, engines, request = started()
    outcome = session.receive(Device(time=9000).report(request.msg_id, NOT_IN_TIME_WINDOWS),
                              0.0)
    assert outcome == Failed("unauthenticated usmStatsNotInTimeWindows report")
    assert engines[PEER].time == 5000


def test_unknown_engine_rediscovers_once_then_a_second_report_is_refused() -> None:
    session, engines, request = started()
    outcome = session.receive(Device().report(request.msg_id, UNKNOWN_ENGINE_IDS), 0.0)
    assert isinstance(outcome, Resend) and PEER not in engines
    probe = outcome.send
    assert probe.what.endswith("(engine discovery)") and sent(probe).engine_id == b""
    replaced = Device(b"\x80\x00\x1f\x88\x04replaced")
    outcome = session.receive(replaced.report(probe.msg_id, UNKNOWN_ENGINE_IDS), 0.0)
    assert isinstance(outcome, Resend) and engines[PEER].engine_id == replaced.engine_id
    third = session.receive(replaced.report(outcome.send.msg_id, UNKNOWN_ENGINE_IDS), 0.0)
    assert third == Refused("usmStatsUnknownEngineIDs (unknown engine ID)")


def test_reports_cannot_loop_an_exchange() -> None:
    """Whatever reports a device sends, an exchange sends at most discovery, request,
    discovery or resend, request: then it ends."""
    for reports in itertools.product([UNKNOWN_ENGINE_IDS, NOT_IN_TIME_WINDOWS], repeat=4):
        session, _ = exchange()
        send = session.start(0.0)
        device = Device()
        sends = 1
        outcome = session.receive(device.report(send.msg_id, UNKNOWN_ENGINE_IDS), 0.0)
        for oid in reports:
            if not isinstance(outcome, Resend):
                break
            sends += 1
            signed = oid == NOT_IN_TIME_WINDOWS and sent(outcome.send).engine_id != b""
            outcome = session.receive(
                device.report(outcome.send.msg_id, oid, signed=signed), 0.0)
        assert not isinstance(outcome, Resend) or sends <= 4
        assert sends <= 4


# ------------------------------------------------------------------ ignored and failed


def test_another_msg_id_is_ignored() -> None:
    session, _, request = started()
    outcome = session.receive(Device().response(request.msg_id + 1), 0.0)
    assert isinstance(outcome, Ignored) and outcome.reason == "unknown msgID"


def test_a_bad_digest_is_ignored() -> None:
    session, _, request = started()
    outcome = session.receive(Device().response(request.msg_id, key=b"another-key-123"), 0.0)
    assert outcome == Ignored("bad digest", f"msgID {request.msg_id}")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(lambda d, m: d.response(m, engine_id=b"\x80other-engine"),
                     "authenticated answer from another engine", id="another-engine"),
        pytest.param(lambda d, m: d.response(m, user=b"someone"), "response for another user",
                     id="another-user"),
        pytest.param(lambda d, m: d.response(m, key=None, flags=0),
                     "response at another security level", id="unauthenticated-response"),
        pytest.param(lambda d, m: d.response(m, request_id=m + 7), "carries request-id",
                     id="another-request-id"),
        pytest.param(lambda d, m: d.response(m, pdu_tag=ber.GET_REQUEST), "GetRequest PDU",
                     id="not-a-response"),
        pytest.param(lambda d, m: d.response(m, priv=b"privpass-1234"),
                     "encrypted response to an authNoPriv request", id="encrypted-to-noPriv"),
    ],
)
def test_answers_not_ours_to_take_fail(answer: object, problem: str) -> None:
    session, _, request = started()
    outcome = session.receive(answer(Device(), request.msg_id), 0.0)  # type: ignore[operator]
    assert isinstance(outcome, Failed) and problem in outcome.problem


def test_an_answer_that_does_not_decrypt_fails() -> None:
    session, _, request = started(AUTH_PRIV)
    outcome = session.receive(Device().response(request.msg_id, priv=b"wrong-privpass"), 0.0)
    assert isinstance(outcome, Failed) and "does not decrypt into a ScopedPDU" in outcome.problem


def test_malformed_datagrams_fail_when_ours_and_are_ignored_otherwise() -> None:
    session, _, request = started()
    good = Device().response(request.msg_id)
    outcome = session.receive(good + b"\x00", 0.0)  # the msgID is read: it is ours
    assert isinstance(outcome, Failed) and outcome.problem.startswith("malformed response")
    assert isinstance(session.receive(b"\x30\x03\x02\x01", 0.0), Ignored)


# ------------------------------------------------------------------ any bytes at all


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.booleans(), st.integers(0, 400))
def test_any_datagram_gives_an_outcome_never_an_exception(
    garbage: bytes, discovering: bool, splice_at: int
) -> None:
    """Whatever arrives - random bytes, or a real answer with bytes spliced in - the
    exchange says what it means; nothing escapes and no engine is learned from it unless
    it was a well-formed discovery report."""
    session, engines = exchange(engines=None if discovering else known_engine())
    send = session.start(0.0)
    answer = (Device().report(send.msg_id, UNKNOWN_ENGINE_IDS) if discovering
              else Device().response(send.msg_id))
    for data in (garbage, answer[:splice_at] + garbage + answer[splice_at:]):
        outcome = session.receive(data, 0.0)
        assert isinstance(outcome, Response | Resend | Refused | Ignored | Failed)
        if discovering and not isinstance(outcome, Resend):
            assert engines == {}
