"""What each device polls: sysUpTime, its interfaces (the if-mib profile), its other
profiles, the ICMP echo. Pure.

A device's profile list (its own ``profiles``, else ``[profiles] default``, which is
``["if-mib"]``) names *everything* polled besides sysUpTime, the reachability probe every
SNMP device gets: its interfaces exactly when ``if-mib`` is in it (``"auto"`` never
selects ``if-mib``: it adds the profiles matching the device's sysObjectID). A UPS with
``profiles = ["ups-mib"]`` is not interface-walked. ``xanet check-config`` prints
:func:`poll_summary`.
"""

from __future__ import annotations

from typing import Final

from agent.config import AgentConfig, DeviceConfig
from agent.profiles.model import AUTO, IF_MIB

#: Devices named one by one in a summary line; more are counted.
_NAMED: Final = 4


def polls_interfaces(cfg: AgentConfig, dev: DeviceConfig) -> bool:
    """Whether ``dev``'s polls walk its interfaces: its profiles name ``if-mib``."""
    return IF_MIB in cfg.profiles_of(dev)


def describe(cfg: AgentConfig, dev: DeviceConfig) -> str:
    """What one poll of ``dev`` reads: ``"sysUpTime, interfaces (if-mib), ups-mib; ICMP
    echo"``, or ``"ICMP echo only"`` for a ping-only device."""
    if dev.snmp is False:
        return "ICMP echo only (snmp = false)"
    parts = ["sysUpTime"]
    for name in cfg.profiles_of(dev):
        parts.append("interfaces (if-mib)" if name == IF_MIB else
                     "profiles by sysObjectID (auto)" if name == AUTO else name)
    return ", ".join(parts) + ("; ICMP echo" if cfg.pings(dev) else "")


def poll_summary(cfg: AgentConfig) -> list[str]:
    """One line per distinct poll: ``"3 devices (ups-1, ups-2, ups-3) poll sysUpTime,
    ups-mib; ICMP echo"``, in the order first met."""
    groups: dict[str, list[str]] = {}
    for dev in cfg.devices:
        groups.setdefault(describe(cfg, dev), []).append(
            dev.id if dev.site is None else f"{dev.site}/{dev.id}")
    lines = []
    for what, devices in groups.items():
        count = f"{len(devices)} device{'s' if len(devices) > 1 else ''}"
        named = ", ".join(devices[:_NAMED]) + (", ..." if len(devices) > _NAMED else "")
        lines.append(f"{count} ({named}) poll{'s' if len(devices) == 1 else ''} {what}")
    return lines
