"""Which of a device's profiles are polled at one of its polls; when sysObjectID is read. Pure.

There is one scheduler (:mod:`agent.schedule`: the device's polls); a profile rides on
it. A profile with its own ``interval_s`` is polled at the first device poll at which
that interval has elapsed since it was last polled (within :data:`EARLY_FRACTION` of the
device's interval: polls are stamped when admitted, a little early or late), so its
real interval is a whole number of device intervals; one without is polled at every
device poll.

``profiles = ["auto"]`` needs the device's sysObjectID: read once, and again after a
reboot (sysUpTime went back) or after a read that failed. Until it is known, ``"auto"``
chooses nothing (the profiles named explicitly are still polled).

A profile with ``stretch_when_saturated`` is polled at ``stretch ×`` its interval while
the uplink is saturated (:mod:`agent.stretch` decides the factor); the others never are.

``if-mib`` is the interface poll's (:mod:`agent.snmp.table`), never walked as a generic
profile here. At most :data:`xanet.wire.MAX_PROFILES_PER_POLL` profiles are chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from agent.profiles.model import IF_MIB, Oid, Profile
from agent.profiles.select import needs_sys_object_id, select_profiles
from agent.stretch import stretched_interval_s
from xanet import wire

#: The profile the interface path polls: not walked as a generic profile.
INTERFACE_PROFILE: Final = IF_MIB
#: How much earlier than its interval a profile may come due (fraction of the device's).
EARLY_FRACTION: Final = 0.1


class ProfileDue:
    """One device's profile choice and when each profile was last polled."""

    def __init__(self, requested: Sequence[str], catalog: Mapping[str, Profile],
                 device_interval_s: float) -> None:
        self.requested = list(requested)
        self.catalog = catalog
        self.device_interval_s = device_interval_s
        self.sys_object_id: Oid | None = None
        self._known = False  # sysObjectID read (None: the device has none)
        self._uptime_cs: int | None = None
        self._last: dict[str, float] = {}  # profile -> when it was last polled
        #: profiles chosen beyond the wire's bound, not polled (for the log)
        self.dropped: list[str] = []

    def wants_sys_object_id(self, uptime_cs: int | None) -> bool:
        """Whether to read sysObjectID at this poll (``uptime_cs``: its sysUpTime)."""
        if self._uptime_cs is not None and uptime_cs is not None and uptime_cs < self._uptime_cs:
            self._known = False  # rebooted: maybe another firmware, another sysObjectID
        self._uptime_cs = uptime_cs if uptime_cs is not None else self._uptime_cs
        return needs_sys_object_id(self.requested) and not self._known

    def learn_sys_object_id(self, oid: Oid | None) -> None:
        """The device's sysObjectID (None: it has none)."""
        self.sys_object_id, self._known = oid, True

    def forget_sys_object_id(self) -> None:
        """The read failed: asked again at the next poll; ``"auto"`` chooses as before
        (nothing, before the first read)."""
        self._known = False

    def chosen(self) -> list[Profile]:
        """The profiles this device polls now, in order (``if-mib`` left out, bounded)."""
        profiles = [p for p in select_profiles(self.requested, self.catalog,
                                               self.sys_object_id)
                    if p.name != INTERFACE_PROFILE]
        self.dropped = [p.name for p in profiles[wire.MAX_PROFILES_PER_POLL:]]
        return profiles[:wire.MAX_PROFILES_PER_POLL]

    def interval_s(self, profile: Profile, stretch: int = 1) -> float:
        """The profile's own interval, else the device's; ``stretch`` times that when the
        profile stretches under a saturated uplink."""
        return stretched_interval_s(profile.interval_s or self.device_interval_s, stretch,
                                    profile.stretch_when_saturated)

    def stretchable(self) -> int:
        """How many of the chosen profiles stretch under a saturated uplink."""
        return sum(p.stretch_when_saturated for p in self.chosen())

    def due(self, mono_s: float, stretch: int = 1) -> list[Profile]:
        """The profiles to poll at the device poll stamped ``mono_s`` (``stretch``: the
        saturated uplink's factor); they count as polled then (failed or not: a failing
        profile is tried at its own interval)."""
        early_s = EARLY_FRACTION * self.device_interval_s
        due = []
        for profile in self.chosen():
            last = self._last.get(profile.name)
            if last is None or mono_s - last >= self.interval_s(profile, stretch) - early_s:
                self._last[profile.name] = mono_s
                due.append(profile)
        return due
