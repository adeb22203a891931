"""Who owns a partition: the lease protocol's decisions (claim, won, lost, renew, demote). Pure.

The lease is a retained JSON message on ``xanet/v1/core/lease/{partition}`` (holder,
epoch, ts, op). Every member of the partition subscribes to it on its own **lease
connection**; the broker serialises publishes, so all members see the messages in one
order. :class:`Lease` is one member's view, fed with what happens (the lease connection is
subscribed, a lease message arrived, a renewal got its PUBACK, time passed) and answering
with what to do (:class:`Claim`, :class:`Renew`, :class:`Won`, :class:`Lost`,
:class:`Demote`). No clock is read here: every event carries a monotonic ``now``.

Rules (docs/deploy-core.md, "Two collectors per partition"):

* **Claim** (epoch = highest epoch seen + 1) when the lease is vacant (a ``vacant``
  message of the current epoch seen live: the holder released it, or its Will cleared
  it; or a retained renewal by this member, which does not hold it), or when no sign of
  a holder was seen for ``lease_timeout_s`` (3 x keepalive: a Will never published, the
  broker crashed). Right after (re)subscribing, a member knows only the retained message, which
  may be stale (a Will published after a newer claim): it waits ``1.5 x keepalive``
  of silence if that message says vacant (or there is none), ``lease_timeout_s`` if it
  names a holder. A live holder renews every keepalive/3, so it is heard well before.
* **The first claim of an epoch wins**: a member wins when its own claim comes back and
  no message of that epoch (or a later one) came before it. The winner re-asserts at once
  (a retained ``renew``), so the retained message names it.
* **Fencing**: the owner renews every keepalive/3 (QoS 1, on its data session, the
  connection that carries its Will) and counts the lease valid until the send time of the
  last renewal that got its PUBACK + 1 x keepalive (the claim counts as the first). Past
  that it demotes; an expired lease is never revived by a late PUBACK. The broker
  publishes the Will ~1.5 x keepalive after the data session's last packet, after the
  owner's own deadline; a standby that times out waits 3 x keepalive after the last
  renewal it saw. So two owners never overlap.
* The owner **demotes** when it sees a later epoch claimed, another holder renewing its
  epoch or a later one, or its own epoch's vacancy (its data session's Will: the session is
  gone). It re-asserts at once when it sees an older epoch (a stale Will or claim made the
  retained message lie). After a demotion the member needs a fresh lease connection
  (:meth:`Lease.connected`) before it may claim again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Literal

Op = Literal["claim", "renew", "vacant"]
OPS: tuple[Op, ...] = ("claim", "renew", "vacant")


class State(Enum):
    OFFLINE = "offline"  # no lease connection (or demoted: waits for a fresh one)
    STANDBY = "standby"
    CLAIMING = "claiming"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class LeaseMessage:
    """One message on the lease topic."""

    op: Op
    epoch: int
    holder: str | None  # None: vacant
    ts: float = 0.0  # wall-clock seconds, for people reading it (never decides)

    def encode(self) -> bytes:
        return json.dumps({"op": self.op, "epoch": self.epoch, "holder": self.holder,
                           "ts": round(self.ts, 3)}, separators=(",", ":")).encode()


class LeaseDecodeError(ValueError):
    """A lease topic payload that is not a lease message."""


def decode(payload: bytes) -> LeaseMessage:
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LeaseDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise LeaseDecodeError("not a JSON object")
    op, epoch, holder, ts = raw.get("op"), raw.get("epoch"), raw.get("holder"), raw.get("ts", 0)
    if op not in OPS:
        raise LeaseDecodeError(f"op {op!r} is not one of {', '.join(OPS)}")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise LeaseDecodeError(f"epoch {epoch!r} is not a non-negative integer")
    if not (holder is None or isinstance(holder, str)) or (holder is None) != (op == "vacant"):
        raise LeaseDecodeError(f"holder {holder!r} does not fit op {op!r}")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise LeaseDecodeError(f"ts {ts!r} is not a number")
    return LeaseMessage(op, epoch, holder, float(ts))


@dataclass(frozen=True, slots=True)
class Claim:
    """Publish a claim of ``epoch`` now (retained, QoS 1, on the lease connection)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Won:
    """This member owns the partition at ``epoch``: connect the data session, run."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Lost:
    """Someone else claimed ``epoch`` first."""

    epoch: int
    holder: str | None


@dataclass(frozen=True, slots=True)
class Renew:
    """Publish a renewal of ``epoch`` now (retained, QoS 1, on the data session); report
    its PUBACK with :meth:`Lease.renewed` and the time it was sent."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Demote:
    """Stop owning at once (fenced: no more acks, writes or alerts); then a fresh lease
    connection."""

    epoch: int
    reason: str


Action = Claim | Won | Lost | Renew | Demote


class Lease:
    """One member's view of its partition's lease."""

    def __init__(self, me: str, keepalive_s: float, lease_timeout_s: float | None = None) -> None:
        self.me = me
        self.keepalive_s = keepalive_s
        self.renew_every_s = keepalive_s / 3
        self.lease_timeout_s = 3 * keepalive_s if lease_timeout_s is None else lease_timeout_s
        self.grace_s = 1.5 * keepalive_s
        self.state = State.OFFLINE
        self.epoch = 0  # highest epoch seen claimed or held
        self.holder: str | None = None  # who holds self.epoch as far as this member knows
        self.my_epoch = 0  # the epoch owned or claimed
        self.takeovers = 0  # times this member won the lease
        self._heard = 0.0  # last sign of a live holder (or the subscription)
        self._vacant = False  # no holder known (retained vacancy, or nothing retained)
        self._vacant_now = False  # vacancy known current: claim at once
        self._claim_sent = 0.0
        self._valid_until = 0.0
        self._next_renew = 0.0

    # -- events ---------------------------------------------------------------

    def connected(self, now: float) -> list[Action]:
        """The lease connection is subscribed (the retained message, if any, follows)."""
        if self.state is State.OWNER:
            return []  # a new lease connection while owning: fencing still decides
        self.state = State.STANDBY
        self._heard = now
        self._vacant, self._vacant_now = True, False
        return self.tick(now)

    def disconnected(self, now: float) -> list[Action]:
        """The lease connection is gone: a standby or claimant waits for the next one."""
        if self.state in (State.STANDBY, State.CLAIMING):
            self.state = State.OFFLINE
        return self.tick(now)

    def message(self, msg: LeaseMessage, now: float, *, retained: bool = False) -> list[Action]:
        """A lease message arrived (``retained``: delivered because of our subscription, so
        possibly old news)."""
        out = self.tick(now)
        if self.state is State.OFFLINE:
            return out
        if self.state is State.OWNER:
            return out + self._owner_sees(msg, now)
        if self.state is State.CLAIMING and msg.op == "claim" and msg.holder == self.me \
                and msg.epoch == self.my_epoch:
            if msg.epoch > self.epoch:  # first claim of its epoch: ours
                return out + self._win(now)
            self.state = State.STANDBY
            return [*out, Lost(msg.epoch, self.holder)]
        self._standby_sees(msg, now, retained)
        return out + self.tick(now)

    def renewed(self, sent_at: float, now: float) -> list[Action]:
        """The renewal sent at ``sent_at`` got its PUBACK."""
        out = self.tick(now)  # an expired lease demotes first: a late PUBACK revives nothing
        if self.state is State.OWNER:
            self._valid_until = max(self._valid_until, sent_at + self.keepalive_s)
        return out

    def data_lost(self, now: float, reason: str) -> list[Action]:
        """The owner's data session ended (taken over, or the connection broke: its Will
        may be out already)."""
        if self.state is not State.OWNER:
            return []
        return self._demote(f"data session lost: {reason}")

    def release(self) -> LeaseMessage | None:
        """Clean stop: the vacancy to publish (retained) once the data session closed
        cleanly, so a standby takes over at once; None when not owning."""
        if self.state is not State.OWNER:
            self.state = State.OFFLINE
            return None
        self.state = State.OFFLINE
        return LeaseMessage("vacant", self.my_epoch, None)

    def tick(self, now: float) -> list[Action]:
        """Time passed: claim, renew or demote when due."""
        if self.state is State.OWNER:
            if now >= self._valid_until:
                return self._demote(f"no renewal acknowledged for {self.keepalive_s:g} s")
            if now >= self._next_renew:
                self._next_renew = now + self.renew_every_s
                return [Renew(self.my_epoch)]
            return []
        if self.state is State.CLAIMING and now >= self._claim_sent + self.keepalive_s:
            self.state = State.STANDBY  # our claim never came back: start over
            self._heard = now
        if self.state is State.STANDBY and now >= self.claim_due():
            self.state = State.CLAIMING
            self.my_epoch = self.epoch + 1
            self._claim_sent = now
            return [Claim(self.my_epoch)]
        return []

    def valid(self, now: float) -> bool:
        """True while this member owns the lease and its fencing deadline has not passed
        (checked before every side effect: a process frozen past it acts no more)."""
        return self.state is State.OWNER and now < self._valid_until

    def claim_due(self) -> float:
        """When a standby claims if nothing else is heard (monotonic seconds)."""
        if self._vacant_now:
            return self._heard
        return self._heard + (self.grace_s if self._vacant else self.lease_timeout_s)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next (None: only events can change it)."""
        if self.state is State.OWNER:
            return min(self._valid_until, self._next_renew)
        if self.state is State.CLAIMING:
            return self._claim_sent + self.keepalive_s
        if self.state is State.STANDBY:
            return self.claim_due()
        return None

    # -- decisions ------------------------------------------------------------

    def _standby_sees(self, msg: LeaseMessage, now: float, retained: bool) -> None:
        if msg.op != "vacant" and not retained:
            # Any live claim or renewal, even one that loses in this member's view or is of
            # an older epoch: its sender may count itself owner (its view can be older than
            # ours), so the lease timeout starts over.
            self._heard = now
            self._vacant = self._vacant_now = False
        if msg.epoch < self.epoch:
            return  # old news (a stale Will or a late claim): the holder re-asserts
        if msg.op == "vacant":
            if msg.epoch == self.epoch or msg.epoch > self.epoch:
                self.epoch = msg.epoch
                self.holder = None
                self._vacant = True
                self._vacant_now = not retained
                if retained:
                    self._heard = now
            return
        if msg.op == "claim" and msg.epoch == self.epoch and self.holder is not None:
            return  # a losing claim of the current epoch
        self.epoch = msg.epoch
        self.holder = msg.holder
        self._heard = now
        # A retained renewal by this member, which does not own it: a former run's (or a
        # demoted) lease, and nobody claimed since (a claim would be retained): vacant.
        mine = retained and msg.op == "renew" and msg.holder == self.me
        self._vacant, self._vacant_now = mine, mine

    def _owner_sees(self, msg: LeaseMessage, now: float) -> list[Action]:
        if msg.holder == self.me and msg.epoch == self.my_epoch:
            return []  # our own claim or renewal
        if msg.epoch < self.my_epoch:
            self._next_renew = now  # the retained message is stale: re-assert now
            return self.tick(now)
        if msg.op == "vacant" and msg.epoch == self.my_epoch:
            return self._demote("the lease was cleared (our data session's Will)")
        if msg.op == "claim" and msg.epoch == self.my_epoch:
            return []  # a claim that lost to ours
        self.epoch, self.holder = max(self.epoch, msg.epoch), msg.holder
        return self._demote(f"{msg.op} of epoch {msg.epoch} by {msg.holder}")

    def _win(self, now: float) -> list[Action]:
        self.state = State.OWNER
        self.epoch, self.holder = self.my_epoch, self.me
        self.takeovers += 1
        self._valid_until = self._claim_sent + self.keepalive_s
        self._next_renew = now
        return [Won(self.my_epoch), *self.tick(now)]

    def _demote(self, reason: str) -> list[Action]:
        self.state = State.OFFLINE
        self._vacant = self._vacant_now = False
        return [Demote(self.my_epoch, reason)]
