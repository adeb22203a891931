"""The whole inventory and what is answered from it: lookups, elements, the uplink tree.

The root model validates once (the tables' own rules, then
:func:`xanet.inventory.consistency.cross_problems`) and builds its indexes; every query
after that is a dictionary look-up. Pure.
"""

from __future__ import annotations

from collections import deque

from pydantic import Field, PrivateAttr, model_validator

from xanet.config import Problems
from xanet.inventory.consistency import cross_problems, management_problems
from xanet.inventory.model import (
    Agent,
    AgentDefaults,
    Commune,
    Credentials,
    Device,
    District,
    Element,
    Id,
    Province,
    Service,
    Site,
    Technology,
    _Model,
)


class Inventory(_Model):
    province: Province
    districts: tuple[District, ...] = ()
    communes: tuple[Commune, ...]
    sites: tuple[Site, ...] = ()
    agents: tuple[Agent, ...] = ()
    credentials: dict[Id, Credentials] = Field(default_factory=dict)
    agent_defaults: AgentDefaults = AgentDefaults()

    _communes: dict[str, Commune] = PrivateAttr(default_factory=dict)
    _sites: dict[str, Site] = PrivateAttr(default_factory=dict)
    _children: dict[str, list[str]] = PrivateAttr(default_factory=dict)
    _by_target: dict[tuple[str, str, str | None], list[Element]] = PrivateAttr(default_factory=dict)
    _by_device: dict[tuple[str, str], list[Element]] = PrivateAttr(default_factory=dict)
    _devices: dict[tuple[str, str], Device] = PrivateAttr(default_factory=dict)
    _by_commune: dict[str, list[Element]] = PrivateAttr(default_factory=dict)
    _sites_by_commune: dict[str, list[Site]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self) -> Inventory:
        problems = cross_problems(self.districts, self.communes, self.sites)
        problems += management_problems(self.sites, self.agents, self.credentials,
                                        self.agent_defaults)
        if problems:
            raise Problems(problems)
        self._index()
        return self

    def _index(self) -> None:
        self._communes = {c.code: c for c in self.communes}
        self._sites = {s.id: s for s in self.sites}
        self._children = {s.id: [] for s in self.sites}
        self._sites_by_commune = {c.code: [] for c in self.communes}
        self._by_commune = {c.code: [] for c in self.communes}
        for site in self.sites:
            if site.parent is not None:
                self._children[site.parent].append(site.id)
            self._sites_by_commune[site.commune].append(site)
            for device in site.devices:
                self._by_device[(site.id, device.id)] = list(device.elements)
                self._devices[(site.id, device.id)] = device
                for element in device.elements:
                    target = (site.id, device.id, element.interface)
                    self._by_target.setdefault(target, []).append(element)
                    self._by_commune[site.commune].append(element)

    # -- lookups ------------------------------------------------------------------------

    def commune(self, code: str) -> Commune:
        """The commune with this code; KeyError if there is none."""
        return self._communes[code]

    def has_commune(self, code: str) -> bool:
        return code in self._communes

    def site(self, site_id: str) -> Site:
        """The site with this id; KeyError if there is none."""
        return self._sites[site_id]

    def has_site(self, site_id: str) -> bool:
        return site_id in self._sites

    def sites_of_commune(self, code: str) -> list[Site]:
        return list(self._sites_by_commune[code])

    def operators(self) -> list[str]:
        """Every operator named on a site, sorted."""
        return sorted({op for s in self.sites for op in s.operator})

    def agent(self, agent_id: str) -> Agent:
        """The ``[[agents]]`` entry ``agent_id``; KeyError if it is not declared."""
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise KeyError(agent_id)

    def agent_ids(self) -> list[str]:
        """Every agent: declared in ``[[agents]]``, then named by a site only (file order)."""
        ids = [a.id for a in self.agents]
        for site in self.sites:
            if site.agent is not None and site.agent not in ids:
                ids.append(site.agent)
        return ids

    def sites_of_agent(self, agent_id: str) -> list[Site]:
        """Sites whose ``agent`` is ``agent_id`` (in file order)."""
        return [s for s in self.sites if s.agent == agent_id]

    @property
    def elements(self) -> list[Element]:
        """Every element, in file order."""
        return [e for s in self.sites for d in s.devices for e in d.elements]

    def elements_for(self, site_id: str, device_id: str, interface: str | None) -> list[Element]:
        """Elements observed by exactly this target: the device itself when ``interface`` is
        None, else that ifName. Unknown or unmonitored targets give ``[]``."""
        return list(self._by_target.get((site_id, device_id, interface), ()))

    def device(self, site_id: str, device_id: str) -> Device:
        """The device ``device_id`` of site ``site_id``; KeyError if there is none."""
        return self._devices[(site_id, device_id)]

    def has_device(self, site_id: str, device_id: str) -> bool:
        return (site_id, device_id) in self._devices

    def is_ping_only(self, site_id: str, device_id: str) -> bool:
        """True for a device monitored by ICMP echo alone (``monitor = "ping"``)."""
        device = self._devices.get((site_id, device_id))
        return device is not None and device.monitor == "ping"

    def elements_of_device(self, site_id: str, device_id: str) -> list[Element]:
        """All elements of a device: its reachability ones and those of its interfaces."""
        return list(self._by_device.get((site_id, device_id), ()))

    def elements_of_commune(self, code: str, service: Service | None = None) -> list[Element]:
        """Elements in a commune (all its sites), optionally of one service."""
        elements = self._by_commune[code]
        if service is None:
            return list(elements)
        return [e for e in elements if e.service == service]

    def services_of(self, commune_code: str) -> set[Service]:
        """Services with at least one element in the commune."""
        return {e.service for e in self._by_commune[commune_code]}

    def bts_count_by_technology(self) -> dict[Technology, int]:
        """Stations per technology: a BTS site with 2G and 4G counts once for each."""
        counts = dict.fromkeys(Technology, 0)
        for site in self.sites:
            if site.role == "bts":
                for tech in site.technologies:
                    counts[tech] += 1
        return counts

    # -- uplink tree --------------------------------------------------------------------

    def children(self, site_id: str) -> list[str]:
        """Sites directly behind ``site_id``'s uplink (file order)."""
        return list(self._children[site_id])

    def descendants(self, site_id: str) -> list[str]:
        """Every site behind ``site_id``, breadth first (nearest first)."""
        out: list[str] = []
        queue = deque(self._children[site_id])
        while queue:
            child = queue.popleft()
            out.append(child)
            queue.extend(self._children[child])
        return out

    def ancestors(self, site_id: str) -> list[str]:
        """The parent chain of ``site_id``, nearest first (empty for a root site)."""
        out: list[str] = []
        parent = self._sites[site_id].parent
        while parent is not None:
            out.append(parent)
            parent = self._sites[parent].parent
        return out
