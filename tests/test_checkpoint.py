"""The checkpoint a partition's new owner restores (collector/checkpoint.py), and the state
it carries: sequence positions, instance owners, the availability engine's seed. Pure."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.availability import (
    AgentOffline,
    AvailabilityEngine,
    Change,
    ElementSpec,
    Emission,
    Fact,
    Observation,
    Seed,
    ServiceKey,
    State,
    Topology,
    Unobserved,
    normalize,
)
from collector.checkpoint import (
    CHUNK_CHARS,
    Checkpoint,
    CheckpointError,
    assemble,
    decode,
    encode,
    to_chunks,
    to_json,
)
from collector.instances import InstanceTracker, Verdict
from collector.outages import OutageRecord
from collector.sequence import Seen, SequenceTracker

MAX = 1 << 20
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)


@st.composite
def ranges(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Sorted, apart, inclusive ranges."""
    out: list[tuple[int, int]] = []
    start = draw(st.integers(0, 50))
    for _ in range(draw(st.integers(0, 4))):
        end = start + draw(st.integers(0, 20))
        out.append((start, end))
        start = end + 2 + draw(st.integers(0, 20))
    return out


@st.composite
def seeds(draw: st.DrawFn) -> Seed:
    facts: list[Fact] = [Observation(e, t, "up" if up else "down") for e, t, up in draw(
        st.lists(st.tuples(names, times, st.booleans()), max_size=5))]
    facts += [Unobserved(e, t, r) for e, t, r in draw(st.lists(
        st.tuples(names, times, names), max_size=3))]
    facts += [AgentOffline(a, t) for a, t in draw(st.lists(st.tuples(names, times),
                                                           max_size=3))]
    states: list[State] = ["up", "down", "unknown", "maintenance"]
    services = draw(st.dictionaries(
        st.builds(ServiceKey, names, names),
        st.lists(st.builds(Change, times, st.sampled_from(states)), max_size=3), max_size=3))
    return Seed(draw(times), facts, services)


outage_records = st.builds(
    OutageRecord, unit=names, kind=st.sampled_from(["root", "device_down", "agent_silent"]),
    started_at=times, alerted=st.booleans(),
    labels=st.dictionaries(names, names, max_size=3),
    annotations=st.dictionaries(names, names, max_size=2),
    children=st.dictionaries(names, st.sampled_from(["active", "unknown", "clear"]),
                             max_size=2))

checkpoints = st.builds(
    Checkpoint, partition=st.just("part-1"), collector=names,
    generation=st.integers(0, 2**62), written_at=times,
    outages=st.lists(outage_records, max_size=3),
    seen=st.dictionaries(names, times, max_size=4),
    sequences=st.dictionaries(names, ranges(), max_size=3),
    online=st.dictionaries(names, st.booleans(), max_size=3),
    instances=st.dictionaries(names, st.tuples(names, times), max_size=3),
    engine=st.none() | seeds())


@given(checkpoints)
@settings(max_examples=150)
def test_decode_of_encode_is_the_checkpoint(cp: Checkpoint) -> None:
    assert decode(encode(cp, MAX), "part-1", MAX) == cp


@given(checkpoints, st.integers(1, 64))
@settings(max_examples=60)
def test_chunks_put_back_together(cp: Checkpoint, chunk_chars: int) -> None:
    blob = encode(cp, MAX)
    chunks = to_chunks(cp.generation, blob, chunk_chars)
    assert all(len(c.data) <= chunk_chars for c in chunks)
    assert assemble(reversed(chunks)) == [(cp.generation, blob)]


def _blob() -> bytes:
    return encode(Checkpoint("part-1", "core-a", 5, 1000.0, seen={"agt-1": 990.0}), MAX)


def test_the_newest_complete_generation_first_and_broken_ones_left_out() -> None:
    old, new, cut, bad = (to_chunks(g, _blob() + bytes([g]), 8) for g in (1, 4, 5, 6))
    forged = [replace(c, data=c.data[::-1]) if c.index == 1 else c for c in bad]
    mixed = [replace(c, count=c.count + 1) if c.index == 0 else c for c in to_chunks(3, _blob(), 8)]
    got = assemble([*old, *new, *cut[1:], *forged, *mixed])
    assert [g for g, _ in got] == [4, 1]
    assert got[0][1] == _blob() + bytes([4])
    assert assemble([]) == []


def _doc(**change: object) -> bytes:
    doc = to_json(Checkpoint("part-1", "core-a", 5, 1000.0, seen={"agt-1": 990.0}))
    doc.update(change)
    return zlib.compress(json.dumps(doc).encode())


@pytest.mark.parametrize(("blob", "why"), [
    (b"", "cut short"),
    (b"not zlib at all", "not a compressed checkpoint"),
    (zlib.compress(b"{not json"), "not JSON"),
    (zlib.compress(b"[1, 2]"), "not an object"),
    (_blob()[:-4], "cut short"),
    (_doc(format="something-else"), "not a checkpoint"),
    (_doc(v=2), "format version 2"),
    (_doc(partition="part-2"), "of partition 'part-2'"),
    (_doc(generation=-1), "generation"),
    (_doc(generation=True), "generation"),
    (_doc(written_at="yesterday"), "written_at"),
    (_doc(seen={"agt-1": "never"}), "seen agt-1"),
    (_doc(outages=[{"unit": "site:x"}]), "bad open outage"),
    (_doc(sequences={"a": [[5, 3]]}), "sequences a"),
    (_doc(sequences={"a": [[0, 3], [4, 9]]}), "sorted and apart"),
    (_doc(online={"a": 1}), "online a"),
    (_doc(instances={"a": ["i-1"]}), "instances a"),
    (_doc(engine={"as_of": 1.0, "observed": [["e", 1.0, "sideways"]]}), "state 'sideways'"),
    (_doc(engine={"as_of": 1.0, "services": [["c", "s", [[1.0, "meh"]]]]}), "state 'meh'"),
    (_doc(engine={"as_of": float("nan")}), "as_of"),
    (zlib.compress(b" " * 2048), "over the 1024-byte limit"),
])
def test_corrupt_foreign_or_oversized_is_refused(blob: bytes, why: str) -> None:
    limit = 1024 if why.startswith("over") else MAX
    with pytest.raises(CheckpointError, match=why.replace("(", r"\(")):
        decode(blob, "part-1", limit)


def test_a_checkpoint_over_the_limit_is_not_encoded() -> None:
    big = Checkpoint("part-1", "core-a", 1, 0.0, seen={f"agt-{i}": 1.0 for i in range(100)})
    with pytest.raises(CheckpointError, match="over the 1000-byte limit"):
        encode(big, 1000)


@given(checkpoints, st.binary(max_size=8), st.integers(0, 10_000))
@settings(max_examples=150)
def test_any_damage_is_refused_or_harmless(cp: Checkpoint, junk: bytes, at: int) -> None:
    """Bytes spliced into the compressed document, or a JSON value replaced: a clean
    refusal or a checkpoint, never another exception."""
    blob = encode(cp, MAX)
    at %= len(blob) + 1
    for damaged in (blob[:at] + junk + blob[at + len(junk):], blob[:at]):
        try:
            decode(damaged, "part-1", MAX)
        except CheckpointError:
            pass


@given(checkpoints, st.sampled_from(["outages", "seen", "sequences", "online", "instances",
                                     "engine", "collector", "written_at"]),
       st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(),
                                                                          max_size=2),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
@settings(max_examples=200)
def test_any_wrong_value_is_refused_cleanly(cp: Checkpoint, key: str, value: object) -> None:
    doc = to_json(cp)
    doc[key] = value
    try:
        decode(zlib.compress(json.dumps(doc).encode()), "part-1", MAX)
    except CheckpointError:
        pass


def test_base64_chunks_are_below_influxdb_string_limit() -> None:
    blob = bytes(range(256)) * 1000
    chunks = to_chunks(1, blob)
    assert len(chunks) == -(-len(base64.b64encode(blob)) // CHUNK_CHARS)
    assert max(len(c.data.encode()) for c in chunks) < 64 * 1024


# ------------------------------------------------------------------- sequences


def test_restored_positions_count_redeliveries_as_duplicates_and_make_no_phantom_gap() -> None:
    a = SequenceTracker()
    for n in range(11):
        a.observe("agt", n)
    a.observe("new", 4)
    b = SequenceTracker()
    b.restore(a.positions())
    # the previous owner had not acknowledged 9 and 10 (re-delivered), had acknowledged
    # 11-13 after its checkpoint (never re-delivered); 14 and 15 come next
    assert [b.observe("agt", n) for n in (9, 10, 14, 15)] == [
        Seen.DUPLICATE, Seen.DUPLICATE, Seen.NEW, Seen.NEW]
    assert (b.duplicates, b.gaps("agt"), b.resumed) == (2, 0, 3)
    assert b.observe("agt", 17) is Seen.NEW and b.gaps("agt") == 1  # a real gap counts
    assert b.observe("new", 5) is Seen.NEW and b.gaps("new") == 0


def test_positions_keep_the_newest_ranges() -> None:
    t = SequenceTracker()
    for n in range(0, 60, 2):
        t.observe("a", n)
    assert t.positions(4)["a"] == [(0, 52), (54, 54), (56, 56), (58, 58)]
    assert t.positions(1)["a"] == [(0, 58)]
    b = SequenceTracker()
    b.restore(t.positions(4))
    assert b.observe("a", 30) is Seen.DUPLICATE  # an old hole forgotten: not a gap either


def test_instance_owners_survive() -> None:
    a = InstanceTracker(takeover_after_s=90)
    a.observe("agt", "box1-aaa", 100.0)
    b = InstanceTracker(takeover_after_s=90)
    b.restore(a.owners())
    assert b.observe("agt", "box2-bbb", 110.0) is Verdict.DUPLICATE  # a clone stays out
    assert b.observe("agt", "box1-aaa", 111.0) is Verdict.OWNER
    assert b.observe("agt", "box1-ccc", 112.0) is Verdict.TAKEOVER  # a restart still may


# ------------------------------------------------------- the engine's seed

S1, S2 = ServiceKey("c1", "fibre"), ServiceKey("c1", "mobile_4g")
TOPOLOGY = Topology((ElementSpec("e1", "a1", (S1,)), ElementSpec("e2", "a2", (S1, S2)),
                     ElementSpec("e3", "a2", (S2,), stale_after_s=40.0)))
facts = st.one_of(
    st.builds(Observation, st.sampled_from(["e1", "e2", "e3"]), st.integers(0, 900).map(float),
              st.sampled_from(["up", "down"])),
    st.builds(Unobserved, st.sampled_from(["e1", "e2", "e3"]),
              st.integers(0, 900).map(float), st.sampled_from(["monitoring_error:auth"])),
    st.builds(AgentOffline, st.sampled_from(["a1", "a2"]), st.integers(0, 900).map(float)))


class Store:
    """What InfluxDB holds after the emissions: upserts by key and time."""

    def __init__(self) -> None:
        self.points: dict[object, dict[float, State]] = {}
        self.rollups: dict[tuple[ServiceKey, float], tuple[float, ...]] = {}

    def write(self, e: Emission) -> None:
        for p in e.elements:
            self.points.setdefault(p.element, {})[p.ts] = p.state
        for s in e.services:
            self.points.setdefault(s.key, {})[s.ts] = s.state
        for r in e.rollups:
            self.rollups[(r.key, r.bucket_start)] = (r.up_s, r.down_s, r.unknown_s)

    def timelines(self) -> dict[object, list[Change]]:
        return {k: normalize(v.items()) for k, v in self.points.items()}


def engine() -> AvailabilityEngine:
    return AvailabilityEngine(TOPOLOGY, stale_after_s=60.0, bucket_s=100.0)


@given(st.lists(facts, max_size=30), st.lists(facts, max_size=30), st.integers(300, 600))
@settings(max_examples=300, deadline=None)
def test_an_engine_seeded_from_a_checkpoint_goes_on_as_the_first_would(
        before: list[Fact], after: list[Fact], cut: int) -> None:
    """Engine A emits at ``cut``, then one engine goes on (A) or its checkpoint's seed does
    (B, after a failover); both get the same live facts. Storage ends the same: the same
    timelines, the same roll-ups, the running bucket's included, nothing written by B
    before ``cut``."""
    live = [f for f in after if f.ts >= cut]
    end = 1200.0
    a, alone, failover = engine(), Store(), Store()
    a.add_many(before)
    for t in (100.0, 250.0, float(cut)):
        e = a.emit(t)
        alone.write(e)
        failover.write(e)
    seed = a.seed()
    assert seed is not None
    wire = decode(encode(Checkpoint("p", "a", 1, cut, engine=seed), MAX), "p", MAX).engine
    assert wire is not None
    b = engine()
    b.continue_from(wire)
    for x in (a, b):
        x.add_many(live)
    alone.write(a.emit(end))
    e = b.emit(end)
    assert all(p.ts >= cut for p in e.elements), "B rewrote A's past"
    assert all(p.ts >= cut for p in e.services), "B rewrote A's past"
    failover.write(e)
    assert failover.timelines() == alone.timelines()
    assert failover.rollups == alone.rollups


def test_a_seed_keeps_only_what_decides_from_its_time_on() -> None:
    a = engine()
    a.add_many([Observation("e1", 10.0, "up"), Observation("e1", 200.0, "down"),
                Observation("e2", 100.0, "up"), Unobserved("e3", 50.0, "monitoring_error:auth"),
                AgentOffline("a1", 5.0), Observation("e1", 260.0, "up")])
    a.emit(230.0)
    seed = a.seed()
    assert seed is not None and seed.as_of == 230.0
    assert set(seed.facts) == {
        Observation("e1", 200.0, "down"), Observation("e1", 260.0, "up"),  # later kept
        Unobserved("e3", 50.0, "monitoring_error:auth"),  # holds until the next fact
        AgentOffline("a1", 5.0)}  # e2's up of 100 went stale at 160: nothing to carry
    assert engine().seed() is None  # nothing emitted yet: nothing to go on from
