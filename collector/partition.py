"""When a partition member runs its collector: only while it holds the partition's lease.

Wiring of the lease (collector/lease.py decides), its connection
(collector/leasemqtt.py) and a :class:`~collector.app.Collector` per ownership:

* **standby**: only the lease connection; nothing subscribed to data, nothing written, no
  alerts;
* **won**: a fresh ``Collector`` whose MQTT session is the partition's (the Will clears the
  lease at the won epoch) runs: it restores its checkpoint before it subscribes (the
  restore slice's ``Collector.run``), then reads the partition's queued and live
  messages. The owner renews every keepalive/3 on the data session (on the lease
  connection until the data session is up);
* **demoted** (no renewal acknowledged for a keepalive, the data session taken over or
  broken, a newer claim or a rival holder seen): the collector is **fenced** at once
  (``Collector.fenced``: no acks, no availability, alerts or checkpoints) and stopped, and
  the member starts over on a fresh lease connection;
* **stop** (SIGTERM) while owner: a clean stop (drain, final emission), then the lease is
  released explicitly (a retained vacancy of its epoch) so the standby takes over at once.

Every transition is logged with the epoch; ``lease_state``, ``lease_epoch`` and
``takeovers`` go into the owner's ``collector_stats``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine

from collector.app import Collector
from collector.config import CollectorConfig
from collector.lease import Claim, Demote, Lease, LeaseMessage, Lost, Renew, State, Won
from collector.leasemqtt import LeaseLink, LinkEvent, lease_topic
from xanet.mqtt import backoff_s

log = logging.getLogger("xanet.collector.lease")

Clock = Callable[[], float]


class PartitionMember:
    """One collector process of a partition: standby or owner."""

    def __init__(self, cfg: CollectorConfig, *,
                 make_collector: Callable[[CollectorConfig], Collector] = Collector,
                 clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        if cfg.partition.id is None:
            raise ValueError("a partition member needs [partition] id")
        self.cfg = cfg
        self.partition = cfg.partition.id
        self.topic = lease_topic(self.partition)
        self.lease = Lease(cfg.collector.id, float(cfg.partition.keepalive_s))
        self.events: asyncio.Queue[LinkEvent | tuple[str, float]] = asyncio.Queue()
        self.link = LeaseLink(cfg, self.events)  # type: ignore[arg-type]  # LinkEvents only
        self.collector: Collector | None = None
        self._make = make_collector
        self._clock = clock
        self._wall = wall
        self._owner_stop: asyncio.Event | None = None
        self._owner_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._won_at = 0.0
        self._stopping = False  # a clean stop: the collector's end is no loss
        self._demotions = 0  # in a row: backs off the next claim
        self._rng = random.Random()

    def stats(self) -> dict[str, int | str]:
        return {"lease_state": self.lease.state.value, "lease_epoch": self.lease.epoch,
                "takeovers": self.lease.takeovers}

    async def run(self, stop: asyncio.Event) -> None:
        log.info("partition %s: collector %s joins as standby (keepalive %d s, lease %s)",
                 self.partition, self.cfg.collector.id, self.cfg.partition.keepalive_s,
                 self.topic)
        link_stop = asyncio.Event()
        link = asyncio.create_task(self.link.run(link_stop), name="lease-link")
        try:
            while not stop.is_set():
                await self._step(stop)
            await self._drain_owner()
        finally:
            await self._stop_owner(clean=True)
            release = self.lease.release()
            if release is not None:
                msg = LeaseMessage(release.op, release.epoch, None, self._wall())
                ok = await self.link.publish(msg)
                log.info("partition %s: lease released at epoch %d%s", self.partition,
                         release.epoch, "" if ok else " (not acknowledged: the standby "
                         "takes over after the lease timeout)")
            link_stop.set()
            await link
            for t in list(self._tasks):
                t.cancel()

    async def _drain_owner(self) -> None:
        """A clean stop while owner: the collector drains and writes its last emission
        while the lease is still renewed (and fencing still watched)."""
        task, owner_stop = self._owner_task, self._owner_stop
        if task is None or owner_stop is None:
            return
        self._stopping = True
        owner_stop.set()
        ended = asyncio.Event()
        task.add_done_callback(lambda _: ended.set())
        while not task.done() and self.lease.state is State.OWNER:
            await self._step(ended)

    async def _step(self, stop: asyncio.Event) -> None:
        """Wait for the next event or deadline (or stop), then act on what it decides."""
        deadline = self.lease.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - self._clock())
        getter = asyncio.ensure_future(self.events.get())
        stopper = asyncio.ensure_future(stop.wait())
        owner_end = self._owner_task
        waiters: set[asyncio.Future[object]] = {getter, stopper}  # type: ignore[arg-type]
        if owner_end is not None:
            waiters.add(owner_end)  # type: ignore[arg-type]
        done, _ = await asyncio.wait(waiters, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter not in done:
            getter.cancel()
            now = self._clock()
            if owner_end is not None and owner_end in done:
                if self._stopping:
                    return
                # The collector ended by itself (its data session was lost, or it failed)
                if self.lease.state is State.OWNER:
                    await self._act(self.lease.data_lost(now, "the collector stopped"))
                else:  # demoted by _data_lost
                    await self._stop_owner(clean=False)
                    await self._back_off()
                    self.link.restart()
            elif not stop.is_set():
                await self._act(self.lease.tick(now))
            return
        event = getter.result()
        now = self._clock()
        if isinstance(event, tuple):  # ("renewed", sent_at) or ("lost", reason)
            kind, value = event
            if kind == "renewed":
                await self._act(self.lease.renewed(value, now))
            return
        if event.kind == "subscribed":
            log.info("partition %s: lease connection up", self.partition)
            await self._act(self.lease.connected(now))
        elif event.kind == "gone":
            await self._act(self.lease.disconnected(now))
        elif event.message is not None:
            seen = (self.lease.holder, self.lease.epoch)
            await self._act(self.lease.message(event.message, now, retained=event.retained))
            if (self.lease.holder, self.lease.epoch) != seen and \
                    self.lease.state is not State.OWNER and self.lease.holder is not None:
                log.info("partition %s: held by %s at epoch %d (%s)", self.partition,
                         self.lease.holder, self.lease.epoch, self.lease.state.value)

    async def _act(self, actions: list[Claim | Won | Lost | Renew | Demote]) -> None:
        for a in actions:
            if isinstance(a, Claim):
                log.info("partition %s: claiming epoch %d", self.partition, a.epoch)
                await self.link.publish(LeaseMessage("claim", a.epoch, self.lease.me,
                                                     self._wall()))
            elif isinstance(a, Won):
                self._won_at = self._clock()
                log.info("partition %s: owner at epoch %d (takeover %d): starting the "
                         "collector", self.partition, a.epoch, self.lease.takeovers)
                self._start_owner(a.epoch)
            elif isinstance(a, Lost):
                log.info("partition %s: epoch %d claimed first by %s: standby",
                         self.partition, a.epoch, a.holder)
            elif isinstance(a, Renew):
                self._spawn(self._renew(a.epoch))
            else:
                log.warning("partition %s: demoted at epoch %d (%s): collector fenced; "
                            "a fresh lease connection", self.partition, a.epoch, a.reason)
                await self._stop_owner(clean=False)
                await self._back_off()
                self.link.restart()

    async def _back_off(self) -> None:
        """Demoted again soon after winning (e.g. the data session is refused): wait a
        while (capped, jittered, at most a keepalive) before claiming again."""
        ka = float(self.cfg.partition.keepalive_s)
        if self._clock() - self._won_at > self.lease.lease_timeout_s:
            self._demotions = 0
        m = self.cfg.mqtt
        delay = backoff_s(self._demotions, min(m.reconnect_min_s, ka), ka, self._rng)
        self._demotions += 1
        if self._demotions > 1:
            log.info("partition %s: demoted %d times in a row: next claim in %.1f s",
                     self.partition, self._demotions, delay)
            await asyncio.sleep(delay)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renew(self, epoch: int) -> None:
        """One renewal: on the data session once it is up, else on the lease connection."""
        sent = self._clock()
        msg = LeaseMessage("renew", epoch, self.lease.me, self._wall())
        collector = self.collector
        ka = float(self.cfg.partition.keepalive_s)
        if collector is not None and collector.mqtt.will is not None \
                and collector.mqtt.subscribed.is_set():
            ok = await collector.mqtt.publish_lease(self.topic, msg.encode(), ka)
        elif collector is not None and collector.fenced:
            ok = False
        else:
            ok = await self.link.publish(msg)
        if ok:
            await self.events.put(("renewed", sent))

    def _start_owner(self, epoch: int) -> None:
        collector = self._make(self.cfg)
        will = LeaseMessage("vacant", epoch, None, self._wall())
        collector.mqtt.will = (self.topic, will.encode())
        collector.mqtt.on_lost = self._data_lost
        collector.partition_stats = self.stats
        collector.lease_valid = lambda: self.lease.valid(self._clock())
        self.collector = collector
        self._owner_stop = asyncio.Event()
        self._owner_task = asyncio.create_task(collector.run(self._owner_stop),
                                               name="partition-owner")

    def _data_lost(self, reason: str) -> None:
        """The data session ended (called inside the collector's MQTT loop): fence now,
        before the collector's stop path could emit anything."""
        if self.collector is not None:
            self.collector.fence()
        self.events.put_nowait(("lost", 0.0))
        actions = self.lease.data_lost(self._clock(), reason)
        for a in actions:
            log.warning("partition %s: demoted at epoch %d (%s): collector fenced; a fresh "
                        "lease connection", self.partition, a.epoch,
                        getattr(a, "reason", ""))
        # The fresh lease connection comes once the collector stopped (_step).

    async def _stop_owner(self, *, clean: bool) -> None:
        collector, task, owner_stop = self.collector, self._owner_task, self._owner_stop
        self.collector = self._owner_task = self._owner_stop = None
        if collector is None or task is None or owner_stop is None:
            return
        if not clean:
            collector.fence()
        owner_stop.set()
        # A clean stop drains (bounded: collector/mqtt_in.py); a fenced one has nothing to
        # keep (nothing more is acknowledged), so it is cut short after a keepalive (a
        # broker or InfluxDB out of reach must not hold the member back from standby).
        limit_s = 30.0 if clean else float(self.cfg.partition.keepalive_s)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=limit_s)
        except TimeoutError:
            log.warning("partition %s: the collector did not stop within %g s: cancelled",
                        self.partition, limit_s)
            task.cancel()
            await asyncio.wait({task}, timeout=limit_s)
        except Exception:
            log.exception("partition %s: the collector failed", self.partition)
        log.info("partition %s: collector stopped%s", self.partition,
                 " (fenced)" if collector.fenced else "")
