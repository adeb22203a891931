"""The agent program: poll devices on their schedules, compute rates, spool, publish.

Wiring only; the decisions live in :mod:`agent.schedule`, :mod:`agent.rates`
and :mod:`xanet.wire`, the I/O in :mod:`agent.snmp`, :mod:`agent.spool` and
:mod:`agent.uplink`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from agent.concurrency import AdmissionLimit
from agent.config import AgentConfig, DeviceConfig, credentials_from
from agent.errors import (
    SnmpConfigError,
    SnmpError,
    SnmpProtocolError,
    SnmpResolveError,
    SpoolError,
    UplinkFatal,
)
from agent.gate import Gate, Naps, probe_lag
from agent.instance import instance_id
from agent.packing import Piece, encode, envelope_bytes, pack
from agent.ping import IcmpPinger, Pinger, PingError, PingPolicy
from agent.rates import DeviceSample, IfCounters, RatePolicy, RateTracker
from agent.resolver import Resolver, SystemResolver
from agent.schedule import next_slot, phase_of
from agent.snmp import RawPoll, SnmpPoller, SnmpTarget
from agent.spool import Spool
from agent.uplink import StatusKind, Uplink, first_leaf, packet_bytes
from xanet import topics, wire
from xanet.config import SecretError

log = logging.getLogger("xanet.agent")

__version__ = "0.1.0"


def device_key(agent_cfg: AgentConfig, dev: DeviceConfig) -> str:
    """``site/device``: unique within an agent (device ids are unique per site)."""
    return f"{dev.site or agent_cfg.agent.site}/{dev.id}"


def snmp_target(agent_cfg: AgentConfig, dev: DeviceConfig) -> SnmpTarget:
    """The device's SNMP target; raises ``ValueError``/``SecretError`` when its credentials
    cannot be used (the device then fails every poll with cause ``config``)."""
    creds_cfg = dev.snmp if dev.snmp is not None else agent_cfg.snmp
    assert creds_cfg is not None and creds_cfg is not False  # AgentConfig validation
    creds = credentials_from(creds_cfg)
    poll = agent_cfg.polling
    return SnmpTarget(
        device=device_key(agent_cfg, dev),
        host=dev.host,
        port=dev.port,
        credentials=creds,
        timeout_s=dev.timeout_s or poll.timeout_s,
        retries=dev.retries if dev.retries is not None else poll.retries,
        max_repetitions=poll.max_repetitions,
        max_rows=dev.max_interfaces or poll.max_interfaces,
        max_walk_bytes=poll.max_walk_bytes,
        backend=creds_cfg.backend,
    )


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """How one device is polled: its SNMP target (None: ping-only, or unusable config)."""

    host: str
    target: SnmpTarget | None
    ping: bool
    config_error: str | None = None  # why the SNMP target cannot be built
    #: the bound on the name look-up: the SNMP exchange's own worst case
    resolve_timeout_s: float = 2.0


def device_plan(agent_cfg: AgentConfig, dev: DeviceConfig) -> DevicePlan:
    pings = agent_cfg.pings(dev)
    poll = agent_cfg.polling
    retries = dev.retries if dev.retries is not None else poll.retries
    timeout_s = (dev.timeout_s or poll.timeout_s) * (retries + 1)
    if dev.snmp is False:
        return DevicePlan(dev.host, None, pings, resolve_timeout_s=timeout_s)
    try:
        target = snmp_target(agent_cfg, dev)
    except (ValueError, SecretError) as exc:
        return DevicePlan(dev.host, None, pings, config_error=str(exc),
                          resolve_timeout_s=timeout_s)
    return DevicePlan(dev.host, target, pings, resolve_timeout_s=timeout_s)


def to_device_poll(
    device: str, ts: datetime, raw: RawPoll, tracker: RateTracker, mono_s: float,
    ping: wire.PingResult | None = None,
) -> wire.DevicePoll:
    """Pure: a successful SNMP poll + rate state → the wire's DevicePoll."""
    sample = DeviceSample(
        mono_s=mono_s,
        sys_uptime_cs=raw.sys_uptime_cs,
        interfaces={
            i.index: IfCounters(
                index=i.index, name=i.name, in_octets=i.in_octets, out_octets=i.out_octets,
                hc=i.hc, speed_bps=i.speed_bps, discontinuity_cs=i.discontinuity_cs,
            )
            for i in raw.interfaces
        },
    )
    rates = tracker.observe(sample)
    interfaces = []
    for i in raw.interfaces:
        r = rates.get(i.index)
        note = None
        if r is not None and (r.in_reason is not None or r.out_reason is not None):
            reasons = {x.value for x in (r.in_reason, r.out_reason) if x is not None}
            note = ",".join(sorted(reasons))
        interfaces.append(
            wire.InterfacePoll(
                index=i.index, name=i.name, oper=_enum_or_none(i.oper_status, 7),
                admin=_enum_or_none(i.admin_status, 3), speed_bps=i.speed_bps, hc=i.hc,
                in_octets=i.in_octets, out_octets=i.out_octets,
                in_bps=r.in_bps if r else None, out_bps=r.out_bps if r else None,
                in_util_pct=r.in_util_pct if r else None,
                out_util_pct=r.out_util_pct if r else None,
                rate_note=note,
            )
        )
    return wire.DevicePoll(
        device=device, ts=ts, reachable=True, rtt_ms=round(raw.rtt_s * 1000, 3),
        uptime_cs=raw.sys_uptime_cs, interfaces=interfaces, ping=ping,
    )


def ping_only_poll(device: str, ts: datetime, ping: wire.PingResult | None) -> wire.DevicePoll:
    """Pure: a ping-only device's poll. Reachable when an echo came back; else ``timeout``
    (no answer), or ``config`` when this agent could not ping it at all (``ping`` None)."""
    if ping is None:
        return wire.DevicePoll(device=device, ts=ts, reachable=False, cause="config",
                               error="ICMP echo unavailable or not sendable on this agent "
                                     "(the agent's log says why)")
    if ping.received:
        return wire.DevicePoll(device=device, ts=ts, reachable=True, rtt_ms=ping.rtt_ms,
                               ping=ping)
    return wire.DevicePoll(device=device, ts=ts, reachable=False, cause="timeout",
                           error=f"no ICMP echo reply ({ping.sent} sent)", ping=ping)


def _enum_or_none(value: int | None, top: int) -> int | None:
    return value if value is not None and 1 <= value <= top else None


class Poller(Protocol):
    """The SNMP port: :class:`agent.snmp.SnmpPoller`, or a fake in tests and benches."""

    async def poll(self, target: SnmpTarget) -> RawPoll: ...

    def close(self) -> None: ...


@dataclass
class Health:
    poll_overruns: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    #: polls that waited for admission while the lag limit was below max_concurrent
    polls_throttled: int = 0
    #: device key -> the cause of its last poll's failure (absent: its last poll was fine)
    failing: dict[str, wire.PollCause] = field(default_factory=dict)
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: per-device faults contained by a bound, by reason (docs/counters.md, "Contained")
    contained: collections.Counter[str] = field(default_factory=collections.Counter)
    #: devices whose ping failed (logged once each until it works again)
    ping_failing: set[str] = field(default_factory=set)
    #: SNMP polls asked again because SNMP timed out while the host answered ICMP
    snmp_rechecks: int = 0

    @property
    def monitoring_errors(self) -> int:
        """Devices whose last poll failed for a cause other than ``timeout``."""
        return sum(1 for cause in self.failing.values() if cause != "timeout")
    #: polls that could not be stored (disk full, I/O error), and the last reason
    polls_dropped: int = 0
    spool_error: str | None = None


class Batcher:
    """Groups device polls per (commune, site) into telemetry messages in the spool."""

    def __init__(self, cfg: AgentConfig, spool: Spool, on_stored: Callable[[], None], *,
                 health: Health | None = None, instance: str | None = None,
                 broker_limit: Callable[[], int | None] = lambda: None) -> None:
        self.cfg = cfg
        self.spool = spool
        self.on_stored = on_stored
        self.health = health or Health()
        self.instance = instance
        self.broker_limit = broker_limit  # the broker's Maximum Packet Size, when known
        self.pending: dict[tuple[str, str], list[wire.DevicePoll]] = {}
        self.flushers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.messages_split = 0  # flushes that needed more than one message

    def limit_bytes(self, topic: str) -> int:
        """The largest payload: the core's limit, and the broker's once it announced one."""
        limit = self.cfg.batch.max_payload_bytes
        broker = self.broker_limit()
        if broker is not None:
            limit = min(limit, broker - (packet_bytes(topic, b"", v5=True) + 3))
        return limit

    def add(self, commune: str, site: str, poll: wire.DevicePoll) -> None:
        key = (commune, site)
        polls = self.pending.setdefault(key, [])
        polls.append(poll)
        if len(polls) >= self.cfg.batch.max_polls:
            self.flush(key)
        elif key not in self.flushers:
            loop = asyncio.get_running_loop()
            self.flushers[key] = loop.call_later(self.cfg.batch.linger_s, self.flush, key)

    def flush(self, key: tuple[str, str]) -> None:
        handle = self.flushers.pop(key, None)
        if handle:
            handle.cancel()
        polls = self.pending.pop(key, [])
        if not polls:
            return
        commune, site = key
        a = self.cfg.agent
        topic = topics.build(a.province, commune, site, "telemetry")
        groups = pack(polls, limit_bytes=self.limit_bytes(topic),
                      max_polls=self.cfg.batch.max_polls,
                      envelope=envelope_bytes(a.id, site, self.instance))
        if len(groups) > 1:
            self.messages_split += 1
        for group in groups:
            self._store(topic, site, group)
        self.on_stored()

    def _store(self, topic: str, site: str, group: list[Piece]) -> None:
        a = self.cfg.agent
        fragments = [data for _, data in group]

        def payload(seq: int) -> bytes:
            return encode(a.id, site, self.instance, seq, fragments)

        h = self.health
        try:
            self.spool.put(topic, payload, time.time())
        except SpoolError as exc:
            h.polls_dropped += len({(p.device, p.ts) for p, _ in group})  # parts: one poll
            if h.spool_error is None:  # logged when it starts and when it ends
                log.error("site %s: %s: polls are dropped (counted) until the spool can "
                          "store again", site, exc)
            h.spool_error = str(exc)
            return
        if h.spool_error is not None:
            log.info("site %s: spool %s stores again; %d poll(s) dropped in all", site,
                     self.spool.path, h.polls_dropped)
            h.spool_error = None

    def flush_all(self) -> None:
        for key in list(self.pending):
            self.flush(key)


class Agent:
    def __init__(self, cfg: AgentConfig, *, poller: Poller | None = None,
                 pinger: Pinger | None = None, resolver: Resolver | None = None) -> None:
        self.cfg = cfg
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
            status_interval_s=a.status_interval_s,
        )
        self.batcher = Batcher(cfg, self.spool, self.uplink.notify, health=self.health,
                               instance=self.instance,
                               broker_limit=lambda: self.uplink.max_packet_size)
        self.plans = {device_key(cfg, d): device_plan(cfg, d) for d in cfg.devices}
        self._trackers: dict[str, RateTracker] = {}
        self._traced: set[str] = set()  # devices whose unexpected exception was logged
        p = cfg.polling
        self.admission = AdmissionLimit(ceiling=p.max_concurrent, max_lag_s=p.max_loop_lag_s,
                                        floor=p.min_concurrent)
        self.gate = Gate(p.max_concurrent)
        self.naps = Naps()
        self._throttled_reported = 0
        self._lag_peak_s = 0.0  # the worst loop lag since the previous status

    def _on_lag(self, lag_s: float) -> None:
        self._lag_peak_s = max(self._lag_peak_s, lag_s)
        before = self.admission.limit
        limit = self.admission.observe(lag_s)
        if limit == before:
            return
        self.gate.resize(limit)
        if limit < before and before == self.admission.ceiling:
            log.warning("event loop lag %.3fs > %.3fs: admitting at most %d poll(s) at a time "
                        "(of %d) so the uplink keeps up", lag_s, self.admission.max_lag_s,
                        limit, self.admission.ceiling)
        elif limit == self.admission.ceiling:
            log.info("event loop lag back under %.3fs: admitting %d polls at a time again "
                     "(%d poll(s) waited for admission meanwhile)", self.admission.max_lag_s,
                     limit, self.health.polls_throttled)

    def _overload_note(self) -> str | None:
        """For the online status: whether polls were throttled since the previous status."""
        throttled = self.health.polls_throttled
        recent = throttled - self._throttled_reported
        lag_peak_s, self._lag_peak_s = self._lag_peak_s, 0.0
        self._throttled_reported = throttled
        if not recent and not self.admission.throttled:
            return None
        return (f"overloaded: {self.admission.limit}/{self.admission.ceiling} polls admitted "
                f"at a time; since the last status: {recent} poll(s) throttled, event loop "
                f"lag up to {lag_peak_s:.2f}s")

    def status(self, kind: StatusKind) -> wire.Status:
        oldest = self.spool.oldest_created()
        a = self.cfg.agent
        return wire.Status(
            agent=a.id,
            site=a.site,
            state="online" if kind == "online" else "offline",
            ts=None if kind == "will" else datetime.now(UTC),
            reason={"online": self._online_reason() if kind == "online" else None,
                    "will": "connection lost (last will)", "stopped": "agent stopped"}[kind],
            version=__version__,
            instance=self.instance,
            health=wire.AgentHealth(
                spool_depth=self.spool.depth,
                spool_oldest_age_s=max(0.0, time.time() - oldest) if oldest else None,
                spool_dropped=self.spool.dropped,
                poll_overruns=self.health.poll_overruns,
                devices=len(self.cfg.devices),
                monitoring_errors=self.health.monitoring_errors,
                refused=self.uplink.refused,
                quarantined=self.spool.quarantined,
                polls_dropped=self.health.polls_dropped,
            ),
        )

    def _online_reason(self) -> str | None:
        """What is wrong with delivery right now (and overload), for the online status."""
        notes = [n for n in (self._delivery_note(), self._overload_note()) if n]
        return "; ".join(notes)[:256] if notes else None

    def _delivery_note(self) -> str | None:
        up, notes = self.uplink, []
        if up.refusal is not None:
            notes.append(f"refused: broker refuses {up.refusal.topic} for user {up.user} "
                         f"(reason code {up.refusal.code}), {up.refused} message(s) kept")
        if self.spool.quarantined:
            notes.append(f"quarantined: {self.spool.quarantined} message(s) too large "
                         "for the broker")
        if self.health.spool_error is not None:
            notes.append(f"polls dropped: {self.health.polls_dropped} ({self.health.spool_error})")
        if self.spool.corruption is not None:
            notes.append(self.spool.corruption)
        if up.taken_over:
            notes.append(f"session taken over {up.taken_over} time(s): a second agent with "
                         f"user {up.user}?")
        return "; ".join(notes) if notes else None

    async def run(self, stop: asyncio.Event) -> None:
        log.info("agent %s (instance %s) starting: %d device(s), site %s, broker %s:%d",
                 self.cfg.agent.id, self.instance, len(self.cfg.devices), self.cfg.agent.site,
                 self.cfg.mqtt.host, self.cfg.mqtt.port)
        fatal: UplinkFatal | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.uplink.run(stop), name="uplink")
                tg.create_task(self._wake_on_stop(stop), name="wake-on-stop")
                if self.admission.enabled:
                    tg.create_task(probe_lag(self._on_lag, stop), name="loop-lag")
                for dev in self.cfg.devices:
                    tg.create_task(self._device_loop(dev, stop),
                                   name=f"poll-{device_key(self.cfg, dev)}")
        except* UplinkFatal as group:
            first = first_leaf(group)
            assert isinstance(first, UplinkFatal)
            fatal = first
        finally:
            self.batcher.flush_all()
            self.poller.close()
            self.spool.close()
            log.info("agent %s stopped", self.cfg.agent.id)
        if fatal is not None:
            raise fatal

    async def _wake_on_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.naps.stop()

    def _tracker(self, dev: DeviceConfig) -> RateTracker:
        key = device_key(self.cfg, dev)
        tracker = self._trackers.get(key)
        if tracker is None:
            policy = RatePolicy(poll_interval_s=dev.poll_interval_s or self.cfg.polling.interval_s,
                                max_gap_factor=self.cfg.rates.max_gap_factor,
                                speed_tolerance=self.cfg.rates.speed_tolerance)
            tracker = self._trackers[key] = RateTracker(policy)
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

    async def _poll_once(self, key: str, device: str, site: str,
                         tracker: RateTracker) -> wire.DevicePoll:
        """Poll one device once: never raises (but CancelledError); a failure of any kind
        is this device's DevicePoll with its ``cause`` (docs/snmp.md, "Causes")."""
        if await self.gate.acquire() and self.admission.throttled:
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
                poll = wire.DevicePoll(
                    device=device, ts=ts, reachable=False, cause="protocol",
                    error=f"poll could not be built: {type(exc).__name__}: {exc}"[:256])
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
        except (OSError, UnicodeError, TimeoutError) as exc:
            tracker.observe_failure()
            why = "look-up timed out" if isinstance(exc, TimeoutError) else str(exc)
            return _failed(device, ts, SnmpResolveError(
                device, f"cannot resolve {plan.host!r}: {why}"), None)
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
        if (isinstance(raw, SnmpError) and raw.cause == "timeout" and target is not None
                and echo is not None and echo.received > 0):
            # SNMP silent while the host answers ICMP reads as a monitoring fault
            # (snmp_silent), so it must hold once the echo is known to come back: at the
            # end of a cut the SNMP request may have left while the path was still down
            # and the echo after it came back. Ask once more (docs/availability.md).
            self.health.snmp_rechecks += 1
            again_ts, again_mono = datetime.now(UTC), time.monotonic()
            again = await self._snmp(key, device, site, dataclasses.replace(target, host=address))
            if not isinstance(again, SnmpError):
                raw, ts, mono = again, again_ts, again_mono
        if isinstance(raw, SnmpError):
            tracker.observe_failure()
            return _failed(device, ts, raw, echo)
        self.health.contained.update(dict(raw.contained))
        if raw.warnings != self.health.warnings.get(key, ()):
            for warning in raw.warnings:  # logged when they change, not at every poll
                log.warning("device %s (site %s): %s", device, site, warning)
            self.health.warnings[key] = raw.warnings
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
            if key not in self.health.ping_failing:
                self.health.ping_failing.add(key)
                log.warning("device %s (site %s): %s; its polls carry no ping", device, site, exc)
            return None
        if result is not None and key in self.health.ping_failing:
            self.health.ping_failing.discard(key)
            log.info("device %s (site %s): ICMP echo works again", device, site)
        return result

    def _note(self, key: str, device: str, site: str, poll: wire.DevicePoll) -> None:
        """Counts and logs a device's state changes (not every poll)."""
        if poll.reachable:
            self.health.polls_ok += 1
            self._traced.discard(key)
            was = self.health.failing.pop(key, None)
            if was is not None:
                log.info("device %s (site %s): polled again (was failing: %s)", device, site, was)
            return
        self.health.polls_failed += 1
        cause = poll.cause or "protocol"
        if cause == "limit":
            self.health.contained["poll_limit"] += 1
        if self.health.failing.get(key) != cause:
            self.health.failing[key] = cause
            if cause == "timeout":
                seen = ("ping answers" if poll.ping and poll.ping.received else
                        "no ping answer" if poll.ping else "no ping")
                log.warning("device %s (site %s): unreachable (%s): %s",
                            device, site, seen, poll.error)
            else:
                log.warning("device %s (site %s): monitoring error, cause %s: %s",
                            device, site, cause, poll.error)


async def _settled(exc: SnmpError) -> SnmpError:
    return exc


def _failed(device: str, ts: datetime, exc: SnmpError,
            ping: wire.PingResult | None) -> wire.DevicePoll:
    """Pure: a failed poll with its cause and the human text (bounded as the wire wants)."""
    return wire.DevicePoll(device=device, ts=ts, reachable=False, cause=exc.cause,
                           error=str(exc)[:256], ping=ping)
