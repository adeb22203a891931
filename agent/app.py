"""The agent program: poll devices on their schedules, compute rates, spool, publish.

Wiring only; the decisions live in :mod:`agent.schedule`, :mod:`agent.rates`
and :mod:`xanet.wire`, the I/O in :mod:`agent.snmp`, :mod:`agent.spool` and
:mod:`agent.uplink`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from agent.admission import AdmissionLimit
from agent.config import AgentConfig, DeviceConfig, SnmpV2cConfig, SnmpV3Config
from agent.errors import SnmpError, SpoolError, UplinkFatal
from agent.gate import Gate, Naps, probe_lag
from agent.instance import instance_id
from agent.packing import Piece, encode, envelope_bytes, pack
from agent.rates import DeviceSample, IfCounters, RatePolicy, RateTracker
from agent.schedule import next_slot, phase_of
from agent.snmp import RawPoll, SnmpPoller, SnmpTarget, SnmpV2c, SnmpV3
from agent.spool import Spool
from agent.uplink import StatusKind, Uplink, first_leaf, packet_bytes
from xanet import topics, wire

log = logging.getLogger("xanet.agent")

__version__ = "0.1.0"


def device_key(agent_cfg: AgentConfig, dev: DeviceConfig) -> str:
    """``site/device``: unique within an agent (device ids are unique per site)."""
    return f"{dev.site or agent_cfg.agent.site}/{dev.id}"


def snmp_target(agent_cfg: AgentConfig, dev: DeviceConfig) -> SnmpTarget:
    creds_cfg = dev.snmp or agent_cfg.snmp
    assert creds_cfg is not None  # AgentConfig validation guarantees it
    creds: SnmpV2c | SnmpV3
    if isinstance(creds_cfg, SnmpV2cConfig):
        creds = SnmpV2c(community=creds_cfg.community.reveal())
    else:
        assert isinstance(creds_cfg, SnmpV3Config)
        creds = SnmpV3(
            user=creds_cfg.user,
            auth_key=creds_cfg.auth_key.reveal(),
            priv_key=creds_cfg.priv_key.reveal() if creds_cfg.priv_key else None,
            auth_protocol=creds_cfg.auth_protocol,
            priv_protocol=creds_cfg.priv_protocol if creds_cfg.priv_key else None,
        )
    poll = agent_cfg.polling
    return SnmpTarget(
        device=device_key(agent_cfg, dev),
        host=dev.host,
        port=dev.port,
        credentials=creds,
        timeout_s=dev.timeout_s or poll.timeout_s,
        retries=dev.retries if dev.retries is not None else poll.retries,
        max_repetitions=poll.max_repetitions,
    )


def to_device_poll(
    device: str, ts: datetime, raw: RawPoll, tracker: RateTracker, mono_s: float
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
        uptime_cs=raw.sys_uptime_cs, interfaces=interfaces,
    )


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
    unreachable: set[str] = field(default_factory=set)
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)
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
    def __init__(self, cfg: AgentConfig, *, poller: Poller | None = None) -> None:
        self.cfg = cfg
        self.poller: Poller = poller or SnmpPoller()
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
        self.targets = {device_key(cfg, d): snmp_target(cfg, d) for d in cfg.devices}
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

    async def _device_loop(self, dev: DeviceConfig, stop: asyncio.Event) -> None:
        interval = dev.poll_interval_s or self.cfg.polling.interval_s
        policy = RatePolicy(poll_interval_s=interval,
                            max_gap_factor=self.cfg.rates.max_gap_factor,
                            speed_tolerance=self.cfg.rates.speed_tolerance)
        tracker = RateTracker(policy)
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
        if await self.gate.acquire() and self.admission.throttled:
            self.health.polls_throttled += 1
        try:
            # Stamped once admitted: waiting for a polling slot is not part of the
            # interval the counters advanced over (it would bias the rate low).
            ts = datetime.now(UTC)
            mono = time.monotonic()
            raw = await self.poller.poll(self.targets[key])
        except SnmpError as exc:
            tracker.observe_failure()
            self.health.polls_failed += 1
            if key not in self.health.unreachable:
                self.health.unreachable.add(key)
                log.warning("device %s (site %s): unreachable: %s", device, site, exc)
            return wire.DevicePoll(device=device, ts=ts, reachable=False, error=str(exc)[:256])
        finally:
            self.gate.release()
        self.health.polls_ok += 1
        if key in self.health.unreachable:
            self.health.unreachable.discard(key)
            log.info("device %s (site %s): reachable again", device, site)
        if raw.warnings != self.health.warnings.get(key, ()):
            for warning in raw.warnings:  # logged when they change, not at every poll
                log.warning("device %s (site %s): %s", device, site, warning)
            self.health.warnings[key] = raw.warnings
        return to_device_poll(device, ts, raw, tracker, mono)
