"""A device's profiles at each of its polls: the due ones read, rated, and added to its DevicePoll.

The edge between the agent's poll loop (:mod:`agent.app`) and device profiles
(:mod:`agent.profiles`). After a device's poll, inside the same admission to the
concurrency gate, :meth:`ProfilePolls.add` polls the profiles that are due
(:mod:`agent.profiles.due`) through the SNMP port (:class:`ProfileReader`; over the
poller: :mod:`agent.snmp.profilewalk`), rates their counters
(:mod:`agent.profiles.counters`), and returns the poll with ``profiles`` (the wire's
readings, :mod:`agent.profiles.reading`) and ``power`` (:mod:`agent.profiles.power`).

A profile never fails the device's poll: the device's reachability is its interface
poll's. A profile that fails is sent as a reading with ``error`` and ``cause``, counted
(:meth:`agent.telemetry.Health.record_profile`) and logged once when it starts failing
and once when it recovers. Bounded cost: the profiles are read one after the other,
each bounded as any walk (timeouts, retries, ``max_walk_bytes``, rows); after a profile
timed out the others due are not tried in this poll (reported failed, cause
``timeout``). Profiles are polled only after a poll that answered.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from agent.config import AgentConfig, DeviceConfig
from agent.errors import SnmpError, SnmpProtocolError, SnmpTimeout
from agent.profiles.counters import ProfileCounters
from agent.profiles.due import ProfileDue
from agent.profiles.evaluate import ProfileSample, counter_readings
from agent.profiles.load import ProfileError, load_catalog
from agent.profiles.model import Oid, Profile
from agent.profiles.power import power_reading, unknown_power
from agent.profiles.reading import failed_reading, to_reading
from agent.profiles.select import unknown_names
from agent.rates import RatePolicy, RateTracker
from agent.snmp import SnmpPoller, SnmpTarget
from agent.snmp.profilewalk import poll_profile, read_sys_object_id
from agent.stretch import Stretch
from agent.telemetry import Health
from xanet import wire

log = logging.getLogger("xanet.agent")


class ProfileReader(Protocol):
    """The SNMP port profiles are read through (a fake in tests and benches)."""

    async def sys_object_id(self, target: SnmpTarget) -> Oid | None: ...

    async def read(self, target: SnmpTarget, profile: Profile) -> ProfileSample: ...


class SnmpProfileReader:
    """Profiles read through the poller's backends (:mod:`agent.snmp.profilewalk`)."""

    def __init__(self, poller: SnmpPoller) -> None:
        self.poller = poller

    async def sys_object_id(self, target: SnmpTarget) -> Oid | None:
        return await read_sys_object_id(self.poller, target)

    async def read(self, target: SnmpTarget, profile: Profile) -> ProfileSample:
        return await poll_profile(self.poller, target, profile)


class DeviceProfiles:
    """One device's profile state: what is due, its counters' previous readings."""

    def __init__(self, due: ProfileDue, counters: ProfileCounters) -> None:
        self.due = due
        self.counters = counters
        self.sys_object_id_failing = False
        self.dropped_logged = False


class ProfilePolls:
    """The profiles of every device of the agent (keyed by ``site/device``)."""

    def __init__(self, devices: Mapping[str, DeviceProfiles], reader: ProfileReader | None,
                 health: Health, clock: Callable[[], float] = time.monotonic) -> None:
        self.devices = devices
        self.reader = reader
        self.health = health
        self.clock = clock
        self._traced: set[str] = set()  # devices whose unexpected exception was logged
        #: the saturated uplink's stretch of non-critical profiles (agent.stretch)
        self.stretching = Stretch()

    @property
    def stretch(self) -> int:
        return self.stretching.factor

    def stretched(self) -> int:
        """Profiles (per device) whose interval is stretched now."""
        if self.stretching.factor == 1:
            return 0
        return sum(state.due.stretchable() for state in self.devices.values())

    def observe_uplink(self, backlog_bytes: int, connected: bool) -> None:
        """One status interval of the saturation signal; a new stretch is logged once."""
        if not self.stretching.observe(backlog_bytes, connected):
            return
        if self.stretching.factor > 1:
            log.warning("uplink saturated (backlog %d bytes, growing while connected): %d "
                        "profile(s) with stretch_when_saturated polled at x%d their interval",
                        backlog_bytes, self.stretched(), self.stretching.factor)
        else:
            log.info("uplink keeps up again (backlog %d bytes): profiles polled at their "
                     "own interval", backlog_bytes)

    async def add(self, key: str, device: str, site: str, poll: wire.DevicePoll,
                  target: SnmpTarget | None, address: str | None) -> wire.DevicePoll:
        """``poll`` with the readings of the profiles due (``target``: the device's,
        ``address``: where this poll found it). Never raises but ``CancelledError``."""
        state = self.devices.get(key)
        if state is None or self.reader is None:
            return poll
        if not poll.reachable or target is None or address is None:
            state.counters.observe_failure()  # no rate across a failed poll
            return poll
        target = dataclasses.replace(target, host=address)
        surprises = self.health.contained["profile_exception"]
        try:
            readings, power = await self._read(key, device, site, state, self.reader,
                                               target, poll.uptime_cs)
        except Exception as exc:  # a bug or a library's surprise: the poll stands
            self.health.contained["profile_exception"] += 1
            state.counters.observe_failure()
            if key not in self._traced:
                self._traced.add(key)
                log.error("device %s (site %s): profiles could not be polled: %s: %s",
                          device, site, type(exc).__name__, exc, exc_info=exc)
            return poll
        if self.health.contained["profile_exception"] == surprises:
            self._traced.discard(key)  # fine again: a next surprise is logged in full
        if not readings:
            return poll
        return poll.model_copy(update={"profiles": readings, "power": power})

    async def _read(self, key: str, device: str, site: str, state: DeviceProfiles,
                    reader: ProfileReader, target: SnmpTarget, uptime_cs: int | None,
                    ) -> tuple[list[wire.ProfileReading], wire.PowerReading | None]:
        due = state.due
        if due.wants_sys_object_id(uptime_cs):
            await self._read_sys_object_id(device, site, state, reader, target)
        profiles = due.due(self.clock(), self.stretch)
        if due.dropped and not state.dropped_logged:
            state.dropped_logged = True
            log.warning("device %s (site %s): more than %d profiles chosen; not polled: %s",
                        device, site, wire.MAX_PROFILES_PER_POLL, ", ".join(due.dropped))
        readings: list[wire.ProfileReading] = []
        power: wire.PowerReading | None = None
        timed_out: str | None = None
        for profile in profiles:
            mono = self.clock()
            if timed_out is not None:
                failure: SnmpError | None = _NotTried(device, timed_out)
            else:
                try:
                    sample = await reader.read(target, profile)
                    failure = None
                except SnmpError as exc:
                    failure = exc
                except Exception as exc:  # a bug or a library's surprise: this profile only
                    failure = self._unexpected(key, device, site, profile.name, exc)
            if failure is None:
                rates = state.counters.observe(profile.name, due.interval_s(profile), mono,
                                               uptime_cs, counter_readings(sample))
                readings.append(to_reading(sample, rates))
                found = power_reading(profile, sample)
            else:
                timed_out = timed_out or (profile.name if failure.cause == "timeout" else None)
                state.counters.observe_failure(profile.name)
                readings.append(failed_reading(profile.name, failure.cause, str(failure)))
                found = unknown_power(profile)
            self._note(key, device, site, profile.name, failure)
            if power is None or (power.state == "unknown" and found is not None
                                 and found.state != "unknown"):
                power = found or power
        for gone in self.health.profiles_failing.keys() - {(key, p.name) for p in due.chosen()}:
            if gone[0] == key:  # no longer chosen ("auto" after a reboot): no longer failing
                self.health.record_profile(key, gone[1], None)
        return readings, power

    def _unexpected(self, key: str, device: str, site: str, profile: str,
                    exc: Exception) -> SnmpError:
        """Counts an unexpected exception of a profile's poll (its traceback logged once
        per device until its profiles poll fine again): the profile fails, cause
        ``protocol``."""
        self.health.contained["profile_exception"] += 1
        if key not in self._traced:
            self._traced.add(key)
            log.error("device %s (site %s): profile %s could not be polled: %s: %s", device,
                      site, profile, type(exc).__name__, exc, exc_info=exc)
        return SnmpProtocolError(device, f"{type(exc).__name__}: {exc}")

    async def _read_sys_object_id(self, device: str, site: str, state: DeviceProfiles,
                                  reader: ProfileReader, target: SnmpTarget) -> None:
        try:
            state.due.learn_sys_object_id(await reader.sys_object_id(target))
        except SnmpError as exc:
            state.due.forget_sys_object_id()
            if not state.sys_object_id_failing:
                state.sys_object_id_failing = True
                log.warning("device %s (site %s): sysObjectID could not be read (%s): "
                            "\"auto\" keeps its last choice (none before a first read)",
                            device, site, exc)
            return
        if state.sys_object_id_failing:
            state.sys_object_id_failing = False
            log.info("device %s (site %s): sysObjectID read again", device, site)

    def _note(self, key: str, device: str, site: str, profile: str,
              failure: SnmpError | None) -> None:
        """Counts a profile's poll; logs when it starts failing and when it recovers."""
        if not self.health.record_profile(key, profile, None if failure is None
                                          else failure.cause):
            return
        if failure is None:
            log.info("device %s (site %s): profile %s polled again", device, site, profile)
        else:
            log.warning("device %s (site %s): profile %s failed (cause %s): %s; the "
                        "device's poll stands", device, site, profile, failure.cause, failure)


class _NotTried(SnmpTimeout):
    """A profile not tried in this poll: another timed out before it (bounded cost)."""

    def __init__(self, device: str, first: str) -> None:
        super().__init__(device, f"not polled: profile {first} timed out first in this poll")


def device_profiles(requested: list[str], catalog: Mapping[str, Profile],
                    interval_s: float, policy: RatePolicy) -> DeviceProfiles:
    """A device's profile state; :class:`ProfileError` for a name the catalog lacks
    (``xanet check-config`` reports those first)."""
    unknown = unknown_names(requested, catalog)
    if unknown:
        raise ProfileError([f"unknown profile {name!r}" for name in unknown])
    return DeviceProfiles(ProfileDue(requested, catalog, interval_s), ProfileCounters(policy))


def profile_polls(cfg: AgentConfig, poller: object, reader: ProfileReader | None,
                  health: Health,
                  device_of: Callable[[DeviceConfig], tuple[str, RateTracker]]) -> ProfilePolls:
    """The profiles of every device of ``cfg`` that has any (``device_of``: its key and
    interface rate tracker, whose policy its profile counters share). ``reader``: the
    port, by default over ``poller`` when it is the real one (a fake of the poll port in
    tests and benches polls no profile). The catalog is read only when a profile is named."""
    if reader is None and isinstance(poller, SnmpPoller):
        reader = SnmpProfileReader(poller)
    chosen = [(dev, cfg.profiles_of(dev)) for dev in cfg.devices if cfg.profiles_of(dev)]
    catalog = load_catalog(cfg.profiles.dir) if chosen else {}
    states = {}
    for dev, names in chosen:
        key, tracker = device_of(dev)
        states[key] = device_profiles(names, catalog, tracker.policy.poll_interval_s,
                                      tracker.policy)
    return ProfilePolls(states, reader, health)
