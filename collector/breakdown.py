"""Report rows per site, device, operator and service, built from element timelines (pure).

The collector stores a state timeline per inventory element (``element_state``,
keyed ``site/device[/ifname]``) and per commune-service (``service_state``). A
commune's mobile service is up while *any* of its stations is (its established
meaning); this module adds what that figure hides:

* a **site's service** (one BTS' 4G) combines that site's elements of the service
  any-of, as a commune does;
* a **station** is one BTS site for one technology; a commune's mobile row carries its
  stations' timelines, so the report shows the share of station time up and the most
  stations down at once ("4 of 6");
* an **operator's** row sums the site-service timelines of its sites (a site shared by
  two operators counts for each); a **service's** row sums its communes' timelines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from collector.availability import ServiceKey
from collector.report import Group, Unit, service_rank
from collector.timeline import Step, combine_any
from xanet.inventory import Inventory, Site

MOBILE = ("mobile_2g", "mobile_3g", "mobile_4g")


@dataclass(frozen=True)
class Scope:
    """What a report is restricted to (``None``: everything)."""

    commune: str | None = None
    service: str | None = None
    site: str | None = None
    operator: str | None = None

    def keeps_site(self, site: Site) -> bool:
        return ((self.commune is None or site.commune == self.commune)
                and (self.site is None or site.id == self.site)
                and (self.operator is None or self.operator in site.operator))

    def keeps_service(self, service: str) -> bool:
        return self.service is None or service == self.service


def site_services(
    inventory: Inventory, elements: Mapping[str, Sequence[Step]]
) -> dict[tuple[str, str], list[Step]]:
    """``(site, service) -> timeline``: the site's elements of that service, any-of."""
    parts: dict[tuple[str, str], list[Sequence[Step]]] = {}
    for site in inventory.sites:
        for device in site.devices:
            for element in device.elements:
                parts.setdefault((site.id, str(element.service)), []).append(
                    elements.get(element.key, ()))
    return {key: combine_any(t) for key, t in parts.items()}


def device_services(
    inventory: Inventory, elements: Mapping[str, Sequence[Step]]
) -> dict[tuple[str, str, str], list[Step]]:
    """``(site, device, service) -> timeline``."""
    parts: dict[tuple[str, str, str], list[Sequence[Step]]] = {}
    for site in inventory.sites:
        for device in site.devices:
            for element in device.elements:
                parts.setdefault((site.id, device.id, str(element.service)), []).append(
                    elements.get(element.key, ()))
    return {key: combine_any(t) for key, t in parts.items()}


def stations(
    inventory: Inventory, per_site: Mapping[tuple[str, str], Sequence[Step]], scope: Scope
) -> dict[ServiceKey, list[Sequence[Step]]]:
    """Per commune mobile service, the timelines of its BTS for that technology."""
    out: dict[ServiceKey, list[Sequence[Step]]] = {}
    for site in inventory.sites:
        if site.role != "bts" or not scope.keeps_site(site):
            continue
        for service in MOBILE:
            if (site.id, service) in per_site and scope.keeps_service(service):
                out.setdefault(ServiceKey(site.commune, service), []).append(
                    per_site[(site.id, service)])
    return out


def units(
    group: Group,
    inventory: Inventory,
    scope: Scope,
    communes: Mapping[ServiceKey, Sequence[Step]],
    elements: Mapping[str, Sequence[Step]],
) -> list[Unit]:
    """The rows of a ``site``, ``device``, ``operator`` or ``service`` breakdown."""
    per_site = site_services(inventory, elements)
    of_site: dict[str, list[tuple[str, list[Step]]]] = {}
    for (sid, service), timeline in per_site.items():
        if scope.keeps_service(service):
            of_site.setdefault(sid, []).append((service, timeline))
    sites = [s for s in inventory.sites if scope.keeps_site(s)]
    out: list[Unit] = []
    if group == "site":
        for site in sites:
            for service, timeline in of_site.get(site.id, ()):
                out.append(Unit("site", site.id, service, (timeline,), site.name or "",
                                    site.commune))
    elif group == "device":
        kept = {s.id: s for s in sites}
        for (sid, device, service), timeline in device_services(inventory, elements).items():
            if sid in kept and scope.keeps_service(service):
                out.append(Unit("device", f"{sid}/{device}", service, (timeline,),
                                kept[sid].name or "", kept[sid].commune))
    elif group == "operator":
        members: dict[tuple[str, str], list[Sequence[Step]]] = {}
        for site in sites:
            for operator in site.operator:
                if scope.operator is not None and operator != scope.operator:
                    continue
                for service, timeline in of_site.get(site.id, ()):
                    members.setdefault((operator, service), []).append(timeline)
        for (operator, service), timelines in members.items():
            out.append(Unit("operator", operator, service, tuple(timelines),
                            stations=tuple(timelines) if service in MOBILE else None))
    elif group == "service":
        by_service: dict[str, list[Sequence[Step]]] = {}
        for key, commune_timeline in communes.items():
            by_service.setdefault(key.service, []).append(commune_timeline)
        station_map = stations(inventory, per_site, scope)
        for service in sorted(by_service, key=service_rank):
            st = [t for k, ts in station_map.items() if k.service == service for t in ts]
            out.append(Unit("service", service, service, tuple(by_service[service]),
                            stations=tuple(st) if service in MOBILE else None))
    else:
        raise ValueError(f"no unit breakdown for {group!r}: commune rows come from "
                         "build_report itself")
    return out


def element_filter(inventory: Inventory, scope: Scope) -> Callable[[str], bool]:
    """Whether an element key belongs to a site the scope keeps."""
    kept = {s.id for s in inventory.sites if scope.keeps_site(s)}
    return lambda key: key.split("/", 1)[0] in kept
