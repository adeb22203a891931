"""Pure parts of the uplink: the reconnect policy (takeovers back off), the instance id,
the size of a PUBLISH packet, and packing polls into messages under a limit."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import packing
from agent.instance import instance_id
from agent.reconnect import ReconnectPolicy
from agent.uplink_batches import packet_bytes
from tests.factories import poll
from xanet import wire


def test_a_stable_connection_resets_the_backoff_a_flapping_one_does_not() -> None:
    rng = random.Random(1)
    p = ReconnectPolicy(min_s=1.0, max_s=60.0, stable_s=60.0)
    assert not p.lost("other", None)
    p.delay_s(rng)
    p.delay_s(rng)
    assert p.attempt == 2
    assert not p.lost("other", 120.0)  # held for two minutes: start again at the bottom
    assert p.attempt == 0
    for _ in range(6):  # lost soon after each connect: delays keep growing
        p.lost("other", 3.0)
        p.delay_s(rng)
    assert p.attempt == 6


@pytest.mark.parametrize(("losses", "taken"), [
    ([("taken_over", 5.0)], 1),                       # the broker said 0x8E
    ([("closed", 5.0)], 0),                           # one close: a broker restart, maybe
    ([("closed", 5.0), ("closed", 8.0)], 1),          # closed again soon after: a twin
    ([("closed", 5.0), ("closed", 8.0), ("closed", 2.0)], 2),
    ([("closed", 5.0), ("closed", 300.0)], 0),        # the second held: no twin
    ([("closed", 5.0), ("other", None), ("closed", 4.0)], 1),  # a refused connect between
])
def test_takeover_is_the_brokers_word_or_a_run_of_quick_closes(
        losses: list[tuple[str, float | None]], taken: int) -> None:
    p = ReconnectPolicy(min_s=1.0, max_s=60.0, stable_s=60.0)
    for loss, lasted in losses:
        p.lost(loss, lasted)  # type: ignore[arg-type]
    assert p.taken_over == taken


@given(st.text(max_size=200), st.text(alphabet="0123456789abcdef", min_size=8, max_size=8))
def test_instance_id_is_always_a_wire_ident(host: str, token: str) -> None:
    value = instance_id(host, token)
    assert re.fullmatch(wire.IDENT_PATTERN, value)
    assert value.endswith(token)


def test_instance_ids_differ_per_process() -> None:
    assert instance_id("box-1") != instance_id("box-1")
    assert instance_id("tq-hub.01 (lab)", "0011aabb") == "tq-hub.01-lab-0011aabb"


def _varint_len(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16_384 else 3 if n < 2_097_152 else 4


@pytest.mark.parametrize("n", [0, 88, 89, 16_000, 2_097_200])
def test_packet_bytes_counts_the_varint_length(n: int) -> None:
    topic = "xanet/v1/tq/02230/hub-1/telemetry"  # 33 bytes
    for v5, props in ((True, 1), (False, 0)):
        body = 2 + len(topic) + 2 + props + n  # topic, packet id, properties, payload
        assert packet_bytes(topic, b"x" * n, v5=v5) == 1 + _varint_len(body) + body


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=12),
       limit=st.sampled_from([8_192, 20_000, 65_536]),
       max_polls=st.integers(min_value=1, max_value=20),
       instance=st.sampled_from([None, "box-0011aabb"]),
       seq=st.sampled_from([0, 7, 2**63 - 1]))
def test_pack_fits_keeps_order_loses_nothing_and_encodes_like_wire(
        sizes: list[int], limit: int, max_polls: int, instance: str | None, seq: int) -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    polls = [poll(f"d{i}", ts=ts, n_if=n) for i, n in enumerate(sizes)]
    envelope = packing.envelope_bytes("agent-1", "hub-1", instance)
    groups = packing.pack(polls, limit_bytes=limit, max_polls=max_polls, envelope=envelope)
    for g in groups:
        assert 1 <= len(g) <= max_polls
        spliced = packing.encode("agent-1", "hub-1", instance, seq, [data for _, data in g])
        assert spliced == wire.encode(wire.Telemetry(agent="agent-1", site="hub-1", seq=seq,
                                                     instance=instance, polls=[p for p, _ in g]))
        longest = packing.encode("agent-1", "hub-1", instance, 2**63 - 1,
                                 [data for _, data in g])
        # the send time stamped at hand-off fits too, and the collector reads it back
        sent = datetime(2026, 11, 29, 15, 40, 0, 123456, tzinfo=UTC)
        stamped = packing.stamp_sent(longest, sent)
        assert len(stamped) <= limit
        decoded = wire.decode(stamped, "telemetry")
        assert isinstance(decoded, wire.Telemetry) and decoded.sent == sent
        assert decoded.model_copy(update={"sent": None}) == wire.decode(longest, "telemetry")
    flat = [(p.device, i.index) for g in groups for p, _ in g for i in p.interfaces]
    assert flat == [(p.device, i.index) for p in polls for i in p.interfaces]
    assert [p.device for g in groups for p, _ in g if not p.interfaces] == \
        [p.device for p in polls if not p.interfaces]
