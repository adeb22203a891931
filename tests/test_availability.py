"""Tests of the pure availability engine (collector/availability.py)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.availability import (
    EVENTS,
    STATES,
    TRANSITIONS,
    AgentOffline,
    AvailabilityEngine,
    Change,
    ElementSpec,
    Emission,
    Event,
    Fact,
    Interval,
    Observation,
    Rollup,
    ServiceKey,
    State,
    Topology,
    TransitionError,
    Unobserved,
    combine,
    intervals,
    normalize,
    rule_state,
    state_at,
    summarize,
    timelines,
    transition,
)
from lab.engine_month import (
    CELLS,
    DAYS,
    MONTH_START,
    POLL_S,
    SERVICES,
    STALE_CELLS,
    Month,
    generate_month,
)

FIBRE = ServiceKey("00001", "fibre")


def one_element(stale_after_s: float = 180.0, bucket_s: float = 300.0) -> AvailabilityEngine:
    topo = Topology((ElementSpec("e1", "a1", (FIBRE,)),))
    return AvailabilityEngine(topo, stale_after_s=stale_after_s, bucket_s=bucket_s)


class Store:
    """What InfluxDB would hold after writing emissions: upserts by (key, ts)."""

    def __init__(self) -> None:
        self.elements: dict[str, dict[float, State]] = {}
        self.services: dict[ServiceKey, dict[float, State]] = {}
        self.rollups: dict[tuple[ServiceKey, float], Rollup] = {}

    def write(self, emission: Emission) -> None:
        for e in emission.elements:
            self.elements.setdefault(e.element, {})[e.ts] = e.state
        for s in emission.services:
            self.services.setdefault(s.key, {})[s.ts] = s.state
        for r in emission.rollups:
            self.rollups[(r.key, r.bucket_start)] = r

    def service_timeline(self, key: ServiceKey) -> list[Change]:
        return normalize(self.services.get(key, {}).items())

    def element_timeline(self, element: str) -> list[Change]:
        return normalize(self.elements.get(element, {}).items())


def clip(changes: Sequence[Change], now: float) -> list[Change]:
    return [c for c in changes if c.ts <= now]


# ------------------------------------------------------------------ state machine


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_state_event_pair_follows_the_table_or_is_rejected(
    state: State, event: Event
) -> None:
    key = (state, event)
    if key in TRANSITIONS:
        assert transition(state, event) == TRANSITIONS[key]
    else:
        with pytest.raises(TransitionError):
            transition(state, event)


def test_transition_table_says_what_the_semantics_say() -> None:
    for state in STATES:
        assert transition(state, "observed_up") == "up"
        assert transition(state, "observed_down") == "down"
        assert transition(state, "agent_offline") == "unknown"
    assert transition("up", "stale") == "unknown"
    assert transition("down", "stale") == "unknown"
    with pytest.raises(TransitionError):
        transition("unknown", "stale")  # a stale timer only runs after an observation


# ------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("rule", "states", "expected"),
    [
        ("any_of", ["up", "down"], "up"),
        ("any_of", ["up", "unknown"], "up"),
        ("any_of", ["down", "down"], "down"),
        ("any_of", ["down", "unknown"], "unknown"),
        ("any_of", ["unknown", "unknown"], "unknown"),
        ("any_of", [], "unknown"),
        ("all_of", ["up", "up"], "up"),
        ("all_of", ["up", "down"], "down"),
        ("all_of", ["down", "unknown"], "down"),
        ("all_of", ["up", "unknown"], "unknown"),
        ("all_of", [], "unknown"),
    ],
)
def test_rule_state(rule: str, states: list[State], expected: State) -> None:
    assert rule_state(rule, states) == expected  # type: ignore[arg-type]


def test_intervals_clip_to_window_and_start_unknown() -> None:
    changes = [Change(10, "up"), Change(20, "down"), Change(30, "up")]
    assert intervals(changes, 0, 40) == [
        Interval(0, 10, "unknown"),
        Interval(10, 20, "up"),
        Interval(20, 30, "down"),
        Interval(30, 40, "up"),
    ]
    assert intervals(changes, 15, 25) == [Interval(15, 20, "up"), Interval(20, 25, "down")]
    # a change exactly on a boundary: in force from the start, ignored at the end
    assert intervals(changes, 20, 30) == [Interval(20, 30, "down")]
    with pytest.raises(ValueError):
        intervals(changes, 5, 5)


def test_summarize_counts_time_and_outages() -> None:
    changes = [
        Change(0, "up"),
        Change(100, "down"),
        Change(150, "unknown"),  # silence inside an outage: one outage, not two
        Change(250, "down"),
        Change(300, "up"),
        Change(400, "down"),
        Change(460, "up"),
    ]
    s = summarize(changes, 0, 1000)
    assert (s.up_s, s.down_s, s.unknown_s) == (100 + 100 + 540, 50 + 50 + 60, 100)
    assert s.outages == 2
    assert s.downtime_s == 160
    assert s.availability_pct == pytest.approx(100 * 740 / 900)
    assert s.coverage_pct == pytest.approx(90.0)
    # an outage that began before the window still counts once
    assert summarize(changes, 120, 200).outages == 1
    assert summarize(changes, 120, 200).up_s == 0


def test_nothing_known_means_no_availability_not_zero() -> None:
    s = summarize([], 0, 3600)
    assert s.availability_pct is None
    assert s.coverage_pct == 0.0
    assert s.down_s == 0.0
    assert s.outages == 0


def test_normalize_drops_non_changes_and_keeps_last_of_equal_stamps() -> None:
    points = [(30.0, "up"), (10.0, "up"), (20.0, "up"), (40.0, "unknown"), (40.0, "down")]
    assert normalize(points) == [Change(10, "up"), Change(40, "down")]  # type: ignore[arg-type]
    assert state_at(normalize(points), 39.9) == "up"  # type: ignore[arg-type]
    assert state_at([], 5) == "unknown"


def test_combine_any_of_redundant_uplinks() -> None:
    a = [Change(0, "up"), Change(100, "down"), Change(300, "up")]
    b = [Change(0, "up"), Change(200, "down"), Change(250, "unknown"), Change(400, "up")]
    assert combine("any_of", [a, b]) == [
        Change(0, "up"),
        Change(200, "down"),
        Change(250, "unknown"),
        Change(300, "up"),
    ]
    assert combine("all_of", [a, b]) == [
        Change(0, "up"),
        Change(100, "down"),
        Change(300, "unknown"),  # a is up again, b unknown: not known to be all up
        Change(400, "up"),
    ]


# ------------------------------------------------------------------ element semantics


def test_observation_holds_until_stale() -> None:
    eng = one_element(stale_after_s=180)
    for ts in (0, 60, 120):
        eng.add(Observation("e1", ts, "up"))
    assert eng.element_timeline("e1") == [Change(0, "up"), Change(300, "unknown")]
    eng.add(Observation("e1", 300, "up"))  # exactly at the stale time: stays up
    assert eng.element_timeline("e1") == [Change(0, "up"), Change(480, "unknown")]


def test_down_beats_up_at_the_same_timestamp() -> None:
    eng = one_element()
    eng.add(Observation("e1", 0, "down"))
    eng.add(Observation("e1", 0, "up"))
    assert eng.element_timeline("e1") == [Change(0, "down"), Change(180, "unknown")]


def test_agent_offline_then_spool_replay_re_establishes_the_state() -> None:
    eng = one_element(stale_after_s=180)
    for ts in (0, 60, 120):
        eng.add(Observation("e1", ts, "up"))
    eng.add(AgentOffline("a1", 150))
    assert eng.element_timeline("e1") == [Change(0, "up"), Change(150, "unknown")]
    # the spool comes back: the agent kept polling, the site was down for a while
    for ts in (150, 180, 240):
        eng.add(Observation("e1", ts, "down"))
    for ts in (300, 360):
        eng.add(Observation("e1", ts, "up"))
    assert eng.element_timeline("e1") == [
        Change(0, "up"),
        Change(150, "down"),
        Change(300, "up"),
        Change(540, "unknown"),
    ]


def test_offline_only_affects_until_the_next_observation() -> None:
    eng = one_element(stale_after_s=600)
    eng.add(Observation("e1", 0, "up"))
    eng.add(Observation("e1", 100, "up"))
    eng.add(AgentOffline("a1", 50))  # late Last Will between two polls
    assert eng.element_timeline("e1") == [
        Change(0, "up"),
        Change(50, "unknown"),
        Change(100, "up"),
        Change(700, "unknown"),
    ]


def test_facts_for_unknown_elements_and_agents_and_too_old_are_refused() -> None:
    eng = one_element()
    assert eng.add(Observation("nope", 0, "up")) == "unknown_element"
    assert eng.add(AgentOffline("nope", 0)) == "unknown_agent"
    assert eng.add(Observation("e1", 0, "up")) == "accepted"
    assert eng.add(Observation("e1", 0, "up")) == "duplicate"
    with pytest.raises(ValueError):
        eng.add(Observation("e1", math.nan, "up"))


def test_stale_and_silent_time_is_unknown_never_down() -> None:
    eng = one_element(stale_after_s=180)
    eng.add(Observation("e1", 0, "down"))
    eng.add(Observation("e1", 60, "down"))
    # silence from 60 on, then data again at 3600
    eng.add(Observation("e1", 3600, "up"))
    s = summarize(eng.service_timeline(FIBRE), 0, 3660)
    assert s.down_s == 240  # 0..240 (last down poll at 60 + 180 stale)
    assert s.unknown_s == 3600 - 240
    assert s.up_s == 60
    assert s.availability_pct == pytest.approx(100 * 60 / 300)


# ------------------------------------------------------------------ emission


def test_emit_only_up_to_now_then_stale_transition_appears() -> None:
    eng = one_element(stale_after_s=180, bucket_s=300)
    eng.add(Observation("e1", 0, "up"))
    em = eng.emit(100)
    assert [(p.ts, p.state) for p in em.services] == [(0, "up")]
    assert em.rollups == []  # no bucket has closed
    em = eng.emit(200)
    assert [(p.ts, p.state) for p in em.services] == [(180, "unknown")]
    em = eng.emit(200)
    assert em.services == [] and em.elements == []  # nothing new
    em = eng.emit(600)
    assert [(r.bucket_start, r.up_s, r.down_s, r.unknown_s) for r in em.rollups] == [
        (0, 180, 0, 120),
        (300, 0, 0, 300),
    ]
    with pytest.raises(ValueError):
        eng.emit(599)


def test_late_data_rewrites_points_and_closed_buckets() -> None:
    eng = one_element(stale_after_s=180, bucket_s=300)
    store = Store()
    eng.add(Observation("e1", 0, "up"))
    eng.add(Observation("e1", 60, "up"))
    eng.add(AgentOffline("a1", 100))
    store.write(eng.emit(1200))
    assert store.service_timeline(FIBRE) == [Change(0, "up"), Change(100, "unknown")]
    # the spool replays what happened during the backhaul cut
    for ts in range(120, 900, 60):
        eng.add(Observation("e1", ts, "down" if ts < 600 else "up"))
    em = eng.emit(1300)
    store.write(em)
    assert {r.bucket_start for r in em.rollups} == {0, 300, 600, 900}
    assert store.service_timeline(FIBRE) == [
        Change(0, "up"),
        Change(100, "unknown"),
        Change(120, "down"),
        Change(600, "up"),
        Change(1020, "unknown"),
    ]
    assert [(r.up_s, r.down_s, r.unknown_s) for _, r in sorted(store.rollups.items())] == [
        (100, 180, 20),
        (0, 300, 0),
        (300, 0, 0),
        (120, 0, 180),
    ]


def test_a_stored_point_made_obsolete_by_late_data_is_neutralised() -> None:
    eng = one_element(stale_after_s=100)
    store = Store()
    eng.add(Observation("e1", 0, "up"))
    eng.add(Observation("e1", 200, "up"))
    store.write(eng.emit(250))
    assert sorted(store.services[FIBRE].items()) == [(0, "up"), (100, "unknown"), (200, "up")]
    eng.add(Observation("e1", 100, "up"))  # fills the gap: the change at 100 never happened
    store.write(eng.emit(260))
    assert store.services[FIBRE][100] == "up"  # overwritten with the true state: a no-op
    assert store.service_timeline(FIBRE) == [Change(0, "up")]


def test_compact_keeps_state_and_refuses_older_facts() -> None:
    eng = one_element(stale_after_s=180)
    store = Store()
    for ts in range(0, 3600, 60):
        eng.add(Observation("e1", ts, "up"))
    store.write(eng.emit(3600))
    horizon = eng.compact(3000)
    assert horizon == 3000
    assert eng.add(Observation("e1", 2999, "down")) == "too_old"
    assert eng.add(Observation("e1", 3600, "down")) == "accepted"
    store.write(eng.emit(4000))
    assert eng.element_timeline("e1")[-2:] == [Change(3600, "down"), Change(3780, "unknown")]
    assert store.service_timeline(FIBRE) == [
        Change(0, "up"),
        Change(3600, "down"),
        Change(3780, "unknown"),
    ]
    assert eng.rollup(FIBRE, 3000, 3600).up_s == 600


def test_compact_never_drops_unemitted_facts() -> None:
    eng = one_element()
    eng.add(Observation("e1", 0, "up"))
    assert eng.compact(1000) == -math.inf  # never emitted
    eng.emit(1000)
    eng.add(Observation("e1", 500, "down"))  # late, not yet emitted
    assert eng.compact(1000) == 500


def test_topology_from_inventory() -> None:
    from xanet.inventory import parse_inventory

    inventory = parse_inventory(
        {
            "province": {"code": "08", "name": "Tuyên Quang"},
            "communes": [{"code": "02221", "name": "Xã Nà Hang"}],
            "sites": [
                {
                    "id": "hub-na-hang",
                    "commune": "02221",
                    "role": "hub",
                    "agent": "agt-na-hang",
                    "devices": [
                        {
                            "id": "rtr-1",
                            "elements": [
                                {"service": "fibre", "interface": "ge-0/0/0"},
                                {"service": "fibre", "interface": "ge-0/0/1"},
                                {"service": "broadband"},
                            ],
                        }
                    ],
                },
            ],
        }
    )
    topo = Topology.from_inventory(inventory)
    fibre, broadband = ServiceKey("02221", "fibre"), ServiceKey("02221", "broadband")
    assert topo.elements == (
        ElementSpec("hub-na-hang/rtr-1/ge-0/0/0", "agt-na-hang", (fibre,)),
        ElementSpec("hub-na-hang/rtr-1/ge-0/0/1", "agt-na-hang", (fibre,)),
        ElementSpec("hub-na-hang/rtr-1", "agt-na-hang", (broadband,)),
    )
    assert topo.service_keys() == [broadband, fibre]


def test_element_without_agent_is_never_made_unknown_by_a_last_will() -> None:
    topo = Topology((ElementSpec("e1", None, (FIBRE,)), ElementSpec("e2", "a1", (FIBRE,))))
    eng = AvailabilityEngine(topo, stale_after_s=100)
    eng.add(Observation("e1", 0, "up"))
    assert eng.add(AgentOffline("a1", 10)) == "accepted"
    assert eng.element_timeline("e1") == [Change(0, "up"), Change(100, "unknown")]


# ------------------------------------------------------------------ reference model


def reference_fact(
    facts: Iterable[Fact], element: str, agent: str | None, x: float
) -> tuple[float, int, str] | None:
    """Brute force: the latest fact at or before x (obs beats offline, down beats up, an
    unobserved poll beats both; of two unobserved polls the smaller reason)."""
    best: tuple[float, int, str] | None = None
    for f in facts:
        if isinstance(f, Observation) and f.element == element and f.ts <= x:
            cand = (f.ts, 2 if f.state == "down" else 1, "")
        elif isinstance(f, Unobserved) and f.element == element and f.ts <= x:
            cand = (f.ts, 3, f.reason)
        elif isinstance(f, AgentOffline) and f.agent == agent and f.ts <= x:
            cand = (f.ts, 0, "")
        else:
            continue
        if best is None or cand[:2] > best[:2] or (
                cand[:2] == best[:2] and cand[2] < best[2]):
            best = cand
    return best


def reference_state(
    facts: Iterable[Fact], element: str, agent: str | None, stale: float, x: float
) -> State:
    best = reference_fact(facts, element, agent, x)
    if best is None or best[1] in (0, 3) or x >= best[0] + stale:
        return "unknown"
    return "down" if best[1] == 2 else "up"


def reference_reason(
    facts: Iterable[Fact], element: str, agent: str | None, stale: float, x: float
) -> str | None:
    best = reference_fact(facts, element, agent, x)
    if best is None:
        return "no_data"
    if best[1] == 0:
        return "agent_offline"
    if best[1] == 3:
        return best[2]
    return "stale" if x >= best[0] + stale else None


SVC_A = ServiceKey("c1", "fibre")
SVC_B = ServiceKey("c1", "mobile_4g")
SMALL_TOPOLOGY = Topology(
    (
        ElementSpec("e1", "a1", (SVC_A,)),
        ElementSpec("e2", "a2", (SVC_A, SVC_B)),
        ElementSpec("e3", "a2", (SVC_B,), stale_after_s=25.0),
    ),
    rules={SVC_B: "all_of"},
)
SMALL_STALE = 40.0
AGENT_OF = {s.element: s.agent for s in SMALL_TOPOLOGY.elements}
STALE_OF = {s.element: s.stale_after_s or SMALL_STALE for s in SMALL_TOPOLOGY.elements}

observations = st.builds(
    Observation,
    element=st.sampled_from(["e1", "e2", "e3"]),
    ts=st.integers(0, 200).map(float),
    state=st.sampled_from(["up", "down"]),
)
offlines = st.builds(
    AgentOffline, agent=st.sampled_from(["a1", "a2"]), ts=st.integers(0, 200).map(float)
)
unobserved = st.builds(
    Unobserved,
    element=st.sampled_from(["e1", "e2", "e3"]),
    ts=st.integers(0, 200).map(float),
    reason=st.sampled_from(["monitoring_error:auth", "monitoring_error:snmp_silent"]),
)
fact_lists = st.lists(st.one_of(observations, observations, offlines), max_size=40)
#: with monitoring faults: explicit unknown observations
faulty_fact_lists = st.lists(
    st.one_of(observations, observations, offlines, unobserved), max_size=40)


def probe_times(facts: Sequence[Fact]) -> list[float]:
    base = {0.0, 300.0}
    for f in facts:
        for d in (0.0, 25.0, 40.0):
            base.add(f.ts + d)
    return sorted({t + e for t in base for e in (-0.5, 0.0, 0.5)})


def assert_timelines_match_brute_force(facts: list[Fact]) -> None:
    """The engine's element and service timelines against the brute-force reference at
    every probe time; each timeline sorted with no repeated states."""
    elements, services = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE)
    for x in probe_times(facts):
        truth = {
            e: reference_state(facts, e, AGENT_OF[e], STALE_OF[e], x) for e in ("e1", "e2", "e3")
        }
        for e, tl in elements.items():
            assert state_at(tl, x) == truth[e], (e, x)
        assert state_at(services[SVC_A], x) == rule_state("any_of", [truth["e1"], truth["e2"]])
        assert state_at(services[SVC_B], x) == rule_state("all_of", [truth["e2"], truth["e3"]])
    for tl in (*elements.values(), *services.values()):
        assert tl == normalize(tl)  # sorted, no repeated states


#: (element timelines, service timelines), as ``timelines`` returns them
Timelines = tuple[dict[str, list[Change]], dict[ServiceKey, list[Change]]]


def small_engine() -> AvailabilityEngine:
    return AvailabilityEngine(
        SMALL_TOPOLOGY, stale_after_s=SMALL_STALE, bucket_s=30.0, rollups_from=0.0
    )


def assert_engine_and_store_hold(
    eng: AvailabilityEngine, store: Store, reference: Timelines, final: float
) -> None:
    """After the last emit at ``final``: the engine's timelines are the reference, the
    store holds them up to ``final``, and every closed 30 s rollup adds up to them."""
    elements, services = reference
    for e, tl in elements.items():
        assert eng.element_timeline(e) == tl
        assert store.element_timeline(e) == clip(tl, final)
    for key, tl in services.items():
        assert eng.service_timeline(key) == tl
        assert store.service_timeline(key) == clip(tl, final)
        for k in range(int(final // 30)):
            row = store.rollups[(key, k * 30.0)]
            s = summarize(tl, k * 30.0, (k + 1) * 30.0)
            assert (row.up_s, row.down_s, row.unknown_s) == (s.up_s, s.down_s, s.unknown_s)


def emit_on_drawn_schedule(
    data: st.DataObject, order: Sequence[Fact], eng: AvailabilityEngine,
    write: Callable[[Emission, float], None],
) -> float:
    """Adds ``order`` to ``eng`` fact by fact, emitting at drawn moments (0-60 s apart)
    and handing each emission and its time to ``write``; the last emission is at
    max(time so far, 400 s), which is returned."""
    now = 0.0
    for fact in order:
        eng.add(fact)
        if data.draw(st.booleans()):
            now += data.draw(st.integers(0, 60))
            write(eng.emit(now), now)
    final = max(now, 400.0)
    write(eng.emit(final), final)
    return final


@settings(max_examples=200, deadline=None)
@given(fact_lists)
def test_element_and_service_timelines_match_brute_force(facts: list[Fact]) -> None:
    assert_timelines_match_brute_force(facts)


@settings(max_examples=150, deadline=None)
@given(st.data(), fact_lists)
def test_any_delivery_order_and_any_emit_schedule_give_the_same_result(
    data: st.DataObject, facts: list[Fact]
) -> None:
    reference = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE)
    order = data.draw(st.permutations(facts))
    eng = small_engine()
    store = Store()

    def write(em: Emission, now: float) -> None:
        store.write(em)
        for key in (SVC_A, SVC_B):  # after every emit, storage = the facts so far, to now
            assert store.service_timeline(key) == clip(eng.service_timeline(key), now)

    final = emit_on_drawn_schedule(data, order, eng, write)
    assert timelines(order, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE) == reference
    assert_engine_and_store_hold(eng, store, reference, final)


# ------------------------------------------------------------------ a generated month

def truth_cells(month: Month, key: ServiceKey) -> list[State]:
    names = [s.element for s in month.topology.elements if key in s.services]
    out: list[State] = []
    for k in range(CELLS):
        states: list[State] = [month.truth[n][k] if month.known[n][k] else "unknown" for n in names]
        out.append(rule_state("any_of", states))
    return out


def truth_summary(cells: Sequence[State]) -> tuple[float, float, float | None]:
    up = sum(s == "up" for s in cells) * POLL_S
    down = sum(s == "down" for s in cells) * POLL_S
    availability = None if up + down == 0 else 100.0 * up / (up + down)
    return up, down, availability


@pytest.fixture(scope="module")
def month() -> Month:
    return generate_month(seed=20250701, communes=100)


@pytest.fixture(scope="module")
def replayed_month(month: Month) -> tuple[AvailabilityEngine, Store]:
    """The month fed to the engine in arrival order, emitting every 6 hours of arrivals."""
    eng = AvailabilityEngine(
        month.topology, stale_after_s=STALE_CELLS * POLL_S, bucket_s=6 * POLL_S
    )
    store = Store()
    next_emit = MONTH_START + 6 * POLL_S
    for arrival, fact in month.arrivals:
        while arrival >= next_emit:
            store.write(eng.emit(next_emit))
            eng.compact(next_emit - 10 * 86400)  # replays here are at most days old
            next_emit += 6 * POLL_S
        assert eng.add(fact) in ("accepted", "duplicate")
    store.write(eng.emit(MONTH_START + (DAYS + 1) * 86400))
    return eng, store


def test_generated_month_is_what_the_test_claims(month: Month) -> None:
    keys = month.topology.service_keys()
    assert len({k.commune for k in keys}) >= 100
    assert len(keys) == 100 * len(SERVICES)
    assert month.lost_cells > 100 and month.replayed_cells > 100
    assert sum(isinstance(f, AgentOffline) for _, f in month.arrivals) > 50
    downs = [truth_summary(truth_cells(month, k))[1] for k in keys]
    assert sum(d > 0 for d in downs) > 100
    assert sum(truth_summary(truth_cells(month, k))[2] == 100.0 for k in keys) > 10


def test_month_availability_equals_ground_truth(
    month: Month, replayed_month: tuple[AvailabilityEngine, Store]
) -> None:
    _, store = replayed_month
    start, end = MONTH_START, MONTH_START + CELLS * POLL_S
    for key in month.topology.service_keys():
        cells = truth_cells(month, key)
        up, down, availability = truth_summary(cells)
        got = summarize(store.service_timeline(key), start, end)
        if availability is None:
            assert got.availability_pct is None
        else:
            assert got.availability_pct is not None
            assert abs(got.availability_pct - availability) < 0.001, key
        assert got.down_s == pytest.approx(down, abs=1e-6)  # unknown never counted as down
        assert got.up_s == pytest.approx(up, abs=1e-6)
        assert got.coverage_pct == pytest.approx(100.0 * (up + down) / (end - start))


def test_month_unknown_time_is_never_down(
    month: Month, replayed_month: tuple[AvailabilityEngine, Store]
) -> None:
    _, store = replayed_month
    total_unknown = 0.0
    for key in month.topology.service_keys():
        cells = truth_cells(month, key)
        tl = store.service_timeline(key)
        for k, truth in enumerate(cells):
            cell = summarize(tl, MONTH_START + k * POLL_S, MONTH_START + (k + 1) * POLL_S)
            if truth == "unknown":
                assert cell.down_s == 0 and cell.up_s == 0
                total_unknown += cell.unknown_s
            else:
                assert cell.unknown_s == 0
    assert total_unknown > 0


def test_month_rollups_add_up_to_the_same_numbers(
    month: Month, replayed_month: tuple[AvailabilityEngine, Store]
) -> None:
    _, store = replayed_month
    bucket = 6 * POLL_S
    n_buckets = int(CELLS * POLL_S / bucket)
    for key in month.topology.service_keys():
        up, down, _ = truth_summary(truth_cells(month, key))
        rows = [store.rollups[(key, MONTH_START + i * bucket)] for i in range(n_buckets)]
        assert sum(r.up_s for r in rows) == pytest.approx(up, abs=1e-6)
        assert sum(r.down_s for r in rows) == pytest.approx(down, abs=1e-6)
        assert all(r.up_s + r.down_s + r.unknown_s == pytest.approx(bucket) for r in rows)


def test_month_in_any_order_gives_the_same_timelines(
    month: Month, replayed_month: tuple[AvailabilityEngine, Store]
) -> None:
    eng, _ = replayed_month
    facts = [f for _, f in month.arrivals]
    random.Random(7).shuffle(facts)
    keys = month.topology.service_keys()[:100]  # 20 communes: keep the test quick
    wanted = {s.element for s in month.topology.elements if set(s.services) & set(keys)}
    sub = Topology(tuple(s for s in month.topology.elements if s.element in wanted))
    _, services = timelines(
        [f for f in facts if not isinstance(f, Observation) or f.element in wanted],
        sub,
        stale_after_s=STALE_CELLS * POLL_S,
    )
    horizon = eng.horizon
    for key in keys:
        assert [c for c in services[key] if c.ts >= horizon] == [
            c for c in eng.service_timeline(key) if c.ts >= horizon
        ]


# ------------------------------------------------------------ unobserved (monitoring faults)


def test_unobserved_poll_ends_the_state_without_downtime() -> None:
    eng = one_element(stale_after_s=180.0)
    eng.add(Observation("e1", 0.0, "up"))
    eng.add(Unobserved("e1", 60.0, "monitoring_error:auth"))  # wrong key from now on
    eng.add(Unobserved("e1", 120.0, "monitoring_error:auth"))
    eng.add(Observation("e1", 600.0, "up"))  # fixed
    assert eng.element_timeline("e1") == [
        Change(0.0, "up"), Change(60.0, "unknown"), Change(600.0, "up"), Change(780.0, "unknown")]
    s = summarize(eng.element_timeline("e1"), 0.0, 600.0)
    assert (s.up_s, s.down_s, s.unknown_s) == (60.0, 0.0, 540.0)
    # no stale timer after an unobserved poll: still unknown, for the same reason
    assert eng.reason_at("e1", 599.0) == "monitoring_error:auth"
    assert eng.reason_at("e1", 700.0) is None
    assert eng.reason_at("e1", 800.0) == "stale"


def test_unobserved_beats_observations_at_the_same_timestamp() -> None:
    eng = one_element()
    eng.add(Observation("e1", 10.0, "down"))
    eng.add(Unobserved("e1", 10.0, "monitoring_error:access"))
    assert eng.element_timeline("e1") == []  # unknown from the start: no change at all
    assert eng.reason_at("e1", 10.0) == "monitoring_error:access"


def test_reason_point_written_even_when_already_unknown() -> None:
    """A wrong key from the first poll on: the state never changes from unknown, yet
    storage must say why."""
    eng = one_element()
    eng.add(Unobserved("e1", 10.0, "monitoring_error:auth"))
    eng.add(Unobserved("e1", 70.0, "monitoring_error:auth"))
    eng.add(Unobserved("e1", 130.0, "monitoring_error:resolve"))
    em = eng.emit(200.0)
    assert [(p.ts, p.state, p.reason) for p in em.elements] == [
        (10.0, "unknown", "monitoring_error:auth"), (130.0, "unknown", "monitoring_error:resolve")]
    assert em.services == []  # the service was unknown all along
    assert eng.emit(260.0).elements == []  # nothing new, nothing rewritten


def test_points_to_unknown_carry_their_reason() -> None:
    eng = one_element(stale_after_s=100.0)
    eng.add(Observation("e1", 0.0, "up"))
    eng.add(AgentOffline("a1", 150.0))
    eng.add(Observation("e1", 200.0, "up"))
    eng.add(Unobserved("e1", 250.0, "monitoring_error:snmp_silent"))
    em = eng.emit(400.0)
    assert [(p.ts, p.state, p.reason) for p in em.elements] == [
        (0.0, "up", None), (100.0, "unknown", "stale"), (150.0, "unknown", "agent_offline"),
        (200.0, "up", None), (250.0, "unknown", "monitoring_error:snmp_silent")]


def stored_reason(points: dict[float, tuple[State, str | None]], x: float) -> str | None:
    """The reason of the latest stored point at or before x (what a NOC reads)."""
    before = [ts for ts in points if ts <= x]
    return points[max(before)][1] if before else "no_data"


@settings(max_examples=200, deadline=None)
@given(faulty_fact_lists)
def test_unobserved_timelines_match_brute_force(facts: list[Fact]) -> None:
    # that a monitoring fault is never downtime (without the unobserved polls, and the
    # observations they beat, there is at least as much down time) is
    # test_a_monitoring_fault_never_adds_downtime below
    assert_timelines_match_brute_force(facts)


@settings(max_examples=150, deadline=None)
@given(st.data(), faulty_fact_lists)
def test_unobserved_any_order_any_emit_schedule_same_states_and_reasons(
    data: st.DataObject, facts: list[Fact]
) -> None:
    reference = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE)
    order = data.draw(st.permutations(facts))
    eng = small_engine()
    store = Store()
    stored: dict[str, dict[float, tuple[State, str | None]]] = {}

    def write(em: Emission, _now: float) -> None:
        store.write(em)
        for p in em.elements:
            assert (p.state == "unknown") == (p.reason is not None), p
            stored.setdefault(p.element, {})[p.ts] = (p.state, p.reason)

    final = emit_on_drawn_schedule(data, order, eng, write)
    assert_engine_and_store_hold(eng, store, reference, final)
    for e in reference[0]:
        for x in probe_times(facts):
            if x > final or x < 0:
                continue
            want = reference_reason(facts, e, AGENT_OF[e], STALE_OF[e], x)
            assert eng.reason_at(e, x) == want, (e, x)
            if want != "no_data" or stored.get(e):
                got = stored_reason(stored.get(e, {}), x)
                if want == "no_data":  # before the first fact no point exists yet
                    continue
                assert got == want, (e, x, got, want)


@settings(max_examples=100, deadline=None)
@given(faulty_fact_lists)
def test_a_monitoring_fault_never_adds_downtime(facts: list[Fact]) -> None:
    """The same polls with some of them turned into monitoring faults: never more down
    time, for any element or service (a fault is lost coverage, never an outage)."""
    clean = [f for f in facts if not isinstance(f, Unobserved)]
    el_with, svc_with = timelines(facts, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE)
    el_without, svc_without = timelines(clean, SMALL_TOPOLOGY, stale_after_s=SMALL_STALE)
    for e in ("e1", "e2", "e3"):
        assert summarize(el_with[e], 0, 500).down_s <= summarize(el_without[e], 0, 500).down_s
    for key in (SVC_A, SVC_B):
        assert (summarize(svc_with[key], 0, 500).down_s
                <= summarize(svc_without[key], 0, 500).down_s)
