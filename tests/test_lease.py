"""The lease protocol (collector/lease.py): table cases, and a simulated broker under
Hypothesis that checks the one invariant that matters: never two owners at once.

The simulation is a small discrete-event model of what the protocol relies on and nothing
more: one broker that serialises publishes (one total order, per-link FIFO delivery with
random delays), retained messages, a data session per partition (one connection per
client id: a second one takes it over), its Will published 1.5 x keepalive after its
last packet, PUBACKs; and faults: SIGKILL of a member, a member cut from the broker for a
while (packets both ways lost), the broker publishing (or not) a taken-over session's Will.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.lease import (
    Action,
    Claim,
    Demote,
    Lease,
    LeaseDecodeError,
    LeaseMessage,
    Lost,
    Renew,
    State,
    Won,
    decode,
)

KA = 2.0


def _msg(op: str, epoch: int, holder: str | None) -> LeaseMessage:
    return LeaseMessage(op, epoch, holder)  # type: ignore[arg-type]  # ops from the tables


# -- table cases ------------------------------------------------------------------------


def test_codec_round_trip_and_refusals() -> None:
    m = LeaseMessage("renew", 7, "core-a", 1.5)
    assert decode(m.encode()) == m
    for bad in (b"", b"[]", b'{"op":"x","epoch":1,"holder":"a"}',
                b'{"op":"claim","epoch":-1,"holder":"a"}',
                b'{"op":"claim","epoch":true,"holder":"a"}',
                b'{"op":"vacant","epoch":1,"holder":"a"}',
                b'{"op":"claim","epoch":1,"holder":null}'):
        with pytest.raises(LeaseDecodeError):
            decode(bad)


def test_fresh_member_waits_then_claims_and_wins() -> None:
    lease = Lease("a", KA)
    assert lease.connected(0.0) == []
    assert lease.tick(1.5 * KA - 0.01) == []
    assert lease.tick(1.5 * KA) == [Claim(1)]
    assert lease.message(_msg("claim", 1, "a"), 3.1) == [Won(1), Renew(1)]
    assert lease.state is State.OWNER and lease.takeovers == 1


def test_first_claim_of_an_epoch_wins() -> None:
    a, b = Lease("a", KA), Lease("b", KA)
    for m in (a, b):
        m.connected(0.0)
        assert m.tick(3.0) == [Claim(1)]
    for m in (a, b):  # the broker's order: a's claim, then b's
        m.message(_msg("claim", 1, "a"), 3.1)
        m.message(_msg("claim", 1, "b"), 3.1)
    assert a.state is State.OWNER and b.state is State.STANDBY and b.holder == "a"


def test_loser_is_told() -> None:
    b = Lease("b", KA)
    b.connected(0.0)
    b.tick(3.0)
    assert b.message(_msg("claim", 1, "a"), 3.1) == []
    assert b.message(_msg("claim", 1, "b"), 3.1) == [Lost(1, "a")]


def test_live_vacancy_claims_at_once_retained_one_waits() -> None:
    b = Lease("b", KA)
    b.connected(0.0)
    b.message(_msg("renew", 4, "a"), 0.1, retained=True)
    assert b.tick(0.1 + 3 * KA - 0.01) == []  # a named holder: the lease timeout
    b.message(_msg("renew", 4, "a"), 5.0)
    assert b.message(_msg("vacant", 4, None), 6.0) == [Claim(5)]
    c = Lease("c", KA)
    c.connected(0.0)
    assert c.message(_msg("vacant", 4, None), 0.1, retained=True) == []
    assert c.tick(0.1 + 1.5 * KA) == [Claim(5)]


def test_stale_vacancy_is_ignored_by_standby_and_reasserted_by_owner() -> None:
    a = Lease("a", KA)
    a.connected(0.0)
    a.tick(3.0)
    a.message(_msg("claim", 1, "a"), 3.0)
    b = Lease("b", KA)
    b.connected(0.0)
    b.message(_msg("claim", 1, "a"), 3.0)
    assert b.message(_msg("vacant", 0, None), 3.2) == []
    assert a.tick(3.1) == []
    assert a.message(_msg("vacant", 0, None), 3.2) == [Renew(1)]


def test_retained_lease_naming_me_is_mine_to_retake() -> None:
    a = Lease("a", KA)
    a.connected(0.0)
    assert a.message(_msg("renew", 3, "a"), 0.1, retained=True) == [Claim(4)]


def test_owner_fences_itself_without_acknowledged_renewals() -> None:
    a = Lease("a", KA)
    a.connected(0.0)
    a.tick(3.0)
    a.message(_msg("claim", 1, "a"), 3.2)  # claim sent at 3.0: valid until 5.0
    assert a.renewed(3.2, 3.3) == []  # valid until 5.2
    assert a.tick(5.19) == [Renew(1)]
    assert a.tick(5.2) == [Demote(1, "no renewal acknowledged for 2 s")]
    assert a.renewed(5.19, 5.25) == [] and a.state is State.OFFLINE  # no revival


@pytest.mark.parametrize(("msg", "demoted"), [
    (_msg("vacant", 1, None), True),  # our Will: the data session is gone
    (_msg("claim", 2, "b"), True),
    (_msg("renew", 1, "b"), True),
    (_msg("claim", 1, "b"), False),  # lost to ours
    (_msg("renew", 1, "a"), False),
])
def test_owner_demotes_on_a_newer_or_rival_lease(msg: LeaseMessage, demoted: bool) -> None:
    a = Lease("a", KA)
    a.connected(0.0)
    a.tick(3.0)
    a.message(_msg("claim", 1, "a"), 3.0)
    out = a.message(msg, 3.1)
    assert any(isinstance(x, Demote) for x in out) is demoted


def test_release_and_data_loss() -> None:
    a = Lease("a", KA)
    a.connected(0.0)
    a.tick(3.0)
    a.message(_msg("claim", 1, "a"), 3.0)
    assert a.data_lost(3.5, "session taken over") == [
        Demote(1, "data session lost: session taken over")]
    assert a.release() is None
    b = Lease("b", KA)
    b.connected(0.0)
    b.tick(3.0)
    b.message(_msg("claim", 1, "b"), 3.0)
    assert b.release() == LeaseMessage("vacant", 1, None)


# -- the simulated broker ---------------------------------------------------------------


@dataclass
class Member:
    name: str
    lease: Lease
    alive: bool = True
    lease_conn: bool = False  # connected and subscribed (as the member believes)
    data_conn: int | None = None  # the data connection's number while it has one
    owner_since: float | None = None
    link_free_at: dict[str, float] = field(default_factory=dict)  # per-direction FIFO


@dataclass
class Sim:
    keepalive_s: float
    delays: list[float]
    will_on_takeover: bool
    cuts: dict[str, tuple[float, float]]
    kills: dict[str, float]
    now: float = 0.0
    retained: LeaseMessage | None = None
    session_conn: int | None = None  # the data session's current connection
    session_owner: str | None = None
    session_last_packet: float = 0.0
    session_will: LeaseMessage | None = None
    subscribers: set[str] = field(default_factory=set)
    intervals: list[tuple[str, float, float]] = field(default_factory=list)
    wins: dict[int, set[str]] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    _queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _delay_i: int = 0
    _conns: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), fn))

    def cut(self, name: str, t: float | None = None) -> bool:
        lo, hi = self.cuts.get(name, (-1.0, -1.0))
        t = self.now if t is None else t
        return lo <= t < hi

    def delay(self) -> float:
        self._delay_i += 1
        return self.delays[self._delay_i % len(self.delays)]

    def long_cut(self, name: str) -> bool:
        lo, hi = self.cuts.get(name, (-1.0, -1.0))
        return hi - lo >= self.keepalive_s

    def send(self, name: str, direction: str, fn: Callable[[], None]) -> None:
        """A packet on ``name``'s link, FIFO per direction (TCP). A cut shorter than the
        keepalive only delays it (retransmitted after the heal); a longer one breaks the
        connections, and what is sent during it is lost."""
        if self.cut(name) and self.long_cut(name):
            return
        m = self.members[name]
        t = max(self.now + self.delay(), m.link_free_at.get(direction, 0.0))
        if self.cut(name, t):
            if self.long_cut(name):
                m.link_free_at[direction] = t  # lost with what follows it: TCP order
                return  # in flight when the connection broke
            t = self.cuts[name][1] + self.delay()
        m.link_free_at[direction] = t
        self.at(t, lambda: None if self.cut(name) and self.long_cut(name) else fn())

    # -- broker ---------------------------------------------------------------------

    def publish(self, msg: LeaseMessage) -> None:
        self.retained = msg
        for name in sorted(self.subscribers):
            self.send(name, "down", lambda n=name: self.member_gets(n, msg, False))

    def broker_subscribe(self, name: str) -> None:
        self.subscribers.add(name)
        retained = self.retained
        self.send(name, "down", lambda: self.member_connected(name, retained))

    def broker_data_connect(self, name: str, conn: int, will: LeaseMessage) -> None:
        old, old_owner = self.session_conn, self.session_owner
        self.session_conn, self.session_owner = conn, name
        self.session_last_packet, self.session_will = self.now, will
        if old is not None and old_owner is not None:
            if self.will_on_takeover:
                self.publish(LeaseMessage("vacant", self.session_will_epoch(old), None))
            self.send(old_owner, "down", lambda: self.member_data_lost(old_owner, old))
        self.check_will_at(self.now + 1.5 * self.keepalive_s)

    def session_will_epoch(self, conn: int) -> int:
        return self._will_epochs.get(conn, 0)

    _will_epochs: dict[int, int] = field(default_factory=dict)

    def check_will_at(self, t: float) -> None:
        def check() -> None:
            if self.session_conn is None:
                return
            due = self.session_last_packet + 1.5 * self.keepalive_s
            if self.now >= due:
                will = self.session_will
                self.session_conn = self.session_owner = None
                if will is not None:
                    self.publish(will)
            else:
                self.check_will_at(due)
        self.at(t, check)

    def broker_renew(self, name: str, conn: int, msg: LeaseMessage, sent_at: float) -> None:
        if conn != self.session_conn:
            return  # a connection the broker closed: the packet goes nowhere
        self.session_last_packet = self.now
        self.publish(msg)
        self.send(name, "down", lambda: self.member_puback(name, conn, sent_at))

    def broker_data_close(self, conn: int) -> None:
        if conn == self.session_conn:  # a clean DISCONNECT: no Will
            self.session_conn = self.session_owner = None

    def broker_lease_conn_dead(self, name: str) -> None:
        self.subscribers.discard(name)

    # -- members --------------------------------------------------------------------

    def do(self, m: Member, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Claim):
                msg = LeaseMessage("claim", a.epoch, m.name)
                self.send(m.name, "up", lambda msg=msg: self.publish(msg))
            elif isinstance(a, Won):
                assert m.owner_since is None
                m.owner_since = self.now
                self.wins.setdefault(a.epoch, set()).add(m.name)
                conn = next(self._conns)
                m.data_conn = conn
                self._will_epochs[conn] = a.epoch
                will = LeaseMessage("vacant", a.epoch, None)
                self.send(m.name, "up",
                          lambda c=conn, w=will: self.broker_data_connect(m.name, c, w))
            elif isinstance(a, Renew):
                conn, sent = m.data_conn, self.now
                if conn is not None:
                    msg = LeaseMessage("renew", a.epoch, m.name)
                    self.send(m.name, "up", lambda c=conn, msg=msg, s=sent:
                              self.broker_renew(m.name, c, msg, s))
            elif isinstance(a, Demote):
                self.end_ownership(m)
                conn = m.data_conn
                m.data_conn = None
                if conn is not None:
                    self.send(m.name, "up", lambda c=conn: self.broker_data_close(c))
                m.lease_conn = False  # a fresh lease connection
                self.send(m.name, "up", lambda: self.broker_lease_conn_dead(m.name))
                self.reconnect(m)
        self.schedule_tick(m)

    def end_ownership(self, m: Member) -> None:
        if m.owner_since is not None:
            self.intervals.append((m.name, m.owner_since, self.now))
            m.owner_since = None

    def reconnect(self, m: Member) -> None:
        self.at(self.now + 0.1, lambda: self.member_reconnect(m.name))

    def member_reconnect(self, name: str) -> None:
        m = self.members[name]
        if not m.alive or m.lease_conn:
            return
        if self.cut(name):
            self.reconnect(m)
            return
        self.send(name, "up", lambda: self.broker_subscribe(name))

    def member_connected(self, name: str, retained: LeaseMessage | None) -> None:
        m = self.members[name]
        if not m.alive:
            return
        m.lease_conn = True
        self.do(m, m.lease.connected(self.now))
        if retained is not None:
            self.do(m, m.lease.message(retained, self.now, retained=True))

    def member_gets(self, name: str, msg: LeaseMessage, retained: bool) -> None:
        m = self.members[name]
        if m.alive and m.lease_conn:
            self.do(m, m.lease.message(msg, self.now, retained=retained))

    def member_puback(self, name: str, conn: int, sent_at: float) -> None:
        m = self.members[name]
        if m.alive and m.data_conn == conn:
            self.do(m, m.lease.renewed(sent_at, self.now))

    def member_data_lost(self, name: str, conn: int) -> None:
        m = self.members[name]
        if m.alive and m.data_conn == conn:
            self.do(m, m.lease.data_lost(self.now, "session taken over"))

    def schedule_tick(self, m: Member) -> None:
        t = m.lease.next_deadline()
        if t is not None:
            self.at(max(t, self.now), lambda: self.member_tick(m.name, t))

    def member_tick(self, name: str, t: float) -> None:
        m = self.members[name]
        if m.alive and m.lease.next_deadline() == t:
            self.do(m, m.lease.tick(self.now))

    def member_cut_detected(self, name: str) -> None:
        """Keepalive noticed the cut: the lease connection is gone on both sides."""
        m = self.members[name]
        self.broker_lease_conn_dead(name)
        if m.alive and m.data_conn is not None:  # its MQTT client gives up the session too
            self.do(m, m.lease.data_lost(self.now, "keepalive timeout"))
        if m.alive and m.lease_conn:
            m.lease_conn = False
            self.do(m, m.lease.disconnected(self.now))
            self.reconnect(m)

    def kill(self, name: str) -> None:
        m = self.members[name]
        m.alive = False
        self.end_ownership(m)
        self.at(self.now + 1.5 * self.keepalive_s, lambda: self.broker_lease_conn_dead(name))

    def run(self, names: list[str], until: float) -> None:
        for name in names:
            self.members[name] = Member(name, Lease(name, self.keepalive_s))
            self.at(0.0, lambda n=name: self.member_reconnect(n))
            if name in self.kills:
                self.at(self.kills[name], lambda n=name: self.kill(n))
            if name in self.cuts:
                lo, hi = self.cuts[name]
                if hi - lo > self.keepalive_s:
                    self.at(lo + self.keepalive_s, lambda n=name: self.member_cut_detected(n))
        while self._queue:
            t, _, fn = heapq.heappop(self._queue)
            if t > until:
                break
            self.now = t
            fn()
        for m in self.members.values():
            if m.alive:
                self.end_ownership(m)


def _overlaps(intervals: list[tuple[str, float, float]]) -> list[tuple[object, object]]:
    out: list[tuple[object, object]] = []
    for (n1, a1, b1), (n2, a2, b2) in itertools.combinations(intervals, 2):
        if n1 != n2 and a1 < b2 and a2 < b1:
            out.append(((n1, a1, b1), (n2, a2, b2)))
    return out


delays = st.lists(st.floats(min_value=0.001, max_value=0.3 * KA), min_size=1, max_size=16)
fault_times = st.floats(min_value=0.0, max_value=40.0)


@settings(max_examples=300, deadline=None)
@given(delays=delays, will_on_takeover=st.booleans(), n=st.integers(2, 3),
       kills=st.dictionaries(st.sampled_from(["m0", "m1", "m2"]), fault_times, max_size=2),
       cuts=st.dictionaries(st.sampled_from(["m0", "m1", "m2"]),
                            st.tuples(fault_times, st.floats(0.1, 20.0)), max_size=3))
def test_never_two_owners_at_once(delays: list[float], will_on_takeover: bool, n: int,
                                  kills: dict[str, float],
                                  cuts: dict[str, tuple[float, float]]) -> None:
    names = [f"m{i}" for i in range(n)]
    sim = Sim(KA, delays, will_on_takeover,
              {k: (lo, lo + d) for k, (lo, d) in cuts.items()}, kills)
    sim.run(names, until=80.0)
    assert _overlaps(sim.intervals) == []
    assert all(len(w) == 1 for w in sim.wins.values()), sim.wins  # one winner per epoch
    # Liveness: without faults, somebody owns it after the first claim.
    if not kills and not cuts:
        assert sim.intervals and min(a for _, a, _ in sim.intervals) < 4 * KA
