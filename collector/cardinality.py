"""The cardinality guard: how many *new* series one agent and one device may create. Pure.

Every interface of a poll is a series in InfluxDB (tags device + ifindex + ifname), every
profile value one (device + profile + metric + unit + its row tags), every device one more.
A series seen before costs nothing. New ones are counted per fixed window of ``window_s``:
a device may bring ``max_new_interfaces_per_device`` new interface series per window and
``max_new_profile_series_per_device`` new profile series, an agent
``max_new_series_per_agent`` (devices, interfaces and profile values). Past a limit,
the new series of that device (or agent) are refused - dead-lettered and counted by the
caller, which alerts on the offender - while its known series, and every other agent and
device, go on as before. A series not seen for ``forget_after_windows`` windows is
forgotten (memory stays bounded; coming back it is new again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xanet import wire

IfKey = tuple[int, str]
#: profile, metric, unit, row tags
ProfileKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class _Device:
    known: dict[IfKey, int] = field(default_factory=dict)  # interface -> last window seen
    new_in_window: int = 0
    seen_window: int = 0
    profile_known: dict[ProfileKey, int] = field(default_factory=dict)
    profile_new_in_window: int = 0


@dataclass(slots=True)
class _Agent:
    devices: dict[str, _Device] = field(default_factory=dict)
    new_in_window: int = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    device: str
    scope: str  # "device", "profile" (the device's profile limit) or "agent": whose limit
    #: the refused part: a poll with the refused interfaces or profile values
    polls: tuple[wire.DevicePoll, ...]
    series: int  # series refused (a new device refused whole: its series and itself)


@dataclass(frozen=True, slots=True)
class Checked:
    message: wire.Telemetry | None  # what may be stored (None: nothing)
    refused: tuple[Refusal, ...] = ()

    @property
    def series_refused(self) -> int:
        return sum(r.series for r in self.refused)


class CardinalityGuard:
    def __init__(self, window_s: float, max_new_interfaces_per_device: int,
                 max_new_series_per_agent: int, forget_after_windows: int = 24,
                 max_new_profile_series_per_device: int = 4096) -> None:
        self.window_s = window_s
        self.per_device = max_new_interfaces_per_device
        self.per_agent = max_new_series_per_agent
        self.profile_per_device = max_new_profile_series_per_device
        self.forget_after = forget_after_windows
        self._agents: dict[str, _Agent] = {}
        self._window = -1

    def _roll(self, now: float) -> int:
        window = int(now // self.window_s)
        if window != self._window:
            self._window = window
            oldest = window - self.forget_after
            for a in self._agents.values():
                a.new_in_window = 0
                for d in a.devices.values():
                    d.new_in_window = 0
                    d.profile_new_in_window = 0
                    d.known = {k: w for k, w in d.known.items() if w > oldest}
                    if d.profile_known:
                        d.profile_known = {k: w for k, w in d.profile_known.items()
                                           if w > oldest}
                for name in [n for n, d in a.devices.items() if d.seen_window <= oldest]:
                    del a.devices[name]
        return window

    def check(self, msg: wire.Telemetry, now: float) -> Checked:
        window = self._roll(now)
        agent = self._agents.setdefault(msg.agent, _Agent())
        kept: list[wire.DevicePoll] = []
        refused: list[Refusal] = []
        for poll in msg.polls:
            dev = agent.devices.get(poll.device)
            if dev is None:
                if agent.new_in_window >= self.per_agent:
                    refused.append(Refusal(poll.device, "agent", (poll,),
                                           len(poll.interfaces) + _n_values(poll) + 1))
                    continue
                agent.new_in_window += 1
                dev = agent.devices[poll.device] = _Device()
            dev.seen_window = window
            ok: list[wire.InterfacePoll] = []
            bad: list[wire.InterfacePoll] = []
            scope = "device"
            for i in poll.interfaces:
                key = (i.index, i.name)
                if key in dev.known:
                    dev.known[key] = window
                    ok.append(i)
                elif dev.new_in_window >= self.per_device:
                    bad.append(i)
                elif agent.new_in_window >= self.per_agent:
                    scope = "agent"
                    bad.append(i)
                else:
                    dev.new_in_window += 1
                    agent.new_in_window += 1
                    dev.known[key] = window
                    ok.append(i)
            if bad:
                kept_poll = poll.model_copy(update={"interfaces": ok})
                refused.append(Refusal(poll.device, scope, (poll.model_copy(
                    update={"interfaces": bad, "profiles": None, "power": None}),), len(bad)))
            else:
                kept_poll = poll
            if poll.profiles:
                kept_poll = self._profiles(kept_poll, poll.profiles, dev, agent, window,
                                           refused)
            kept.append(kept_poll)
        if not refused:
            return Checked(msg)
        out = msg.model_copy(update={"polls": kept}) if kept else None
        return Checked(out, tuple(refused))

    def _profiles(self, poll: wire.DevicePoll, readings: list[wire.ProfileReading],
                  dev: _Device, agent: _Agent, window: int,
                  refused: list[Refusal]) -> wire.DevicePoll:
        """``poll`` with the profile values whose new series are refused left out (those
        added to ``refused`` as a poll of their own)."""
        ok_readings: list[wire.ProfileReading] = []
        bad_readings: list[wire.ProfileReading] = []
        scope = "profile"
        for r in readings:
            ok: list[wire.ProfileValue] = []
            bad: list[wire.ProfileValue] = []
            for v in r.values:
                key = (r.profile, v.metric, v.unit or "",
                       tuple(sorted(v.tags.items())) if v.tags else ())
                if key in dev.profile_known:
                    dev.profile_known[key] = window
                    ok.append(v)
                elif dev.profile_new_in_window >= self.profile_per_device:
                    bad.append(v)
                elif agent.new_in_window >= self.per_agent:
                    scope = "agent"
                    bad.append(v)
                else:
                    dev.profile_new_in_window += 1
                    agent.new_in_window += 1
                    dev.profile_known[key] = window
                    ok.append(v)
            if bad:
                ok_readings.append(r.model_copy(update={"values": ok}))
                bad_readings.append(r.model_copy(update={
                    "values": bad, "warnings": None, "error": None, "cause": None}))
            else:
                ok_readings.append(r)
        if not bad_readings:
            return poll
        refused.append(Refusal(poll.device, scope, (poll.model_copy(update={
            "interfaces": [], "power": None, "profiles": bad_readings}),),
            sum(len(r.values) for r in bad_readings)))
        return poll.model_copy(update={"profiles": ok_readings})


def _n_values(poll: wire.DevicePoll) -> int:
    return sum(len(r.values) for r in poll.profiles) if poll.profiles else 0
