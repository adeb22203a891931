"""Fuzzing the collector's message handling: ``Collector.handle(topic, payload)``.

Hypothesis generates well over 10,000 payloads — random bytes, random JSON,
deep nesting, huge numbers, valid telemetry and status with one or more
mutations (fields deleted, added, mistyped; NaN/Infinity; wrong site, kind or
version; timestamps far off; lists over their bounds; odd Unicode) and bad
topics — interleaved with valid messages. For every message:

* nothing escapes ``handle``;
* it is counted exactly once: accepted, or rejected under one reason (a
  message-level rejection also leaves exactly one dead letter);
* a payload built to be bad for a known reason is rejected with that reason;
* a valid message is accepted whole, and at the end every line it produced
  has reached the writer.

The writer is a small fake honouring ``collector.writer.LineWriter`` that
encodes the batch exactly as the InfluxDB v1 writer does (so a line that
cannot be encoded would fail here); the broker is not involved. The real
MQTT path with bad payloads interleaved is tested in test_pipeline.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from collector import schema
from collector.app import Collector
from collector.config import CollectorConfig
from tests.profiledata import power_readings, profile_readings
from xanet import topics, wire

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PROVINCE, COMMUNE, SITE = "ha-giang", "00688", "lungcu-hub"
TELEMETRY = topics.build(PROVINCE, COMMUNE, SITE, "telemetry")
STATUS = topics.build(PROVINCE, COMMUNE, SITE, "status")
MAX_PAYLOAD = 256 * 1024
MIN_PAYLOADS = 10_000
EXAMPLES = 1300  # Hypothesis examples per round; each is a batch of 6 to 14 payloads

#: Any one of these reasons; ``None`` = may be accepted or rejected, but counted once.
Expect = str | frozenset[str] | None
GOOD = "good"


class RecordingWriter:
    """``LineWriter``: keeps every line, encoded the way InfluxV1Writer encodes a batch."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def write(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        assert body.count(b"\n") == len(lines), "a line carries a raw newline"
        self.lines.extend(lines)

    async def close(self) -> None:
        pass


# --------------------------------------------------------------------------
# strategies

idents = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,15}", fullmatch=True)
counters = st.integers(0, 2**64 - 1)
rates = st.floats(0, 1e12, allow_nan=False, allow_infinity=False)
odd_text = st.text(st.characters(codec="utf-8"), max_size=40)  # any Unicode, no surrogates
long_text = st.text(st.characters(codec="utf-8"), min_size=250, max_size=256)  # at the bound


@st.composite
def interfaces(draw: st.DrawFn, index: int) -> wire.InterfacePoll:
    return wire.InterfacePoll(
        index=index,
        name=draw(odd_text),
        oper=draw(st.none() | st.integers(1, 7)),
        admin=draw(st.none() | st.integers(1, 3)),
        speed_bps=draw(st.none() | counters),
        hc=draw(st.booleans()),
        in_octets=draw(st.none() | counters),
        out_octets=draw(st.none() | counters),
        in_bps=draw(st.none() | rates),
        out_bps=draw(st.none() | rates),
        in_util_pct=draw(st.none() | rates),
        out_util_pct=draw(st.none() | rates),
        rate_note=draw(st.none() | odd_text),
        alias=draw(st.none() | odd_text.filter(bool) | long_text),
    )


@st.composite
def device_polls(draw: st.DrawFn) -> wire.DevicePoll:
    n_if = draw(st.integers(0, 4))
    return wire.DevicePoll(
        device=draw(idents),
        # within the collector's default bounds (300 s ahead, 31 days behind)
        ts=NOW + timedelta(seconds=draw(st.integers(-30 * 86400, 290))),
        reachable=draw(st.booleans()),
        rtt_ms=draw(st.none() | rates),
        uptime_cs=draw(st.none() | st.integers(0, 2**32 - 1)),
        error=draw(st.none() | odd_text),
        interfaces=[draw(interfaces(i)) for i in range(1, n_if + 1)],
        # profile values (within the collector's default bounds: a few, short row tags)
        profiles=draw(st.none() | st.lists(profile_readings(max_values=4), max_size=2)),
        power=draw(st.none() | power_readings),
    )


@st.composite
def good_telemetry(draw: st.DrawFn) -> wire.Telemetry:
    return wire.Telemetry(agent=draw(idents), site=SITE, seq=draw(st.integers(0, 2**63 - 1)),
                          polls=draw(st.lists(device_polls(), min_size=1, max_size=3)))


@st.composite
def good_status(draw: st.DrawFn) -> wire.Status:
    health = draw(st.none() | st.builds(
        wire.AgentHealth, spool_depth=st.integers(0, 10**6),
        spool_oldest_age_s=st.none() | rates, spool_dropped=st.integers(0, 10**6),
        poll_overruns=st.integers(0, 10**6), devices=st.integers(0, 10**4)))
    return wire.Status(agent=draw(idents), site=SITE, state=draw(st.sampled_from(
        ["online", "offline"])), ts=draw(st.none() | st.just(NOW)),
        reason=draw(st.none() | odd_text), version=draw(st.none() | odd_text), health=health)


json_scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                | st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=25,
)


@dataclass
class Case:
    topic: str
    payload: bytes
    expect: Expect
    good: wire.Telemetry | wire.Status | None = None
    what: str = ""


#: Stands for an integer literal of more digits than Python's int() takes (4300).
HUGE_INT = "__huge_int__"


def _dump(obj: Any) -> bytes:
    text = json.dumps(obj, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    return text.replace(f'"{HUGE_INT}"', "9" * 4400).encode("utf-8", "surrogatepass")


# --- mutations of a valid message (as a dict). Each returns the expected outcome.

Mutation = Callable[[st.DrawFn, dict[str, Any]], Expect]
SCHEMA = frozenset({"invalid"})


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _parent(msg: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = msg
    for p in path[:-1]:
        node = node[p]
    return node


def m_delete(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    if not _paths(msg):
        return None
    path = draw(st.sampled_from(_paths(msg)))
    parent = _parent(msg, path)
    del parent[path[-1]]
    if path == ("v",):
        return "unknown_version"
    return None  # many fields are optional; an emptied list may still be valid


def m_add_field(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    dicts = [msg] + [_parent(msg, (*p, None)) for p in _paths(msg)
                     if isinstance(_parent(msg, (*p, None)), dict)]
    target = draw(st.sampled_from(dicts))
    key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in target))
    target[key] = draw(json_values)
    if target is msg and key in ("v", "kind"):
        return None
    return SCHEMA | {"unknown_version", "wrong_kind"}


def m_retype(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    if not _paths(msg):
        return None
    path = draw(st.sampled_from(_paths(msg)))
    parent = _parent(msg, path)
    old = parent[path[-1]]
    new = draw(json_values.filter(lambda v: type(v) is not type(old)))
    parent[path[-1]] = new
    return None  # e.g. 3 -> 3.0, or "7" for an int field, is still acceptable


def m_nonfinite(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    numbers = [p for p in _paths(msg)
               if isinstance(_parent(msg, p)[p[-1]], int | float)
               and not isinstance(_parent(msg, p)[p[-1]], bool)]
    if not numbers:
        return None
    path = draw(st.sampled_from(numbers))
    if path == ("v",):
        _parent(msg, path)[path[-1]] = math.nan
        return "unknown_version"
    _parent(msg, path)[path[-1]] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return SCHEMA


def m_huge_number(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    numbers = [p for p in _paths(msg) if isinstance(_parent(msg, p)[p[-1]], int)
               and not isinstance(_parent(msg, p)[p[-1]], bool)]
    if not numbers:
        return None
    path = draw(st.sampled_from(numbers))
    _parent(msg, path)[path[-1]] = draw(st.sampled_from([
        2**64, -1, -(2**63), 10**30, HUGE_INT]))
    return None  # out of range for most fields, not for every one (a float, a seq)


def m_wrong_site(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    msg["site"] = draw(idents.filter(lambda s: s != SITE))
    return "topic_mismatch"


def m_bad_ident(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    key = draw(st.sampled_from(["agent", "site"]))
    msg[key] = draw(st.sampled_from(["", "a/b", "+", "#", "with space", "ä-umlaut", "x" * 65,
                                     "tab\tbed", "nul\x00", "\u202egnp", "🙂"]))
    return SCHEMA


def m_version(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    msg["v"] = draw(json_values.filter(lambda v: not (isinstance(v, int | float) and v == 1)))
    return "unknown_version"


def m_kind(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    msg["kind"] = draw(json_values.filter(lambda v: v not in ("telemetry", "status")))
    return "wrong_kind"


def m_timestamp(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    choice = draw(st.sampled_from(["future", "past", "naive", "garbage"]))
    stamped = [msg]
    if isinstance(msg.get("polls"), list):
        if not msg["polls"] or not all(isinstance(p, dict) for p in msg["polls"]):
            return None  # broken by an earlier mutation
        stamped = msg["polls"]
    if choice in ("future", "past"):
        # every poll (or the status) out of bounds: the message is rejected (polls
        # dropped one by one are tested in test_ingest)
        for p in stamped:
            if choice == "future":
                offset = timedelta(seconds=draw(st.integers(301, 10**10)))
            else:
                offset = -timedelta(seconds=draw(st.integers(32 * 86400, 10**10)))
            p["ts"] = max(datetime.min.replace(tzinfo=UTC), NOW + offset).isoformat()
        return f"ts_{choice}"
    target = draw(st.sampled_from(stamped))
    target["ts"] = ("2026-03-01T12:00:00" if choice == "naive"  # no time zone
                    else draw(st.sampled_from(["", "now", "2026-13-45T99:00:00Z", "yesterday"])))
    return SCHEMA


def m_huge_list(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    if "polls" not in msg:
        msg["health"] = [0] * draw(st.integers(1000, 50_000))
        return SCHEMA | {"too_large"}
    which = draw(st.sampled_from(["polls", "interfaces", "profiles", "values", "tags"]))
    polls = msg.get("polls")
    if which != "polls" and not (isinstance(polls, list) and polls
                                 and isinstance(polls[0], dict)):
        return None  # broken by an earlier mutation
    if which == "polls":
        msg["polls"] = [{"device": "d", "ts": NOW.isoformat(), "reachable": False}
                        ] * (wire.MAX_POLLS_PER_MESSAGE + draw(st.integers(1, 500)))
    elif which == "interfaces":
        msg["polls"][0]["interfaces"] = [{"index": 1, "name": "", "hc": True}] * (
            wire.MAX_INTERFACES_PER_POLL + draw(st.integers(1, 100)))
    elif which == "profiles":
        msg["polls"][0]["profiles"] = [{"profile": "p"}] * (
            wire.MAX_PROFILES_PER_POLL + draw(st.integers(1, 100)))
    elif which == "values":
        msg["polls"][0]["profiles"] = [{"profile": "p", "values": [
            {"metric": "m", "value": 1}] * (wire.MAX_PROFILE_VALUES + draw(st.integers(1, 100)))}]
    else:
        msg["polls"][0]["profiles"] = [{"profile": "p", "values": [{"metric": "m", "value": 1,
            "tags": {f"t{i}": "" for i in range(wire.MAX_PROFILE_TAGS + 1)}}]}]
        return SCHEMA
    return SCHEMA | {"too_large"}


def m_profile_value(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    """A profile value the wire forbids: two values at once, none, a rate without a counter,
    an unknown reason or power state nobody defined, a metric name out of the grammar."""
    polls = msg.get("polls")
    if not (isinstance(polls, list) and polls and isinstance(polls[0], dict)):
        return None
    bad = draw(st.sampled_from([
        {"metric": "m", "value": 1.5, "text": "x"}, {"metric": "m"},
        {"metric": "m", "value": 1.0, "unknown": "sentinel"}, {"metric": "m", "rate": 1.0,
                                                                "value": 2.0},
        {"metric": "m", "unknown": "dunno"}, {"metric": "Bad-Name", "value": 1.0},
        {"metric": "m", "counter": -1}, {"metric": "m", "counter": 2**64},
        {"metric": "m", "value": 1.0, "tags": {"Bad": "x"}},
        {"metric": "m", "code": 2**40, "text": "x"}, {"metric": "m", "value": "1e999"},
    ]))
    if draw(st.booleans()):
        polls[0]["profiles"] = [{"profile": "ups-mib", "values": [bad]}]
    else:
        polls[0]["power"] = draw(st.sampled_from([
            {"state": "on_fire", "profile": "ups-mib"}, {"state": "mains"},
            {"state": "mains", "profile": "ups-mib", "charge_pct": 101},
            {"state": "mains", "profile": "ups-mib", "minutes_remaining": -1},
            {"state": "mains", "profile": "UPS MIB"}]))
    return SCHEMA


def m_empty_polls(draw: st.DrawFn, msg: dict[str, Any]) -> Expect:
    if "polls" not in msg:
        msg["state"] = draw(json_values.filter(lambda v: v not in ("online", "offline")))
        return SCHEMA
    msg["polls"] = []
    return SCHEMA


MUTATIONS: list[Mutation] = [m_delete, m_add_field, m_retype, m_nonfinite, m_huge_number,
                             m_wrong_site, m_bad_ident, m_version, m_kind, m_timestamp,
                             m_huge_list, m_empty_polls, m_profile_value]


def _merge(a: Expect, b: Expect) -> Expect:
    """Expected outcome of two mutations applied in turn: known only if both are."""
    if a is None or b is None:
        return None
    sa = frozenset([a]) if isinstance(a, str) else a
    sb = frozenset([b]) if isinstance(b, str) else b
    return sa | sb


def mutated(draw: st.DrawFn, model: wire.Telemetry | wire.Status) -> Case:
    """``model`` with one or two mutations."""
    msg = json.loads(wire.encode(model))
    expect: Expect = None
    names = []
    for _ in range(draw(st.integers(1, 2))):
        mutation = draw(st.sampled_from(MUTATIONS))
        names.append(mutation.__name__)
        before = copy.deepcopy(msg)
        got = mutation(draw, msg)
        expect = got if len(names) == 1 else _merge(expect, got)
        if msg == before:  # a mutation that could not apply (e.g. no number to break)
            expect = None
    payload = _dump(msg)
    if len(payload) > MAX_PAYLOAD:
        expect = "too_large"
    topic = STATUS if isinstance(model, wire.Status) else TELEMETRY
    return Case(topic, payload, expect, what="+".join(names))


def garbage(draw: st.DrawFn, model: wire.Telemetry) -> Case:
    kind = draw(st.sampled_from(["bytes", "json", "nested", "padding", "int", "topic"]))
    if kind == "bytes":
        return Case(TELEMETRY, draw(st.binary(max_size=512)),
                    frozenset({"not_json", "not_object", "unknown_version", "wrong_kind",
                               "invalid"}), what=kind)
    if kind == "json":
        value = draw(json_values)
        return Case(draw(st.sampled_from([TELEMETRY, STATUS])), _dump(value),
                    frozenset({"not_object", "unknown_version", "wrong_kind", "invalid"}),
                    what=kind)
    if kind == "nested":
        depth = draw(st.integers(900, 40_000))
        opener = draw(st.sampled_from([b"[", b'{"a":', b'{"v":1,"polls":[']))
        return Case(TELEMETRY, opener * depth, frozenset({"not_json", "too_large"}), what=kind)
    if kind == "padding":  # a valid message made too large with whitespace
        body = wire.encode(model)
        return Case(TELEMETRY, body + b" " * (MAX_PAYLOAD + 1 - len(body)), "too_large",
                    what=kind)
    if kind == "int":
        return Case(TELEMETRY, b'{"v":1,"seq":' + b"9" * draw(st.integers(4301, 20_000)) + b"}",
                    "not_json", what=kind)
    topic = draw(st.one_of(
        st.text(max_size=80),
        st.sampled_from(["xanet/v2/a/b/c/telemetry", "xanet/v1/a/b/c/d/telemetry",
                         "xanet/v1/a/b/c/metrics", "xanet/v1/a/b/c d/telemetry",
                         "xanet/v1/+/+/+/telemetry", "xanet/v1/a/b/#", "/xanet/v1/a/b/c/status",
                         "xanet/v1/a//c/status", "xanet/v1/ä/b/c/status"])))
    return Case(topic, wire.encode(model), "bad_topic", what=kind)


def good(model: wire.Telemetry | wire.Status, i: int) -> Case:
    if isinstance(model, wire.Telemetry):  # the same polls again, as the next message
        model = model.model_copy(update={"seq": (model.seq + i) % 2**63})
        return Case(TELEMETRY, wire.encode(model), GOOD, good=model, what="good")
    return Case(STATUS, wire.encode(model), GOOD, good=model, what="good")


@st.composite
def batches(draw: st.DrawFn) -> list[Case]:
    """A valid telemetry and a valid status message (the expensive draws), then a run
    of cases made from them: the valid ones again, mutants, garbage."""
    tel = draw(good_telemetry())
    sta = draw(good_status())
    cases = [good(tel, 0)]
    for i in range(1, draw(st.integers(6, 14))):
        pick = draw(st.sampled_from(["good", "mutated", "mutated", "mutated", "garbage"]))
        model: wire.Telemetry | wire.Status = tel if draw(st.booleans()) else sta
        if pick == "good":
            cases.append(good(model, i))
        elif pick == "mutated":
            cases.append(mutated(draw, model))
        else:
            cases.append(garbage(draw, tel))
    return draw(st.permutations(cases))


# --------------------------------------------------------------------------
# the test


@dataclass
class Tally:
    payloads: int = 0
    bad: int = 0
    good: int = 0
    by_what: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    expected_lines: Counter[str] = field(default_factory=Counter)


def _reasons(stats: dict[str, int]) -> Counter[str]:
    return Counter({k.removeprefix("rejected_"): v for k, v in stats.items()
                    if k.startswith("rejected_")})


def test_fuzz_collector_handle(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="xanet")  # one warning per rejection otherwise
    cfg = CollectorConfig.model_validate({
        "collector": {"id": "fuzz"},
        "influx": {"flush_interval_s": 0.05, "max_buffer_lines": 10_000_000},
        "ingest": {"dead_letter_dir": str(tmp_path / "dead"),
                   "dead_letter_max_bytes": 64 * 1024 * 1024},
    })
    writer = RecordingWriter()
    collector = Collector(cfg, writer=writer)
    tally = Tally()
    loop = asyncio.new_event_loop()
    sink_stop = asyncio.Event()
    sink = loop.create_task(collector.sink.run(sink_stop))
    started = time.monotonic()

    async def handle(case: Case) -> None:
        before = collector.stats()
        await collector.handle(case.topic, case.payload, now=NOW)
        after = collector.stats()
        d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        reasons = +(_reasons(after) - _reasons(before))
        where = f"{case.what}: {case.topic[:60]!r} {case.payload[:120]!r} -> {reasons}"
        assert d["received"] == 1, where
        # counted once: accepted, or rejected with one reason and one dead letter
        assert d["accepted"] + d["dead_letters"] == 1, where
        if d["dead_letters"]:
            assert d["rejected"] == 1 and len(reasons) == 1, where
        if case.expect == GOOD:
            assert d["accepted"] == 1 and d["rejected"] == 0, where
            assert case.good is not None
            where_t = topics.parse(case.topic)
            lines = (schema.telemetry_lines(where_t, case.good)
                     if isinstance(case.good, wire.Telemetry)
                     else [schema.status_line(where_t, case.good, NOW)])
            tally.expected_lines.update(lines)
            tally.good += 1
        else:
            tally.bad += 1
            if case.expect is not None:
                allowed = {case.expect} if isinstance(case.expect, str) else case.expect
                assert d["dead_letters"] == 1, where
                assert set(reasons) <= allowed, (where, allowed)
        tally.payloads += 1
        tally.by_what[case.what.split("+")[0]] += 1
        tally.reasons.update(reasons)

    # No shrinking: the failing case is printed in full by the assertion messages, and
    # shrinking batches of 256 KiB payloads takes minutes.
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(batch=batches())
    def run(batch: list[Case]) -> None:
        for case in batch:
            loop.run_until_complete(handle(case))

    try:
        while tally.payloads < MIN_PAYLOADS:  # each round draws fresh examples (no database)
            run()
        sink_stop.set()
        loop.run_until_complete(sink)
    finally:
        loop.close()
    elapsed = time.monotonic() - started

    stats = collector.stats()
    print(f"fuzz: {tally.payloads} payloads ({tally.bad} bad, {tally.good} good) in "
          f"{elapsed:.0f}s; kinds {dict(tally.by_what)}; reasons {dict(tally.reasons)}")
    assert tally.good >= 1000 and tally.bad >= 5000, tally
    # every rejection is in the counters, and the counters add up
    assert stats["received"] == tally.payloads
    assert stats["rejected"] == sum(tally.reasons.values())
    assert stats["dead_letters"] == tally.payloads - stats["accepted"]
    # every good message's lines reached the writer, and the writer got nothing else lost
    written = Counter(writer.lines)
    missing = tally.expected_lines - written
    assert not missing, list(missing)[:5]
    assert stats["lines_written"] == len(writer.lines) and stats["lines_buffered"] == 0
    # the generator reached the interesting reasons
    for reason in ("not_json", "not_object", "unknown_version", "wrong_kind", "invalid",
                   "topic_mismatch", "too_large", "bad_topic", "ts_future", "ts_past"):
        assert tally.reasons[reason] > 0, reason


# --------------------------------------------------------------------------
# regressions found by this fuzzer (fixed in xanet/wire.py)


@pytest.mark.parametrize("payload", [
    b"[" * 100_000,  # RecursionError escaped json.loads
    b'{"a":' * 50_000,
    b'{"v":1,"seq":' + b"9" * 5000 + b"}",  # ValueError: int over 4300 digits
])
def test_regression_unparseable_json_is_not_json(payload: bytes) -> None:
    with pytest.raises(wire.DecodeError) as info:
        wire.decode(payload, "telemetry")
    assert info.value.reason == "not_json"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("key", ["rtt_ms", "in_bps", "spool_oldest_age_s"])
def test_regression_non_finite_numbers_are_invalid(value: str, key: str) -> None:
    """InfluxDB cannot store inf/NaN: such a message was accepted and its batch refused."""
    if key == "spool_oldest_age_s":
        kind: topics.Kind = "status"
        body = ('{"v":1,"kind":"status","agent":"a","site":"s","state":"online",'
                f'"health":{{"spool_oldest_age_s":{value}}}}}')
    else:
        kind = "telemetry"
        in_bps = f',"in_bps":{value}' if key == "in_bps" else ""
        iface = f'{{"index":1,"name":"x","hc":true{in_bps}}}'
        rtt = f',"rtt_ms":{value}' if key == "rtt_ms" else ""
        body = ('{"v":1,"agent":"a","site":"s","seq":1,"polls":[{"device":"d",'
                f'"ts":"2026-03-01T12:00:00Z","reachable":true{rtt},"interfaces":[{iface}]}}]}}')
    with pytest.raises(wire.DecodeError) as info:
        wire.decode(body.encode(), kind)
    assert info.value.reason == "invalid"


# --------------------------------------------------------------------------
# profile values past the collector's own bounds: cut, never the good polls


@st.composite
def profile_heavy_polls(draw: st.DrawFn) -> list[wire.DevicePoll]:
    """Polls with profile values, some of them with row tags past 64 bytes."""
    out = []
    for d in range(draw(st.integers(1, 5))):
        readings = []
        for r in range(draw(st.integers(0, 3))):
            values = [wire.ProfileValue(metric=f"m{i}", value=float(i), tags=draw(
                st.none() | st.just({"line": str(i)}) | st.just({"name": "x" * 70})))
                for i in range(draw(st.integers(0, 8)))]
            readings.append(wire.ProfileReading(profile=f"p{r}", values=values))
        out.append(wire.DevicePoll(device=f"d{d}", ts=NOW, reachable=True, profiles=readings,
                                   power=draw(st.none() | power_readings),
                                   interfaces=[wire.InterfacePoll(index=1, name="x", hc=True)]))
    return out


def _stored_values(lines: list[str]) -> Counter[tuple[str, str, str]]:
    """(device, profile, metric) of every profile value line."""
    out: Counter[tuple[str, str, str]] = Counter()
    for ln in lines:
        if ln.startswith("profile,") and ",metric=" in ln:
            tags = dict(t.split("=", 1) for t in ln.split(" ", 1)[0].split(",")[1:]
                        if not t.startswith("t_"))
            out[tags["device"], tags["profile"], tags["metric"]] += 1
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polls=profile_heavy_polls())
def test_fuzz_profile_bounds_cut_values_never_good_polls(
        tmp_path_factory: pytest.TempPathFactory, polls: list[wire.DevicePoll]) -> None:
    """Past ``max_profile_values`` or ``max_profile_tag_bytes`` the collector stores every
    poll (device and interface lines, power) and the values within bounds; what it cut is
    dead-lettered under its reason, counted one poll at a time: stored + dead-lettered =
    sent, nothing twice, nothing lost."""
    cfg = CollectorConfig.model_validate({
        "collector": {"id": "fuzz-profiles"},
        "ingest": {"dead_letter_dir": str(tmp_path_factory.mktemp("dead")),
                   "max_profile_values": 12, "max_profile_tag_bytes": 64},
    })
    writer = RecordingWriter()
    collector = Collector(cfg, writer=writer)
    msg = wire.Telemetry(agent="agent-p", site=SITE, seq=1, polls=polls)

    async def scenario() -> None:
        stop = asyncio.Event()
        sink = asyncio.create_task(collector.sink.run(stop))
        await collector.handle(TELEMETRY, wire.encode(msg), now=NOW)
        stop.set()
        await sink

    asyncio.run(scenario())
    collector.dead_letter.close()
    stats = collector.stats()
    assert stats["accepted"] == 1
    written = writer.lines
    for p in polls:  # every good poll stored: its device, interface and power lines
        assert sum(ln.startswith("device,") and f",device={p.device}," in ln
                   for ln in written) == 1
        assert sum(ln.startswith("interface,") and f",device={p.device}," in ln
                   for ln in written) == 1
        assert sum(ln.startswith("power,") and f",device={p.device}," in ln
                   for ln in written) == (p.power is not None)
    stored = _stored_values(written)
    assert sum(stored.values()) <= 12
    assert not [ln for ln in written if ",t_name=" in ln]  # 4 + 70 bytes > 64
    cut: Counter[tuple[str, str, str]] = Counter()
    reasons: Counter[str] = Counter()
    for record in collector.dead_letter.records():
        part = wire.decode(str(record["payload"]).encode(), "telemetry")
        assert isinstance(part, wire.Telemetry)
        reasons[str(record["reason"])] += len(part.polls)
        for p in part.polls:
            assert p.interfaces == [] and p.power is None
            for r in p.profiles or []:
                cut.update((p.device, r.profile, v.metric) for v in r.values)
    sent = Counter((p.device, r.profile, v.metric) for p in polls for r in p.profiles or []
                   for v in r.values)
    assert stored + cut == sent
    for reason in ("too_many_values", "tag_too_long"):
        assert stats.get(f"rejected_{reason}", 0) == reasons[reason]
