"""The agent program: poll devices on their schedules, compute rates, spool, publish.

Wiring only; the decisions live in :mod:`agent.schedule`, :mod:`agent.rates`,
:mod:`agent.telemetry` and :mod:`xanet.wire`, the I/O in :mod:`agent.snmp`,
:mod:`agent.ping`, :mod:`agent.batcher`, :mod:`agent.spool` and :mod:`agent.uplink`;
a device's profiles are added to its poll by :mod:`agent.profilepoll`; a config pushed
by the core is judged by :mod:`agent.configstore` and applied live by :meth:`Agent.apply`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol

from agent.batcher import Batcher
from agent.concurrency import AdmissionLimit
from agent.config import AgentConfig, DeviceConfig
from agent.configstore import RemoteConfig
from agent.deviceplan import device_key, device_plan, rate_policy
from agent.errors import (
    SnmpConfigError,
    SnmpError,
    SnmpProtocolError,
    SnmpResolveError,
    UplinkFatal,
)
from agent.gate import Gate, Naps, probe_lag
from agent.instance import instance_id
from agent.ping import IcmpPinger, Pinger, PingError, PingPolicy
from agent.profilepoll import ProfileReader, profile_polls
from agent.rates import RateTracker
from agent.remoteconfig import device_changes
from agent.resolver import Resolver, SystemResolver
from agent.schedule import next_slot, phase_of
from agent.snmp import RawPoll, SnmpPoller, SnmpTarget
from agent.spool import Spool
from agent.subpoll import CounterBridges, CounterReading, SubPlan, SubPollPolicy
from agent.subpoll import plan as plan_readings
from agent.telemetry import (
    Delivery,
    Health,
    Overload,
    StatusKind,
    agent_health,
    between_note,
    delivery_note,
    failed_poll,
    online_reason,
    ping_only_poll,
    profiles_note,
    resolve_failure,
    should_recheck,
    status,
    stretch_note,
    to_device_poll,
    unbuilt_poll,
)
from agent.uplink import Uplink, first_leaf
from xanet import topics, wire
from xanet.config import ConfigError

log = logging.getLogger("xanet.agent")

__version__ = "0.1.0"


class Poller(Protocol):
    """The SNMP port: :class:`agent.snmp.SnmpPoller`, or a fake in tests and benches."""

    async def poll(self, target: SnmpTarget) -> RawPoll: ...

    def close(self) -> None: ...


class Agent:
    def __init__(self, cfg: AgentConfig, *, poller: Poller | None = None,
                 pinger: Pinger | None = None, resolver: Resolver | None = None,
                 profile_reader: ProfileReader | None = None) -> None:
        self.remote = RemoteConfig(cfg)  # the stored pushed config, when there is one
        cfg = self.cfg = self.remote.config
        self._profile_reader = profile_reader
        self._tasks: dict[str, asyncio.Task[None]] = {}  # device key -> its poll loop
        self._running: tuple[asyncio.TaskGroup, asyncio.Event] | None = None
        self.poller: Poller = poller or SnmpPoller()
        i = cfg.icmp
        self.pinger: Pinger = pinger or IcmpPinger(
            PingPolicy(count=i.count, interval_s=i.interval_s, timeout_s=i.timeout_s))
        self.resolver: Resolver = resolver or SystemResolver()
        s = cfg.spool
        self.spool = Spool(s.path, max_messages=s.max_messages, max_age_s=s.max_age_s,
                           fsync=s.fsync)
        a = cfg.agent
        self.health = Health()
        self.instance = instance_id()
        self.uplink = Uplink(
            cfg.mqtt, self.spool,
            client_id=f"xanet-agent-{a.id}",
            status_topic=topics.build(a.province, a.commune, a.site, "status"),
            make_status=self.status,
            replay_rate_per_s=s.replay_rate_per_s,
            replay_budget_bytes_per_s=s.replay_budget_bytes_per_s,
            traffic=self.health.traffic,
            status_interval_s=a.status_interval_s,
            config_topic=topics.config_topic(a.id) if self.remote.enabled else None,
            on_config=self._on_config,
            backlog_batch_bytes=cfg.batch.backlog_batch_bytes,
            compact_batches=cfg.batch.compact,
        )
        self.batcher = Batcher(cfg, self.spool, self.uplink.notify, health=self.health,
                               instance=self.instance,
                               broker_limit=lambda: self.uplink.max_packet_size)
        self.plans = {device_key(cfg, d): device_plan(cfg, d) for d in cfg.devices}
        self._trackers: dict[str, RateTracker] = {}
        r = cfg.rates
        self._sub_policy = SubPollPolicy(r.counter32_readings, r.counter32_max_readings,
                                         r.counter32_min_interval_s)
        self._bridges: dict[str, CounterBridges] = {}
        self._addresses: dict[str, str] = {}  # device key -> its address at the last poll
        #: devices whose Counter32-only ports are read between polls, with the plan
        self.between: dict[str, SubPlan] = {}
        self._traced: set[str] = set()  # devices whose unexpected exception was logged
        p = cfg.polling
        self.concurrency = AdmissionLimit(ceiling=p.max_concurrent,
                                          max_lag_s=p.max_loop_lag_s, floor=p.min_concurrent)
        self.gate = Gate(p.max_concurrent)
        self.naps = Naps()
        self.overload = Overload()
        self.profile_polls = profile_polls(cfg, self.poller, profile_reader, self.health,
                                           lambda d: (device_key(cfg, d), self._tracker(d)))

    def _on_lag(self, lag_s: float) -> None:
        self.overload.observe_lag(lag_s)
        lim = self.concurrency
        before = lim.limit
        limit = lim.observe(lag_s)
        if limit == before:
            return
        self.gate.resize(limit)
        if limit < before and before == lim.ceiling:
            log.warning("event loop lag %.3fs > %.3fs: admitting at most %d poll(s) at a time "
                        "(of %d) so the uplink keeps up", lag_s, lim.max_lag_s, limit,
                        lim.ceiling)
        elif limit == lim.ceiling:
            log.info("event loop lag back under %.3fs: admitting %d polls at a time again "
                     "(%d poll(s) waited for admission meanwhile)", lim.max_lag_s, limit,
                     self.health.polls_throttled)

    def status(self, kind: StatusKind) -> wire.Status:
        now = datetime.now(UTC)
        delivery = self._delivery(online=kind == "online")
        reason = None
        if kind == "online":  # (the overload note starts its next period: online only)
            lim = self.concurrency
            reason = online_reason(
                delivery_note(delivery, self.health), stretch_note(delivery),
                self.overload.note(self.health.polls_throttled, lim.limit, lim.ceiling,
                                   lim.throttled),
                between_note(self.between.values()), profiles_note(self.health),
                self.remote.note())
        a = self.cfg.agent
        health = agent_health(delivery, self.health, len(self.cfg.devices), time.time())
        health = health.model_copy(update={"config_version": self.remote.version,
                                           "config_refusal": self.remote.refusal})
        return status(kind, agent=a.id, site=a.site, version=__version__,
                      instance=self.instance, ts=now, reason=reason, health=health)

    def _delivery(self, *, online: bool = False) -> Delivery:
        """What the spool and the uplink say now (``online``: for an online status, which
        closes a period of byte figures and feeds the saturation signal)."""
        up, spool = self.uplink, self.spool
        backlog_bytes = spool.pending_bytes()
        period = None
        if online:
            period = self.health.traffic.period(time.monotonic())
            self.profile_polls.observe_uplink(backlog_bytes, up.connected.is_set())
        stretch = self.profile_polls.stretching
        return Delivery(
            backlog_bytes=backlog_bytes, budget_bytes_per_s=up.budget_bytes_per_s,
            period=period, saturated=stretch.saturated, stretch_factor=stretch.factor,
            profiles_stretched=self.profile_polls.stretched(),
            spool_depth=spool.depth, spool_oldest_created_s=spool.oldest_created(),
            spool_dropped=spool.dropped, quarantined=spool.quarantined,
            corruption=spool.corruption, refused=up.refused,
            refusal=None if up.refusal is None else (up.refusal.topic, up.refusal.code),
            user=up.user, taken_over=up.taken_over)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("agent %s (instance %s) starting: %d device(s), site %s, broker %s:%d",
                 self.cfg.agent.id, self.instance, len(self.cfg.devices), self.cfg.agent.site,
                 self.cfg.mqtt.host, self.cfg.mqtt.port)
        fatal: UplinkFatal | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                self._running = (tg, stop)
                tg.create_task(self.uplink.run(stop), name="uplink")
                tg.create_task(self._wake_on_stop(stop), name="wake-on-stop")
                if self.concurrency.enabled:
                    tg.create_task(probe_lag(self._on_lag, stop), name="loop-lag")
                for dev in self.cfg.devices:
                    self._start_device(dev)
        except* UplinkFatal as group:
            first = first_leaf(group)
            assert isinstance(first, UplinkFatal)
            fatal = first
        finally:
            self._running = None
            self.batcher.flush_all()
            self.poller.close()
            self.spool.close()
            log.info("agent %s stopped", self.cfg.agent.id)
        if fatal is not None:
            raise fatal

    def _start_device(self, dev: DeviceConfig) -> None:
        assert self._running is not None  # only while run() runs
        tg, stop = self._running
        key = device_key(self.cfg, dev)
        self._tasks[key] = tg.create_task(self._device_loop(dev, stop), name=f"poll-{key}")

    def _on_config(self, payload: bytes) -> None:
        """A message on the config topic: applied, ignored or refused (then the agent runs
        on what it ran); the status says which at once."""
        applied = self.remote.receive(payload)
        if applied is not None:
            try:
                self.apply(applied.config)
            except ConfigError as exc:  # a profile file changed since the check: nothing done
                self.remote.refuse("invalid_config", "; ".join(exc.problems))
            except Exception as exc:  # a bug: keep polling on the config that runs
                log.error("remote config: version %d could not be applied: %s: %s",
                          applied.envelope.version, type(exc).__name__, exc, exc_info=exc)
                self.remote.refuse("invalid_config", f"not applied: {type(exc).__name__}")
            else:
                self.remote.commit(applied)
        self.uplink.status_now()

    def apply(self, new: AgentConfig) -> None:
        """Run ``new`` from now on, without a restart: devices added, removed and changed
        (restarted with fresh state); the others keep their schedule and rate state; the
        spool and the connection are untouched (docs/remote-config.md). Raises
        :class:`~xanet.config.ConfigError` (a profile file) before changing anything."""
        changes = device_changes(self.cfg, new)
        fresh = {*changes.added, *changes.changed}
        trackers = {}
        for dev in new.devices:
            key = device_key(new, dev)
            old = None if key in fresh else self._trackers.get(key)
            trackers[key] = old or RateTracker(rate_policy(new, dev))
        polls = profile_polls(new, self.poller, self._profile_reader, self.health,
                              lambda d: (device_key(new, d), trackers[device_key(new, d)]))
        kept_profiles = self.profile_polls.devices
        polls.devices = {**polls.devices, **{k: kept_profiles[k] for k in changes.kept
                                             if k in kept_profiles}}
        for key in (*changes.removed, *changes.changed):
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
            self._forget(key)
        for key, tracker in trackers.items():
            if key not in self._trackers:
                self._trackers[key], self._bridges[key] = tracker, CounterBridges(tracker)
        self.cfg = self.batcher.cfg = new
        self.plans = {device_key(new, d): device_plan(new, d) for d in new.devices}
        r = new.rates
        self._sub_policy = SubPollPolicy(r.counter32_readings, r.counter32_max_readings,
                                         r.counter32_min_interval_s)
        self.profile_polls = polls
        if self._running is not None:
            for dev in new.devices:
                if device_key(new, dev) not in self._tasks:
                    self._start_device(dev)
        log.info("config applied: %d device(s) added, %d removed, %d changed, %d kept "
                 "running", len(changes.added), len(changes.removed), len(changes.changed),
                 len(changes.kept))

    def _forget(self, key: str) -> None:
        """A removed or changed device's state: its next loop starts afresh."""
        for state in (self._trackers, self._bridges, self._addresses, self.between):
            state.pop(key, None)
        self.health.forget(key)

    async def _wake_on_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.naps.stop()

    def _tracker(self, dev: DeviceConfig) -> RateTracker:
        key = device_key(self.cfg, dev)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = RateTracker(rate_policy(self.cfg, dev))
            self._bridges[key] = CounterBridges(tracker)
        return tracker

    async def poll_device(self, dev: DeviceConfig) -> wire.DevicePoll:
        """Poll ``dev`` once now, outside its schedule (diagnostics and tests): what its
        next scheduled poll would publish. Never raises but ``CancelledError``."""
        return await self._poll_once(device_key(self.cfg, dev), dev.id,
                                     dev.site or self.cfg.agent.site, self._tracker(dev))

    async def _device_loop(self, dev: DeviceConfig, stop: asyncio.Event) -> None:
        interval = dev.poll_interval_s or self.cfg.polling.interval_s
        tracker = self._tracker(dev)
        key = device_key(self.cfg, dev)
        phase = phase_of(key, interval, self.cfg.polling.jitter)
        start = time.monotonic()
        previous = -math.inf
        commune = dev.commune or self.cfg.agent.commune
        site = dev.site or self.cfg.agent.site
        skipped = 0  # slots skipped since the device was last polled on time
        while not stop.is_set():
            slot = next_slot(start, interval, phase, previous, time.monotonic())
            if slot.skipped:
                self.health.poll_overruns += slot.skipped
                if not skipped:  # logged when it starts and when it ends, not at every skip
                    log.warning("device %s (site %s): poll overran, %d slot(s) skipped",
                                dev.id, site, slot.skipped)
                skipped += slot.skipped
            elif skipped:
                log.info("device %s (site %s): polled on time again, %d slot(s) skipped "
                         "meanwhile", dev.id, site, skipped)
                skipped = 0
            previous = slot.at
            if await self.naps.sleep(max(0.0, slot.at - time.monotonic())):
                return
            poll = await self._poll_once(key, dev.id, site, tracker)
            self.batcher.add(commune, site, poll)
            if await self._read_between(key, dev.id, site, slot.at):
                return

    async def _read_between(self, key: str, device: str, site: str, start: float) -> bool:
        """Counter32-only ports too fast for the interval: their counters read between this
        poll (slot ``start``) and the next (agent.subpoll). True when stopped meanwhile."""
        bridges = self._bridges[key]
        base = bridges.tracker.previous
        sub = None if base is None else plan_readings(base, bridges.tracker.policy,
                                                          self._sub_policy)
        self._note_between(key, device, site, sub)
        target, address = self.plans[key].target, self._addresses.get(key)
        # (fakes of the SNMP port in tests and benches may not read counters)
        read = getattr(self.poller, "read_counters", None)
        if sub is None or target is None or address is None or read is None:
            return False
        target = dataclasses.replace(target, host=address)
        for k in range(1, sub.readings + 1):
            at = start + k * sub.every_s
            if at < time.monotonic():
                continue  # the poll ran long: not this reading
            if await self.naps.sleep(at - time.monotonic()):
                return True
            mono = time.monotonic()
            try:
                uptime, counters = await read(target, sub.indices)
            except SnmpError:
                bridges.observe_failure()  # this interval's rates as without readings
                continue
            except Exception as exc:  # a bug or a library's surprise: this device only
                self._unexpected(key, device, site, "counter reading failed", exc)
                bridges.observe_failure()
                continue
            bridges.observe(CounterReading(mono, uptime, counters))
        return False

    def _note_between(self, key: str, device: str, site: str, sub: SubPlan | None) -> None:
        """Logs when a device's readings between polls start, change or stop."""
        was = self.between.get(key)
        if sub == was:
            return
        if sub is None:
            self.between.pop(key, None)
            log.info("device %s (site %s): no port needs counter readings between polls "
                     "any more", device, site)
            return
        self.between[key] = sub
        log.log(logging.WARNING if sub.capped else logging.INFO,
                "device %s (site %s): %d Counter32-only port(s) too fast for the poll "
                "interval (a second wrap possible): their counters read %d time(s) between "
                "polls, every %.1f s%s", device, site, len(sub.indices), sub.readings,
                sub.every_s, "; still too slow for the fastest (bounded by [rates] "
                "counter32_max_readings / counter32_min_interval_s): it may stay "
                "counter32_ambiguous" if sub.capped else "")

    async def _poll_once(self, key: str, device: str, site: str,
                         tracker: RateTracker) -> wire.DevicePoll:
        """Poll one device once: never raises (but CancelledError); a failure of any kind
        is this device's DevicePoll with its ``cause`` (docs/snmp.md, "Causes")."""
        if await self.gate.acquire() and self.concurrency.throttled:
            self.health.polls_throttled += 1
        try:
            # Stamped once admitted: waiting for a polling slot is not part of the
            # interval the counters advanced over (it would bias the rate low).
            ts = datetime.now(UTC)
            mono = time.monotonic()
            try:
                poll = await self._witness(key, device, site, ts, mono, tracker)
            except Exception as exc:  # a bug or a value no bound foresaw: this device only
                self._unexpected(key, device, site, "poll could not be built", exc)
                tracker.observe_failure()
                poll = unbuilt_poll(device, ts, exc)
            poll = await self.profile_polls.add(key, device, site, poll, self.plans[key].target,
                                                self._addresses.get(key))
        finally:
            self.gate.release()
        self._note(key, device, site, poll)
        return poll

    async def _witness(self, key: str, device: str, site: str, ts: datetime, mono: float,
                       tracker: RateTracker) -> wire.DevicePoll:
        """Resolve once, then SNMP and ICMP concurrently, then the DevicePoll."""
        plan = self.plans[key]
        try:
            address = await self.resolver.resolve(plan.host, plan.resolve_timeout_s)
            self._addresses[key] = address
        except (OSError, UnicodeError, TimeoutError) as exc:
            tracker.observe_failure()
            return failed_poll(device, ts, SnmpResolveError(
                device, resolve_failure(plan.host, exc)), None)
        target = plan.target
        snmp: Awaitable[RawPoll | SnmpError] | None = None
        if target is not None:
            snmp = self._snmp(key, device, site, dataclasses.replace(target, host=address))
        elif plan.config_error is not None:  # still pinged: the witness does not need SNMP
            snmp = _settled(SnmpConfigError(device, plan.config_error))
        ping = self._ping(key, device, site, address) if plan.ping else None
        if snmp is not None and ping is not None:
            raw, echo = await asyncio.gather(snmp, ping)
        elif snmp is not None:
            raw, echo = await snmp, None
        else:
            assert ping is not None  # config validation: a ping-only device pings
            return ping_only_poll(device, ts, await ping)
        if target is not None and should_recheck(
                raw if isinstance(raw, SnmpError) else None, echo):
            self.health.snmp_rechecks += 1
            again_ts, again_mono = datetime.now(UTC), time.monotonic()
            again = await self._snmp(key, device, site, dataclasses.replace(target, host=address))
            if not isinstance(again, SnmpError):
                raw, ts, mono = again, again_ts, again_mono
        if isinstance(raw, SnmpError):
            tracker.observe_failure()
            return failed_poll(device, ts, raw, echo)
        self.health.contained.update(dict(raw.contained))
        for warning in self.health.record_warnings(key, raw.warnings):
            log.warning("device %s (site %s): %s", device, site, warning)
        return to_device_poll(device, ts, raw, tracker, mono, echo)

    async def _snmp(self, key: str, device: str, site: str,
                    target: SnmpTarget) -> RawPoll | SnmpError:
        try:
            return await self.poller.poll(target)
        except SnmpError as exc:
            return exc
        except Exception as exc:  # not the agent's error tree: a bug or a library's surprise
            self._unexpected(key, device, site, "SNMP poll failed unexpectedly", exc)
            return SnmpProtocolError(target.device, f"{type(exc).__name__}: {exc}")

    def _unexpected(self, key: str, device: str, site: str, what: str,
                    exc: Exception) -> None:
        """Counts an unexpected exception; its traceback is logged once per device (until
        the device polls fine again), not at every poll."""
        self.health.contained["poll_exception"] += 1
        if key in self._traced:
            return
        self._traced.add(key)
        log.error("device %s (site %s): %s: %s: %s", device, site, what,
                  type(exc).__name__, exc, exc_info=exc)

    async def _ping(self, key: str, device: str, site: str,
                    address: str) -> wire.PingResult | None:
        """The ICMP witness; any failure of it leaves ``ping`` absent, never the poll."""
        try:
            result = await self.pinger.ping(address)
        except Exception as exc:  # PingError, or a surprise of the ICMP library
            if not isinstance(exc, PingError):
                self.health.contained["ping_exception"] += 1
            if self.health.record_ping(key, works=False):
                log.warning("device %s (site %s): %s; its polls carry no ping", device, site, exc)
            return None
        if result is not None and self.health.record_ping(key, works=True):
            log.info("device %s (site %s): ICMP echo works again", device, site)
        return result

    def _note(self, key: str, device: str, site: str, poll: wire.DevicePoll) -> None:
        """Counts and logs a device's state changes (not every poll)."""
        if poll.reachable:
            self._traced.discard(key)
        change = self.health.record(key, poll)
        change = self.health.record_first_answer(key, poll, change) or change
        if change is not None:
            log.log(logging.INFO if poll.reachable else logging.WARNING,
                    "device %s (site %s): %s", device, site, change)


async def _settled(exc: SnmpError) -> SnmpError:
    return exc
