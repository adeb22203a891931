"""``xanet agent test``: each device polled once and one test message sent, as the agent would.

The technician's tool on site (docs/install-agent.md, "Test on site"). It reads the
config as ``xanet agent`` does and goes through the agent's own parts: the device's poll
plan (:func:`agent.app.device_plan`), the resolver, the SNMP poller
(:mod:`agent.snmp.poller`; plus one GET of sysName/sysDescr through its ``get``), the
ICMP pinger when the device has the witness, the device's profiles
(:mod:`agent.profilepoll`), and the wire's DevicePoll (:mod:`agent.telemetry`). Then
one test message to the broker (:mod:`agent.brokerprobe`). The spool is not opened. What
it found is judged and printed by :mod:`agent.fieldreport`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from datetime import UTC, datetime

from agent import fieldreport
from agent.brokerprobe import probe_broker
from agent.config import AgentConfig, DeviceConfig
from agent.deviceplan import device_key, device_plan
from agent.errors import SnmpConfigError, SnmpError, SnmpProtocolError, SnmpResolveError
from agent.fieldreport import BrokerResult, DeviceResult
from agent.ping import IcmpPinger, Pinger, PingError, PingPolicy
from agent.profilepoll import ProfilePolls, profile_polls
from agent.rates import RatePolicy, RateTracker
from agent.resolver import Resolver, SystemResolver
from agent.snmp import RawPoll, SnmpPoller, SnmpTarget
from agent.snmp.poller import get
from agent.telemetry import (
    Health,
    failed_poll,
    ping_only_poll,
    resolve_failure,
    should_recheck,
    to_device_poll,
    unbuilt_poll,
)
from xanet import wire

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)


class NoSuchDevice(ValueError):
    """``--device`` names no device of the config."""


def chosen_devices(cfg: AgentConfig, wanted: str | None) -> list[DeviceConfig]:
    """Every device, or the one ``wanted`` names (its id, or ``site/id``)."""
    if wanted is None:
        return list(cfg.devices)
    found = [d for d in cfg.devices if wanted in (d.id, device_key(cfg, d))]
    if not found:
        known = ", ".join(device_key(cfg, d) for d in cfg.devices) or "none"
        raise NoSuchDevice(f"no device {wanted!r} in this config (devices: {known})")
    return found


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip() or None
    return None


class FieldTest:
    """One run of the tool over ``cfg`` (the ports replaceable, as in the agent)."""

    def __init__(self, cfg: AgentConfig, *, poller: SnmpPoller | None = None,
                 pinger: Pinger | None = None, resolver: Resolver | None = None) -> None:
        self.cfg = cfg
        self.poller = poller or SnmpPoller()
        i = cfg.icmp
        self.pinger = pinger or IcmpPinger(PingPolicy(count=i.count, interval_s=i.interval_s,
                                                      timeout_s=i.timeout_s))
        self.resolver = resolver or SystemResolver()
        self.health = Health()
        self._trackers: dict[str, RateTracker] = {}
        self.profiles: ProfilePolls = profile_polls(cfg, self.poller, None, self.health,
                                                    self._tracker)

    def _tracker(self, dev: DeviceConfig) -> tuple[str, RateTracker]:
        key = device_key(self.cfg, dev)
        policy = RatePolicy(poll_interval_s=dev.poll_interval_s or self.cfg.polling.interval_s,
                            max_gap_factor=self.cfg.rates.max_gap_factor,
                            speed_tolerance=self.cfg.rates.speed_tolerance)
        tracker = self._trackers.setdefault(key, RateTracker(policy))
        return key, tracker

    def close(self) -> None:
        self.poller.close()

    async def device(self, dev: DeviceConfig) -> DeviceResult:
        """Poll ``dev`` once, as its next scheduled poll would."""
        key, tracker = self._tracker(dev)
        site = dev.site or self.cfg.agent.site
        plan = device_plan(self.cfg, dev)
        creds = dev.snmp if dev.snmp is not None else self.cfg.snmp
        snmp = creds.version if creds else None  # (False: ping-only)
        ts = datetime.now(UTC)
        base = DeviceResult(device=dev.id, site=site, host=dev.host, port=dev.port, snmp=snmp,
                            pinged=plan.ping, poll=ping_only_poll(dev.id, ts, None))
        try:
            address = await self.resolver.resolve(plan.host, plan.resolve_timeout_s)
        except (OSError, UnicodeError, TimeoutError) as exc:
            err = SnmpResolveError(dev.id, resolve_failure(plan.host, exc))
            return dataclasses.replace(base, poll=failed_poll(dev.id, ts, err, None))
        ping_error: list[str] = []
        outcome: RawPoll | SnmpError | None = None
        snmp_task = None
        target = plan.target
        if target is not None:
            target = dataclasses.replace(target, host=address)
            snmp_task = self._snmp(target)
        elif plan.config_error is not None:
            outcome = SnmpConfigError(dev.id, plan.config_error)
        mono = time.monotonic()
        ping = self._ping(address, ping_error) if plan.ping else None
        echo: wire.PingResult | None = None
        if snmp_task is not None and ping is not None:
            outcome, echo = await asyncio.gather(snmp_task, ping)
        elif snmp_task is not None:
            outcome = await snmp_task
        elif ping is not None:
            echo = await ping
        if target is not None and should_recheck(
                outcome if isinstance(outcome, SnmpError) else None, echo):
            outcome = await self._snmp(target)  # silent while ICMP answers: as the agent does
        base = dataclasses.replace(base, ping_error=ping_error[0] if ping_error else None)
        if outcome is None:
            return dataclasses.replace(base, poll=ping_only_poll(dev.id, ts, echo))
        if isinstance(outcome, SnmpError):
            return dataclasses.replace(base, poll=failed_poll(dev.id, ts, outcome, echo))
        poll = to_device_poll(dev.id, ts, outcome, tracker, mono, echo)
        poll = await self.profiles.add(key, dev.id, site, poll, plan.target, address)
        assert target is not None  # a RawPoll came from it
        name, descr, system_error = await self._system(target)
        return dataclasses.replace(base, poll=poll, sys_name=name, sys_descr=descr,
                                   system_error=system_error, warnings=outcome.warnings)

    async def _snmp(self, target: SnmpTarget) -> RawPoll | SnmpError:
        try:
            return await self.poller.poll(target)
        except SnmpError as exc:
            return exc
        except Exception as exc:  # a bug or a library's surprise: this device's failure
            return SnmpProtocolError(target.device, f"{type(exc).__name__}: {exc}")

    async def _ping(self, address: str, error: list[str]) -> wire.PingResult | None:
        try:
            return await self.pinger.ping(address)
        except Exception as exc:  # PingError, or a surprise of the ICMP library
            error.append(str(exc) if isinstance(exc, PingError)
                         else f"{type(exc).__name__}: {exc}")
            return None

    async def _system(self, target: SnmpTarget) -> tuple[str | None, str | None, str | None]:
        """sysName and sysDescr by one GET (None, None, why: not readable)."""
        try:
            var_binds = await get(self.poller.backend(target), target, (SYS_NAME, SYS_DESCR),
                                  "GET sysName/sysDescr")
        except SnmpError as exc:
            return None, None, f"{exc.cause}: {exc.message}"
        values = {oid: value for oid, _tag, value in var_binds}
        return _text(values.get(SYS_NAME)), _text(values.get(SYS_DESCR)), None


async def run_test(cfg: AgentConfig, devices: list[DeviceConfig], *, broker: bool = True,
                   ) -> tuple[list[DeviceResult], BrokerResult | None]:
    """Every device of ``devices`` polled, at most ``polling.max_concurrent`` at a time
    (the results in the config's order), then the broker."""
    tool = FieldTest(cfg)
    gate = asyncio.Semaphore(cfg.polling.max_concurrent)

    async def one(dev: DeviceConfig) -> DeviceResult:
        async with gate:
            try:
                return await tool.device(dev)
            except Exception as exc:  # a bug or a value no bound foresaw: this device only
                return DeviceResult(device=dev.id, site=dev.site or cfg.agent.site,
                                    host=dev.host, port=dev.port, snmp=None,
                                    poll=unbuilt_poll(dev.id, datetime.now(UTC), exc))

    try:
        results = list(await asyncio.gather(*(one(dev) for dev in devices)))
    finally:
        tool.close()
    return results, await probe_broker(cfg) if broker else None


def run(args: argparse.Namespace) -> int:
    """``xanet agent test``: 0 all good, 1 a device or the broker failed, 2 a bad config
    (its lines on stderr, as ``xanet check-config`` prints them)."""
    from agent.config import check_agent
    from xanet.config import load_checked

    cfg = load_checked(args.config, AgentConfig, check_agent)  # ConfigError: exit 2
    try:
        devices = chosen_devices(cfg, args.device)
    except NoSuchDevice as exc:
        print(f"xanet agent test: {exc}", file=sys.stderr)
        return 2
    results, broker = asyncio.run(run_test(cfg, devices, broker=not args.no_broker))
    if args.json:
        print(json.dumps(fieldreport.as_json(results, broker), ensure_ascii=False, indent=2))
    else:
        print(fieldreport.text(results, broker), end="")
    return fieldreport.exit_code(results, broker)
