"""When a backlog message may go: live first, within a bandwidth budget. Pure.

The uplink (:mod:`agent.uplink`) has two lanes: *live* (messages stored since the
connection came up, and every poll stored while the backlog drains) and *backlog* (the
spool from before, oldest first). Three rules decide when a backlog message may go, in
bytes (so a compact batch of many entries costs its real size):

* **live first** (:class:`BacklogGate`): no backlog message while a live one waits to be
  published, and at most :attr:`BacklogGate.cap_bytes` backlog bytes unacknowledged at
  once — :data:`LIVE_WAIT_S` of the budget (at least one message). On a thin link those
  bytes queue in the socket and the broker link ahead of anything sent after them, so a
  live message never waits behind more than about :data:`LIVE_WAIT_S` of backlog;
* **the budget** (:class:`Pacer`): token buckets in bytes/s (``spool.replay_budget_bytes_per_s``)
  and messages/s (``spool.replay_rate_per_s``), both bounds apply; lateness is made up,
  at most :data:`BURST_S` of it, so over any window the backlog sends at most
  ``rate × (window + BURST_S)`` plus one message;
* **auto** (:class:`AutoBudget`): the bytes/s budget measured from PUBACK throughput,
  window by window (the algorithm and its bounds are in its docstring and
  docs/delivery.md).

Status messages and the Last Will go through none of this: they are never paced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: How much lateness a token bucket may make up at once.
BURST_S: Final = 0.1
#: How long a live message may wait behind backlog bytes in flight, at the budget rate.
LIVE_WAIT_S: Final = 1.0
#: Auto: where the budget starts (32 kbit/s: a thin link's share, found again within a
#: few windows on a fast one), its bounds, its measuring window.
AUTO_START_BYTES_PER_S: Final = 4_000.0
AUTO_MIN_BYTES_PER_S: Final = 1_000.0
AUTO_MAX_BYTES_PER_S: Final = 100_000_000.0
AUTO_WINDOW_S: Final = 1.0
#: Auto: the shortest window while doubling (a fast link found in ~2 s, not ~8).
AUTO_SLOW_START_WINDOW_S: Final = 0.25
#: Auto: the budget after a window the link could not carry, as a fraction of what it did.
AUTO_BACKOFF: Final = 0.8
#: Auto: the gentle probe upward after the first back-off (per window); doubling before.
AUTO_PROBE: Final = 1.1
#: Auto: probe upward only when the backlog sent at least this fraction of the budget,
#: and at least this fraction of what it sent was acknowledged in the window.
AUTO_USED: Final = 0.9
#: Auto: a window lasts at least AUTO_WINDOW_S and until this many PUBACKs came back
#: (large batches on a thin link), but at most AUTO_WINDOW_MAX_S.
AUTO_MIN_ACKS: Final = 4
AUTO_WINDOW_MAX_S: Final = 30.0


class Bucket:
    """One token bucket: ``rate`` units per second, at most :data:`BURST_S` of lateness
    made up (``next_at``: when the next unit may go)."""

    def __init__(self, rate: float, burst_s: float = BURST_S) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = rate
        self.burst_s = burst_s
        self.next_at: float | None = None

    def delay_s(self, now_s: float, ahead: float = 0.0) -> float:
        """How long until the next item may go (0: now). ``ahead``: units of the item paid
        before it goes (a compact batch of n messages goes in the slot of its last: n-1)."""
        if self.next_at is None:  # nothing went yet: the first item goes, and pays after
            return 0.0
        return max(0.0, self.next_at + ahead / self.rate - now_s)

    def take(self, now_s: float, units: float, ahead: float = 0.0) -> None:
        """``units`` went at ``now_s`` (``ahead`` of them paid before, :meth:`delay_s`): the
        next item waits until the rest are paid for."""
        base = now_s if self.next_at is None else self.next_at
        start = max(base + ahead / self.rate, now_s - self.burst_s)
        self.next_at = start + (units - ahead) / self.rate


class Pacer:
    """The backlog's budget: bytes/s and messages/s, both bounds apply (None: no bound)."""

    def __init__(self, bytes_per_s: float | None, messages_per_s: float | None) -> None:
        self.bytes = Bucket(bytes_per_s) if bytes_per_s else None
        self.messages = Bucket(messages_per_s) if messages_per_s else None

    def set_bytes_per_s(self, rate: float) -> None:
        """A new bytes/s budget (auto); what was already paid for stays paid."""
        if self.bytes is None:
            self.bytes = Bucket(rate)
        else:
            self.bytes.rate = rate

    @property
    def bytes_per_s(self) -> float | None:
        return self.bytes.rate if self.bytes else None

    def delay_s(self, now_s: float, messages: int = 1) -> float:
        """How long until the next backlog publish (carrying ``messages`` spool messages)
        may go (0: now)."""
        return max(self.bytes.delay_s(now_s) if self.bytes else 0.0,
                   self.messages.delay_s(now_s, messages - 1) if self.messages else 0.0)

    def take(self, now_s: float, nbytes: int, messages: int = 1) -> None:
        """A backlog publish of ``nbytes`` carrying ``messages`` spool messages (a compact
        batch carries several) went at ``now_s``."""
        if self.bytes is not None:
            self.bytes.take(now_s, nbytes)
        if self.messages is not None:
            self.messages.take(now_s, messages, messages - 1)


class BacklogGate:
    """Live first: whether a backlog message may be handed to the connection now."""

    def __init__(self, cap_bytes: float) -> None:
        self.cap_bytes = cap_bytes
        self.in_flight_bytes = 0
        self.in_flight = 0
        #: the cap held a backlog message back since :meth:`reset_capped` (for auto)
        self.capped = False

    def may_send(self, nbytes: int, *, live_waiting: bool) -> bool:
        """``nbytes``: the backlog message's size; ``live_waiting``: a live message is
        stored and not yet handed to the connection. One message always may, alone."""
        if live_waiting:
            return False
        if self.in_flight and self.in_flight_bytes + nbytes > self.cap_bytes:
            self.capped = True
            return False
        return True

    def sent(self, nbytes: int) -> None:
        self.in_flight += 1
        self.in_flight_bytes += nbytes

    def done(self, nbytes: int) -> None:
        """A backlog message was acknowledged (or failed): no longer in flight."""
        self.in_flight -= 1
        self.in_flight_bytes -= nbytes

    def reset_capped(self) -> bool:
        capped, self.capped = self.capped, False
        return capped


def cap_bytes(budget_bytes_per_s: float | None) -> float:
    """The backlog bytes that may be unacknowledged at once: :data:`LIVE_WAIT_S` of the
    budget (no bytes budget: no bound but the in-flight message count)."""
    return float("inf") if budget_bytes_per_s is None else budget_bytes_per_s * LIVE_WAIT_S


@dataclass(frozen=True, slots=True)
class Window:
    """What the backlog did during one measuring window."""

    duration_s: float
    sent_bytes: int
    acked_bytes: int
    acks: int
    #: backlog messages were waiting to go during the whole window
    busy: bool
    #: the in-flight cap held a backlog message back (the link is the limit)
    capped: bool


class AutoBudget:
    """The bytes/s budget measured from PUBACK throughput.

    Window by window (at least :data:`AUTO_WINDOW_S` — :data:`AUTO_SLOW_START_WINDOW_S`
    while doubling — and :data:`AUTO_MIN_ACKS` PUBACKs, at most :data:`AUTO_WINDOW_MAX_S`:
    :func:`window_over`), only while the backlog was busy
    (an idle backlog says nothing about the link):

    * the link did **not** keep up — the in-flight cap held a backlog message back, so
      :data:`LIVE_WAIT_S` of the budget was sent and not yet acknowledged — the budget
      becomes :data:`AUTO_BACKOFF` × the measured throughput (acknowledged bytes /
      window), and probing turns gentle;
    * the link kept up (at least :data:`AUTO_USED` of what was sent came back
      acknowledged) **and** the budget was the limit (the backlog sent at least
      :data:`AUTO_USED` of it): probe upward — ×2 per window until the first back-off
      (a fast link is found in seconds), then ×:data:`AUTO_PROBE`;
    * otherwise (something else limited the backlog: the messages/s bound, the event
      loop) the budget holds.

    Always within [:data:`AUTO_MIN_BYTES_PER_S`, :data:`AUTO_MAX_BYTES_PER_S`]. The
    budget therefore saws between ~0.8 and ~1.2 × the link's rate; above the rate, the
    in-flight cap (:func:`cap_bytes`) bounds what queues ahead of a live message.
    """

    def __init__(self, start: float = AUTO_START_BYTES_PER_S) -> None:
        self.bytes_per_s = clamp(start)
        self.slow_start = True
        #: the last measured throughput (bytes/s), None before the first busy window
        self.measured_bytes_per_s: float | None = None

    def observe(self, window: Window) -> float:
        """The budget after ``window``."""
        if not window.busy or window.duration_s <= 0:
            return self.bytes_per_s
        measured = window.acked_bytes / window.duration_s
        self.measured_bytes_per_s = measured
        if window.capped:
            self.bytes_per_s = clamp(AUTO_BACKOFF * measured)
            self.slow_start = False
        elif (window.sent_bytes >= AUTO_USED * self.bytes_per_s * window.duration_s
              and window.acked_bytes >= AUTO_USED * window.sent_bytes):
            self.bytes_per_s = clamp(self.bytes_per_s * (2.0 if self.slow_start else AUTO_PROBE))
        return self.bytes_per_s


class Meter:
    """Auto's measuring window: what the backlog sent and got acknowledged since it began."""

    def __init__(self, now_s: float) -> None:
        self.started = now_s
        self.sent_bytes = 0
        self.acked_bytes = 0
        self.acks = 0

    def sent(self, nbytes: int) -> None:
        self.sent_bytes += nbytes

    def acked(self, nbytes: int) -> None:
        self.acked_bytes += nbytes
        self.acks += 1

    def close(self, now_s: float, capped: bool, slow_start: bool = False) -> Window | None:
        """The window, when it is over (:func:`window_over`; the meter starts the next);
        else None."""
        duration_s = now_s - self.started
        if not window_over(duration_s, self.acks, slow_start):
            return None
        window = Window(duration_s=duration_s, sent_bytes=self.sent_bytes,
                        acked_bytes=self.acked_bytes, acks=self.acks, busy=True,
                        capped=capped)
        self.started, self.sent_bytes, self.acked_bytes, self.acks = now_s, 0, 0, 0
        return window


def window_over(duration_s: float, acks: int, slow_start: bool = False) -> bool:
    """Whether a measuring window that lasted ``duration_s`` with ``acks`` PUBACKs ends
    (``slow_start``: the budget is still doubling: shorter windows)."""
    shortest = AUTO_SLOW_START_WINDOW_S if slow_start else AUTO_WINDOW_S
    return duration_s >= AUTO_WINDOW_MAX_S or (duration_s >= shortest
                                                and acks >= AUTO_MIN_ACKS)


def clamp(bytes_per_s: float) -> float:
    return min(AUTO_MAX_BYTES_PER_S, max(AUTO_MIN_BYTES_PER_S, bytes_per_s))


class BacklogBudget:
    """The three rules together, for one uplink: what the backlog lane asks.

    ``budget_bytes_per_s``: a number, ``"auto"`` or ``"off"`` (messages/s only);
    ``rate_per_s``: the messages/s bound (None: none)."""

    def __init__(self, budget_bytes_per_s: float | str, rate_per_s: float | None,
                 now_s: float) -> None:
        self.auto = AutoBudget() if budget_bytes_per_s == "auto" else None
        fixed = (None if isinstance(budget_bytes_per_s, str) else float(budget_bytes_per_s))
        self.pacer = Pacer(self.auto.bytes_per_s if self.auto else fixed, rate_per_s)
        self.gate = BacklogGate(cap_bytes(self.pacer.bytes_per_s))
        self.meter = Meter(now_s)

    @property
    def bytes_per_s(self) -> float | None:
        """The bytes/s budget now (None: only messages/s bound the backlog)."""
        return self.pacer.bytes_per_s

    def start(self, now_s: float) -> None:
        """A replay begins: auto's windows count from now (an idle backlog measures
        nothing)."""
        self.meter = Meter(now_s)
        self.gate.reset_capped()

    def delay_s(self, now_s: float, messages: int = 1) -> float:
        """How long until the budget lets the next backlog publish (carrying ``messages``
        spool messages) go (0: now)."""
        self.tick(now_s)
        return self.pacer.delay_s(now_s, messages)

    def may_send(self, nbytes: int, *, live_waiting: bool) -> bool:
        """Whether live first and the in-flight cap let a publish of ``nbytes`` go now."""
        return self.gate.may_send(nbytes, live_waiting=live_waiting)

    def sent(self, now_s: float, nbytes: int, messages: int = 1) -> None:
        """A backlog publish of ``nbytes`` (carrying ``messages`` spool messages) went."""
        self.pacer.take(now_s, nbytes, messages)
        self.gate.sent(nbytes)
        self.meter.sent(nbytes)

    def done(self, nbytes: int, *, acked: bool) -> None:
        """A backlog publish of ``nbytes`` ended (``acked``: the broker took it)."""
        self.gate.done(nbytes)
        if acked:
            self.meter.acked(nbytes)

    def tick(self, now_s: float) -> float | None:
        """Auto: at the end of a measuring window, the new budget (else None)."""
        if self.auto is None:
            return None
        window = self.meter.close(now_s, self.gate.capped, self.auto.slow_start)
        if window is None:
            return None
        self.gate.reset_capped()
        budget = self.auto.observe(window)
        self.pacer.set_bytes_per_s(budget)
        self.gate.cap_bytes = cap_bytes(budget)
        return budget
