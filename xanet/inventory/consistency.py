"""What makes an inventory consistent: the cross-references between its tables. Pure.

Every problem is collected (never the first only), each starting with its key path
(``sites[12].parent: unknown site 'hub-0227' (site bts-02269-03)``); the root model
(:class:`xanet.inventory.index.Inventory`) raises them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from xanet.inventory.model import (
    TECHNOLOGY_SERVICE,
    Agent,
    AgentDefaults,
    Commune,
    Credentials,
    Device,
    District,
    Service,
    Site,
    Technology,
)

_SERVICE_TECHNOLOGY: Mapping[Service, Technology] = {s: t for t, s in TECHNOLOGY_SERVICE.items()}


def _duplicates(items: Iterable[tuple[str, str]], what: str, scope: str = "") -> list[str]:
    """Problems for repeated ids in (location, id) pairs, naming the first occurrence."""
    first: dict[str, str] = {}
    problems: list[str] = []
    for loc, ident in items:
        if ident in first:
            problems.append(f"{loc}: duplicate {what} {ident!r}{scope} (first at {first[ident]})")
        else:
            first[ident] = loc
    return problems


def cross_problems(districts: Sequence[District], communes: Sequence[Commune],
                   sites: Sequence[Site]) -> list[str]:
    """Every cross-reference problem of an inventory's tables (duplicates, unknown
    references, parent cycles, technologies against elements)."""
    problems: list[str] = []
    if not communes:
        problems.append("communes: an inventory needs at least one commune")
    problems += _duplicates(
        ((f"districts[{i}].code", d.code) for i, d in enumerate(districts)), "district code"
    )
    problems += _duplicates(
        ((f"communes[{i}].code", c.code) for i, c in enumerate(communes)), "commune code"
    )
    problems += _duplicates(((f"sites[{i}].id", s.id) for i, s in enumerate(sites)), "site id")

    district_codes = {d.code for d in districts}
    for i, commune in enumerate(communes):
        if commune.district is not None and commune.district not in district_codes:
            problems.append(
                f"communes[{i}].district: unknown district {commune.district!r} "
                f"(commune {commune.code})"
            )

    commune_codes = {c.code for c in communes}
    by_id = {s.id: s for s in sites}
    for i, site in enumerate(sites):
        where = f"sites[{i}]"
        if site.commune not in commune_codes:
            problems.append(f"{where}.commune: unknown commune {site.commune!r} (site {site.id})")
        if site.parent is not None and site.parent not in by_id:
            problems.append(f"{where}.parent: unknown site {site.parent!r} (site {site.id})")
        problems += _device_problems(where, site)
        problems += _technology_problems(where, site)

    problems += _cycle_problems(sites, by_id)
    return problems


def management_problems(sites: Sequence[Site], agents: Sequence[Agent],
                        credentials: Mapping[str, Credentials],
                        defaults: AgentDefaults) -> list[str]:
    """Every problem of the polling data: agents declared and named, each device with an
    address polled by an agent with credentials that exist and match its SNMP version."""
    problems = _duplicates(((f"agents[{i}].id", a.id) for i, a in enumerate(agents)), "agent id")
    site_ids = {s.id for s in sites}
    for i, agent in enumerate(agents):
        if agent.site not in site_ids:
            problems.append(f"agents[{i}].site: unknown site {agent.site!r} (agent {agent.id})")
    declared = {a.id for a in agents}
    if defaults.credentials is not None and defaults.credentials not in credentials:
        problems.append(f"agent_defaults.credentials: unknown credentials "
                        f"{defaults.credentials!r} (no [credentials.{defaults.credentials}])")
    for i, site in enumerate(sites):
        if agents and site.agent is not None and site.agent not in declared:
            problems.append(f"sites[{i}].agent: unknown agent {site.agent!r} (site {site.id}; "
                            "declare it in [[agents]])")
        for j, device in enumerate(site.devices):
            problems += _polling_problems(f"sites[{i}].devices[{j}]", site, device.id,
                                          device, credentials, defaults)
    return problems


def _polling_problems(where: str, site: Site, name: str, device: Device,
                      credentials: Mapping[str, Credentials],
                      defaults: AgentDefaults) -> list[str]:
    problems: list[str] = []
    label = f"device {site.id}/{name}"
    if device.monitor == "ping":
        given = [k for k in ("snmp_version", "credentials", "profiles")
                 if getattr(device, k) is not None]
        problems += [f"{where}.{k}: {label} is ping-only (monitor = \"ping\"): no SNMP"
                     for k in given]
    if device.credentials is not None and device.credentials not in credentials:
        problems.append(f"{where}.credentials: unknown credentials {device.credentials!r} "
                        f"({label}; no [credentials.{device.credentials}])")
    if device.address is None:
        return problems
    if site.agent is None:
        problems.append(f"{where}.address: {label} has an address but site {site.id} has "
                        "no agent to poll it")
    if device.monitor == "ping":
        return problems
    ref = device.credentials or defaults.credentials
    if ref is None:
        problems.append(f"{where}.credentials: {label} has an address but no credentials "
                        "(name a [credentials.NAME] table, or [agent_defaults] credentials)")
    elif ref in credentials and device.snmp_version is not None \
            and credentials[ref].version != device.snmp_version:
        problems.append(f"{where}.snmp_version: {device.snmp_version!r} but credentials "
                        f"{ref!r} are version {credentials[ref].version!r} ({label})")
    return problems


def _device_problems(where: str, site: Site) -> list[str]:
    problems = _duplicates(
        ((f"{where}.devices[{j}].id", d.id) for j, d in enumerate(site.devices)),
        "device id",
        f" in site {site.id}",
    )
    for j, device in enumerate(site.devices):
        if device.site != site.id:
            problems.append(
                f"{where}.devices[{j}].site: {device.site!r} but the device is nested in "
                f"site {site.id!r}; omit the key"
            )
        for k, element in enumerate(device.elements):
            if (element.site, element.device) != (site.id, device.id):
                problems.append(
                    f"{where}.devices[{j}].elements[{k}]: site/device "
                    f"{element.site}/{element.device} but the element is nested in "
                    f"{site.id}/{device.id}; omit the keys"
                )
        seen: dict[tuple[Service, str], str] = {}
        for k, element in enumerate(device.elements):
            loc = f"{where}.devices[{j}].elements[{k}]"
            if device.monitor == "ping" and element.interface is not None:
                problems.append(
                    f"{loc}.interface: device {site.id}/{device.id} is ping-only "
                    f"(monitor = \"ping\"): its elements are the device itself, not "
                    f"interface {element.interface!r}"
                )
            first = seen.setdefault((element.service, element.key), loc)
            if first != loc:
                problems.append(
                    f"{loc}: duplicate {element.service} element {element.key!r} (first at {first})"
                )
    return problems


def _technology_problems(where: str, site: Site) -> list[str]:
    problems: list[str] = []
    if site.role != "bts":
        if site.technologies:
            problems.append(
                f"{where}.technologies: only BTS sites have technologies "
                f"(site {site.id} is {site.role!r})"
            )
    elif not site.technologies:
        problems.append(
            f"{where}.technologies: a BTS needs at least one of 2g, 3g, 4g (site {site.id})"
        )
    covered: set[Technology] = set()
    for j, device in enumerate(site.devices):
        for k, element in enumerate(device.elements):
            tech = _SERVICE_TECHNOLOGY.get(element.service)
            if tech is None:
                continue
            loc = f"{where}.devices[{j}].elements[{k}].service"
            if site.role != "bts":
                problems.append(
                    f"{loc}: {element.service} elements belong on BTS sites "
                    f"(site {site.id} is {site.role!r})"
                )
            elif tech not in site.technologies:
                problems.append(
                    f"{loc}: {element.service} but site {site.id} technologies are "
                    f"{_techs(site.technologies)}"
                )
            covered.add(tech)
    if site.role == "bts":
        for tech in sorted(site.technologies - covered):
            problems.append(
                f"{where}.technologies: {tech} declared but no {TECHNOLOGY_SERVICE[tech]} "
                f"element monitors it (site {site.id})"
            )
    return problems


def _techs(techs: Iterable[Technology]) -> str:
    listed = sorted(str(t) for t in techs)
    return "[" + ", ".join(listed) + "]" if listed else "[] (none)"


def _cycle_problems(ordered: Iterable[Site], sites: Mapping[str, Site]) -> list[str]:
    """One problem per parent cycle, at the cycle's first site in file order."""
    index = {s.id: i for i, s in enumerate(ordered)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    problems: list[str] = []
    for start in index:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in sites and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = sites[node].parent
        if node is not None and state.get(node) == 1:
            cycle = path[path.index(node) :]
            first = min(cycle, key=index.__getitem__)
            at = cycle.index(first)
            rotated = [*cycle[at:], *cycle[:at], first]
            problems.append(f"sites[{index[first]}].parent: parent cycle " + " -> ".join(rotated))
        for visited in path:
            state[visited] = 2
    return problems
