"""What can be in outage and what covers what: the alert units of the inventory (site,
device, interface element, agent), their alert identity and the uplink tree that decides
the root cause (pure).

* ``site``: the site is *cut off* when all of its **uplink** elements are down. The uplink
  is the site's ``fibre`` elements if it has any, else all of its elements.
* ``device``: every element of the device is down (it does not answer, or every monitored
  interface is down).
* ``element``: one monitored interface is down (the device answers).
* ``agent``: the agent is silent (:mod:`collector.liveness`).

A unit is *covered* while a unit above it is pending or open: its device, its site, any
ancestor site (the inventory's ``parent`` chain). An agent is covered when each of its
sites has an ancestor site (or the agent of one) pending or open: :attr:`Unit.cover_groups`
says so as data; :class:`collector.outages.AlertCore` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from xanet.inventory import Inventory, Service, Site

UnitKind = Literal["site", "device", "element", "agent"]
#: ``agent_fault``: an agent misbehaving (collector/faults.py), no outage either;
#: ``site_power``: a site on battery (collector/power.py), the early warning of one.
OutageKind = Literal["root", "device_down", "agent_silent", "monitoring_broken",
                     "agent_fault", "site_power"]
#: Why an outage happened (docs/alerts.md, "Cause"): the site was on battery when it went
#: down; it went down behind a down parent; else the site itself.
Cause = Literal["power", "transmission", "site"]
CAUSES: Final[tuple[Cause, ...]] = ("power", "transmission", "site")
Severity = Literal["critical", "major", "warning"]

ALERTNAMES: Final[Mapping[UnitKind, str]] = {
    "site": "XanetSiteDown",
    "device": "XanetDeviceDown",
    "element": "XanetServiceDown",
    "agent": "XanetAgentSilent",
}
OUTAGE_KINDS: Final[Mapping[UnitKind, OutageKind]] = {
    "site": "root",
    "device": "device_down",
    "element": "device_down",
    "agent": "agent_silent",
}


@dataclass(frozen=True, slots=True)
class Unit:
    """Something that can be in outage, with its static alert identity."""

    id: str
    kind: UnitKind
    elements: tuple[str, ...]  # any-of decides the condition (empty for an agent)
    #: covered when, in every group, some unit is pending or open
    cover_groups: tuple[tuple[str, ...], ...]
    labels: Mapping[str, str]
    site: str  # the site the alert is about (an agent: its first site)
    sites: tuple[str, ...] = ()  # an agent: every site it polls
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertTopology:
    """Units and the uplink tree, built once from the inventory (:func:`alert_topology`)."""

    units: Mapping[str, Unit]
    province: str
    site_names: Mapping[str, str]
    commune_names: Mapping[str, str]  # by site
    descendants: Mapping[str, tuple[str, ...]]  # site -> sites behind it, nearest first
    agent_units: Mapping[str, str] = field(default_factory=dict)  # agent id -> unit id

    def units_of_element(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for unit in self.units.values():
            for element in unit.elements:
                out.setdefault(element, []).append(unit.id)
        return out


def site_unit(site: str) -> str:
    return f"site:{site}"


def device_unit(site: str, device: str) -> str:
    return f"device:{site}/{device}"


def element_unit(key: str) -> str:
    return f"element:{key}"


def agent_unit(agent: str) -> str:
    return f"agent:{agent}"


def _severity(kind: UnitKind, site: Site, has_children: bool) -> Severity:
    if kind == "agent":
        return "warning"
    if kind == "site" and (site.role == "hub" or has_children):
        return "critical"
    return "major"


def alert_topology(inventory: Inventory) -> AlertTopology:
    """Units of every site, device, interface element and agent of the inventory."""
    province = inventory.province.code
    units: dict[str, Unit] = {}
    agent_units: dict[str, str] = {}
    descendants = {s.id: tuple(inventory.descendants(s.id)) for s in inventory.sites}
    ancestors = {s.id: inventory.ancestors(s.id) for s in inventory.sites}

    def labels(kind: UnitKind, site: Site, services: Iterable[str], **extra: str) -> dict[str, str]:
        out = {
            "alertname": ALERTNAMES[kind],
            "severity": _severity(kind, site, bool(descendants[site.id])),
            "province": province,
            "commune": site.commune,
            "site": site.id,
            **extra,
        }
        joined = ",".join(sorted(set(services)))
        if joined:
            out["service"] = joined
        return {k: v for k, v in out.items() if v}

    for site in inventory.sites:
        above = tuple(site_unit(a) for a in ancestors[site.id])
        elements: dict[str, list[str]] = {}  # key -> services
        for device in site.devices:
            dev_keys: dict[str, list[str]] = {}
            for el in device.elements:
                dev_keys.setdefault(el.key, []).append(str(el.service.value))
                elements.setdefault(el.key, []).append(str(el.service.value))
            if not dev_keys:
                continue
            dev_services = [s for v in dev_keys.values() for s in v]
            did = device_unit(site.id, device.id)
            units[did] = Unit(did, "device", tuple(dev_keys), ((site_unit(site.id), *above),),
                              labels("device", site, dev_services, device=device.id),
                              site.id, services=tuple(sorted(set(dev_services))))
            for el in device.elements:
                if el.interface is None:
                    continue
                eid = element_unit(el.key)
                if eid in units:
                    continue
                services = dev_keys[el.key]
                units[eid] = Unit(
                    eid, "element", (el.key,), ((did, site_unit(site.id), *above),),
                    labels("element", site, services, device=device.id,
                           interface=el.interface),
                    site.id, services=tuple(sorted(set(services))))
        if elements:
            fibre = [k for k, svcs in elements.items() if Service.FIBRE.value in svcs]
            uplink = tuple(fibre or elements)
            all_services = [s for v in elements.values() for s in v]
            sid = site_unit(site.id)
            units[sid] = Unit(sid, "site", uplink, (above,) if above else (),
                              labels("site", site, all_services), site.id,
                              services=tuple(sorted(set(all_services))))
    for site in inventory.sites:
        agent = site.agent
        if agent is None or agent in agent_units:
            continue
        sites = inventory.sites_of_agent(agent)
        groups: list[tuple[str, ...]] = []
        for s in sites:
            group: list[str] = []
            for a in ancestors[s.id]:
                group.append(site_unit(a))
                parent_agent = inventory.site(a).agent
                if parent_agent is not None and parent_agent != agent:
                    group.append(agent_unit(parent_agent))
            groups.append(tuple(group))
        services = sorted({str(e.service.value) for s in sites for d in s.devices
                           for e in d.elements})
        aid = agent_unit(agent)
        units[aid] = Unit(
            aid, "agent", (),
            # an agent with a root site is never covered (an empty group covers nothing)
            tuple(groups),
            labels("agent", sites[0], services, agent=agent),
            sites[0].id, sites=tuple(s.id for s in sites), services=tuple(services))
        agent_units[agent] = aid
    # a cover group naming a unit that does not exist (a site without elements) is harmless
    return AlertTopology(
        units=units,
        province=province,
        site_names={s.id: s.name or s.id for s in inventory.sites},
        commune_names={s.id: inventory.commune(s.commune).name for s in inventory.sites},
        descendants=descendants,
        agent_units=agent_units,
    )

