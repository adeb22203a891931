"""The compact batch (xanet/compact.py): exact round trips, the same InfluxDB lines as the
JSON path, and hostile frames refused by name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.backlogbatch import next_batch, next_try
from agent.spool import Entry
from collector import schema
from lab.backlog import site_backlog
from tests.test_fuzz import device_polls, idents
from xanet import capabilities, compact, topics, wire
from xanet.compact_columns import Writer

TOPIC = topics.build("ha-giang", "00688", "lungcu-hub", "telemetry")
WHERE = topics.parse(TOPIC)
BIG = compact.Limits(max_payload_bytes=10**8, max_decompressed_bytes=10**9,
                     max_messages=10**6, max_polls=10**7)
REASONS = {"too_large", "bad_frame", "unknown_version", "too_large_decompressed",
           "too_many_messages", "too_many_polls", "too_many_interfaces"}


def json_path(msgs: list[wire.Telemetry]) -> list[wire.Telemetry]:
    out = []
    for m in msgs:
        back = wire.decode(wire.encode(m), "telemetry")
        assert isinstance(back, wire.Telemetry)
        out.append(back)
    return out


def lines(msgs: list[wire.Telemetry]) -> list[str]:
    return [ln for m in msgs for ln in schema.telemetry_lines(WHERE, m)]


def test_a_sites_backlog_round_trips_exactly_and_small() -> None:
    msgs = site_backlog()
    data = compact.encode(msgs)
    assert compact.decode(data, BIG) == msgs
    assert lines(compact.decode(data, BIG)) == lines(json_path(msgs))  # type: ignore[arg-type]
    samples = sum(len(p.interfaces) for m in msgs for p in m.polls)
    assert len(data) / samples < 12  # bench/compact.py measures the real figure


def test_rates_are_predicted_not_sent() -> None:
    """Most of the agent's rates are rebuilt bit for bit from the counters and one
    interval per poll: the floats' stream holds about one double per poll."""
    msgs = site_backlog(polls=10)
    w = Writer()
    w.body(msgs)
    assert len(w.out["F"]) <= 8 * 3 * len(msgs)


@st.composite
def batches(draw: st.DrawFn) -> list[wire.Telemetry]:
    """Messages of one agent whose devices come back poll after poll (so that the deltas
    and the predictions are exercised), with anything the wire allows in them."""
    agent = draw(idents)
    devices = draw(st.lists(idents, min_size=1, max_size=3, unique=True))
    msgs = []
    for seq in draw(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=4)):
        polls = draw(st.lists(device_polls(), min_size=1, max_size=3))
        polls = [p.model_copy(update={"device": draw(st.sampled_from(devices))})
                 for p in polls]
        msgs.append(wire.Telemetry(
            agent=agent, site="lungcu-hub", seq=seq, polls=polls,
            instance=draw(st.none() | idents),
            sent=draw(st.none() | st.datetimes(timezones=st.just(UTC)))))
    return msgs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_any_batch_round_trips_to_the_json_paths_messages_and_lines(
        msgs: list[wire.Telemetry]) -> None:
    back = compact.decode(compact.encode(msgs, level=1), BIG)
    assert back == msgs
    assert back == json_path(msgs)
    assert lines(back) == lines(json_path(msgs))  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n_dev=st.integers(1, 3), n_if=st.integers(1, 6),
       polls=st.integers(1, 6), delta_max=st.sampled_from([1, 1000, 10**7, 2**33]),
       traffic=st.sampled_from(["uniform", "site"]))
def test_the_agents_own_polls_round_trip_with_their_rates(
        seed: int, n_dev: int, n_if: int, polls: int, delta_max: int, traffic: str) -> None:
    """Polls whose rates come from agent/rates.py (predicted, withheld over speed, Counter32
    wraps): exact, and the JSON path's lines."""
    msgs = site_backlog(n_dev=n_dev, n_if=n_if, polls=polls, seed=seed, delta_max=delta_max,
                        traffic=traffic)  # type: ignore[arg-type]
    back = compact.decode(compact.encode(msgs, level=1), BIG)
    assert back == msgs
    assert lines(back) == lines(json_path(msgs))  # type: ignore[arg-type]


def test_a_bad_inner_message_is_refused_alone() -> None:
    good = site_backlog(n_dev=1, polls=3)
    bad = good[1].model_copy(update={"agent": "not an id"})  # model_copy skips validation
    out = compact.decode(compact.encode([good[0], bad, good[2]]), BIG)
    assert out[0] == good[0] and out[2] == good[2]
    assert isinstance(out[1], compact.Invalid) and out[1].reason == "invalid"
    assert b'"agent":"not an id"' in out[1].payload


def _reason(payload: bytes, limits: compact.Limits = BIG) -> str:
    with pytest.raises(wire.DecodeError) as exc:
        compact.decode(payload, limits)
    return exc.value.reason


def test_bounds_are_named() -> None:
    msgs = site_backlog(n_dev=2, polls=5)
    data = compact.encode(msgs)
    size = len(compact.body(msgs))
    assert _reason(data, compact.Limits(max_payload_bytes=len(data) - 1)) == "too_large"
    assert _reason(data, compact.Limits(max_decompressed_bytes=size - 1)) \
        == "too_large_decompressed"
    assert _reason(data, compact.Limits(max_messages=len(msgs) - 1)) == "too_many_messages"
    assert _reason(data, compact.Limits(max_polls=len(msgs) - 1)) == "too_many_polls"
    assert _reason(b"XNB\x02\x00" + data[5:]) == "unknown_version"
    assert _reason(b"XNB\x01\x01" + data[5:]) == "bad_frame"  # a dictionary we lack
    assert _reason(b'{"v":1}') == "bad_frame"
    assert _reason(data[:-3]) == "bad_frame"


def test_a_decompression_bomb_stops_at_the_bound() -> None:
    """100 MB of zeros in a few kB: refused after reading one byte past the bound."""
    bomb = b"XNB\x01\x00" + zstandard.ZstdCompressor(level=3).compress(bytes(100 * 2**20))
    assert len(bomb) < 10_000
    assert _reason(bomb, compact.Limits()) == "too_large_decompressed"
    streamed = zstandard.ZstdCompressor(level=3, write_content_size=False)
    unsized = b"XNB\x01\x00" + streamed.compress(bytes(100 * 2**20))
    assert _reason(unsized, compact.Limits()) == "too_large_decompressed"


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_mutated_frames_never_crash(data: st.DataObject) -> None:
    """Random bytes, a valid body's bytes flipped, cut or extended (recompressed, so
    zstd's checksum does not hide the body's own checks): refused by name, or messages
    the wire models accepted."""
    msgs = site_backlog(n_dev=2, n_if=3, polls=2, seed=data.draw(st.integers(0, 5)))
    body = bytearray(compact.body(msgs))
    how = data.draw(st.sampled_from(["flip", "cut", "extend", "random", "frame"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(body) - 1))
            body[at] = data.draw(st.integers(0, 255))
        payload = compact.frame(bytes(body), level=1)
    elif how == "cut":
        payload = compact.frame(bytes(body[:data.draw(st.integers(0, len(body) - 1))]), level=1)
    elif how == "extend":
        payload = compact.frame(bytes(body) + data.draw(st.binary(min_size=1, max_size=20)),
                                level=1)
    elif how == "random":
        payload = b"XNB\x01\x00" + data.draw(st.binary(max_size=300))
    else:
        frame = bytearray(compact.frame(bytes(body), level=1))
        at = data.draw(st.integers(0, len(frame) - 1))
        frame[at] ^= 1 << data.draw(st.integers(0, 7))
        payload = bytes(frame)
    try:
        out = compact.decode(payload, compact.Limits())
    except wire.DecodeError as exc:
        assert exc.reason in REASONS, exc
        return
    for m in out:
        assert isinstance(m, wire.Telemetry | compact.Invalid)
        if isinstance(m, compact.Invalid):
            assert m.reason == "invalid"


# -- the agent's side: which spool entries form one batch (agent/backlogbatch.py) ------------


def _entries(msgs: list[wire.Telemetry], topic: str = TOPIC) -> list[Entry]:
    return [Entry(m.seq, topic, wire.encode(m.model_copy(update={"sent": None})), 0.0)
            for m in msgs]


def test_next_batch_fits_every_bound_and_keeps_every_message() -> None:
    msgs = site_backlog(n_dev=2, polls=30)
    entries = _entries(msgs)
    now = datetime(2026, 11, 29, tzinfo=UTC)
    caps = capabilities.announce(compact.Limits(max_messages=25, max_polls=20))
    first: int | None = None
    got: list[wire.Telemetry | compact.Invalid] = []
    sizes = []
    while entries:
        batch = next_batch(entries, caps, 2048, now, first_try=first)
        assert batch is not None and batch.topic.endswith("/lungcu-hub/batch")
        first = next_try(batch, first, caps.max_batch_messages)
        assert len(batch.payload) <= 2048 and len(batch.entries) <= 20
        got += compact.decode(batch.payload)
        sizes.append(len(batch.entries))
        entries = entries[len(batch.entries):]
    assert got == [m.model_copy(update={"sent": now}) for m in msgs]
    assert len(sizes) < len(msgs) / 5  # batches, not single messages


def test_next_batch_sends_json_when_it_should() -> None:
    msgs = site_backlog(n_dev=1, polls=3)
    now = datetime(2026, 11, 29, tzinfo=UTC)
    caps = capabilities.announce(compact.Limits())
    assert next_batch(_entries(msgs), None, 65536, now) is None  # no announcement
    assert next_batch(_entries(msgs), capabilities.Capabilities(), 65536, now) is None
    status = topics.build("ha-giang", "00688", "lungcu-hub", "status")
    assert next_batch(_entries(msgs, status), caps, 65536, now) is None
    assert next_batch(_entries(msgs), caps, 10, now) is None  # too large even alone
    other = topics.build("ha-giang", "00688", "other-site", "telemetry")
    mixed = _entries(msgs[:2]) + _entries(msgs[2:], other)
    batch = next_batch(mixed, caps, 65536, now)
    assert batch is not None and batch.seqs == [0, 1]  # one site per batch
    assert capabilities.decode(capabilities.encode(caps)) == caps
    assert capabilities.decode(b"{not json") is None
    assert capabilities.decode(b'{"encodings":["json","zstd-batch-9"],"new":1}') is not None
