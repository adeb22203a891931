"""Which profiles a device is polled with: named ones, or chosen by its sysObjectID. Pure.

A device's ``profiles = ["ups-mib", "entity-sensor"]`` (or the agent's ``[profiles]
default``) names profiles of the catalog (:mod:`agent.profiles.load`); ``"auto"`` among
them adds every profile one of whose ``sys_object_ids`` is a prefix of the device's
sysObjectID. Each profile is chosen once, in the order named (auto's in catalog order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.profiles.model import AUTO, Oid, Profile


def unknown_names(requested: Sequence[str], catalog: Mapping[str, Profile]) -> list[str]:
    """The names in ``requested`` that are neither ``"auto"`` nor in ``catalog``."""
    return [name for name in requested if name != AUTO and name not in catalog]


def needs_sys_object_id(requested: Sequence[str]) -> bool:
    """Whether choosing needs the device's sysObjectID (``"auto"`` is named)."""
    return AUTO in requested


def matches(profile: Profile, sys_object_id: Oid) -> bool:
    """Whether one of the profile's sysObjectID prefixes is a prefix of ``sys_object_id``."""
    return any(sys_object_id[: len(prefix)] == prefix
               for prefix in profile.sys_object_id_prefixes)


def select_profiles(requested: Sequence[str], catalog: Mapping[str, Profile],
                    sys_object_id: Oid | None = None) -> list[Profile]:
    """The profiles to poll, in order, each once. Raises ``KeyError`` for a name the catalog
    does not hold (``xanet check-config`` reports those first: :func:`unknown_names`);
    ``"auto"`` without a sysObjectID (the device did not say) chooses nothing."""
    chosen: dict[str, Profile] = {}
    for name in requested:
        if name == AUTO:
            if sys_object_id is not None:
                for profile in catalog.values():
                    if matches(profile, sys_object_id):
                        chosen.setdefault(profile.name, profile)
            continue
        chosen.setdefault(name, catalog[name])
    return list(chosen.values())
