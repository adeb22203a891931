"""The inventory: province, communes, sites, devices and the elements monitored on them.

One TOML file describes what exists and what each monitored *element* means:

* an element is a device (its reachability) or one interface of a device (its ifName),
  tagged with the service it stands for (fibre, broadband, mobile 2G/3G/4G);
* a site may hang behind another site's uplink (``parent``), so an outage can be
  attributed to its root instead of alerting once per child;
* communes sit directly under the province (the 2025 two-level structure); an old-style
  district is optional.

Loading is the only I/O here (:func:`load_inventory`); everything else is pure and
answered from indexes built once at validation. All cross-reference problems are
collected and reported together, each with its key path (``sites[12].parent``).
The TOML format is documented in ``docs/inventory.md``.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from xanet.config import format_loc

__all__ = [
    "SERVICE_LABELS_VI",
    "TECHNOLOGY_SERVICE",
    "TOPIC_SAFE_ID_PATTERN",
    "Commune",
    "Device",
    "District",
    "Element",
    "Inventory",
    "InventoryError",
    "Province",
    "Service",
    "Site",
    "Technology",
    "element_key",
    "is_topic_safe",
    "load_inventory",
    "parse_inventory",
    "validate_official_codes",
]

# Lowercase ASCII letters, digits and inner '-', 1..64 characters: usable verbatim as an
# MQTT topic level (no '/', '+', '#'), an InfluxDB tag value and an Alertmanager label.
TOPIC_SAFE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
_TOPIC_SAFE_ID = re.compile(TOPIC_SAFE_ID_PATTERN)


def _check_id(value: str) -> str:
    if not _TOPIC_SAFE_ID.fullmatch(value):
        raise ValueError(
            "not a valid id: use 1-64 lowercase ASCII letters, digits and '-', not at the "
            "start or end (ids appear in MQTT topics, tags and labels)"
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
InterfaceName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def is_topic_safe(value: str) -> bool:
    """True if ``value`` is a valid inventory id (safe as an MQTT topic level)."""
    return _TOPIC_SAFE_ID.fullmatch(value) is not None


class Service(StrEnum):
    """What a commune is measured for."""

    FIBRE = "fibre"
    BROADBAND = "broadband"
    MOBILE_2G = "mobile_2g"
    MOBILE_3G = "mobile_3g"
    MOBILE_4G = "mobile_4g"


SERVICE_LABELS_VI: Mapping[Service, str] = {
    Service.FIBRE: "cáp quang",
    Service.BROADBAND: "băng rộng",
    Service.MOBILE_2G: "di động 2G",
    Service.MOBILE_3G: "di động 3G",
    Service.MOBILE_4G: "di động 4G",
}


class Technology(StrEnum):
    """Radio technology of a BTS site."""

    G2 = "2g"
    G3 = "3g"
    G4 = "4g"


TECHNOLOGY_SERVICE: Mapping[Technology, Service] = {
    Technology.G2: Service.MOBILE_2G,
    Technology.G3: Service.MOBILE_3G,
    Technology.G4: Service.MOBILE_4G,
}
_SERVICE_TECHNOLOGY: Mapping[Service, Technology] = {s: t for t, s in TECHNOLOGY_SERVICE.items()}

SiteRole = Literal["hub", "bts", "other"]


def element_key(site: str, device: str, interface: str | None = None) -> str:
    """Stable identity of a monitored thing: ``site/device`` or ``site/device/ifname``.

    Site and device ids never contain '/', so ``key.split("/", 2)`` recovers the parts even
    when the ifName has slashes (``ge-0/0/0``). Several elements (one per service) may
    share a key: the key names what is observed, the service what it counts for.
    """
    return f"{site}/{device}" if interface is None else f"{site}/{device}/{interface}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _inject(data: Any, field: str, values: Mapping[str, Any]) -> Any:
    """Copy ``data`` with each dict in ``data[field]`` given ``values`` (set by nesting).

    A nested table may repeat such a key (a dumped inventory validates again); a value
    that differs from its enclosing table is reported by the inventory's cross-check.
    """
    if not isinstance(data, dict):
        return data
    children = data.get(field)
    if not isinstance(children, list):
        return data
    given = {k: v for k, v in values.items() if isinstance(v, str)}
    out = [{**given, **child} if isinstance(child, dict) else child for child in children]
    return {**data, field: out}


class Province(_Model):
    code: Id
    name: Name


class District(_Model):
    """Pre-2025 district (huyện). Optional: since July 2025 communes sit under the province."""

    code: Id
    name: Name


class Commune(_Model):
    code: Id
    name: Name
    district: Id | None = None


class Element(_Model):
    """A monitored thing: a device (``interface`` absent: reachability) or one of its
    interfaces (by ifName), counted for one service. ``site`` and ``device`` come from
    the tables the element is nested in."""

    site: str  # from the enclosing tables (validated there)
    device: str
    service: Service
    interface: InterfaceName | None = None

    @property
    def key(self) -> str:
        return element_key(self.site, self.device, self.interface)


Monitor = Literal["snmp", "ping"]


class Device(_Model):
    """Equipment at a site. ``host`` is a label only (polling addresses and credentials
    belong to the agent's config). ``monitor``: ``snmp`` (polled; ICMP echo is a second
    witness) or ``ping`` (no SNMP - CPE, ONT, radio: the ICMP echo is the only witness, so
    its elements are the device itself, never an interface)."""

    id: Id
    site: str  # from the enclosing site (validated there)
    host: Name | None = None
    monitor: Monitor = "snmp"
    elements: tuple[Element, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return _inject(data, "elements", {"site": data.get("site"), "device": data.get("id")})


class Site(_Model):
    """A place with equipment: a commune hub, a BTS, or something else (e.g. a repeater).

    ``parent`` is the site whose uplink this site hangs behind; ``technologies`` only for
    BTS; ``agent`` is the id of the agent that polls this site's devices; ``operator`` the
    operators whose service the site carries (a shared site lists each, and counts for
    each in per-operator reports; a single name is accepted as a one-item list).
    """

    id: Id
    commune: Id
    role: SiteRole
    name: Name | None = None
    parent: Id | None = None
    technologies: frozenset[Technology] = frozenset()
    agent: Id | None = None
    operator: tuple[Name, ...] = ()
    devices: tuple[Device, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("operator"), str):
            data = {**data, "operator": [data["operator"]]}
        return _inject(data, "devices", {"site": data.get("id")})


class InventoryError(ValueError):
    """An inventory that cannot be used; the message names the source and every problem."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems: list[str] = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} inventory {noun}:\n{lines}")


class _Problems(ValueError):
    """Raised inside validation; carries the list so it survives pydantic's wrapping."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _site_loc(index: int, site: Site) -> str:
    return f"sites[{index}] ({site.id})"


class Inventory(_Model):
    province: Province
    districts: tuple[District, ...] = ()
    communes: tuple[Commune, ...]
    sites: tuple[Site, ...] = ()

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
        problems = _cross_problems(self)
        if problems:
            raise _Problems(problems)
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


def _cross_problems(inv: Inventory) -> list[str]:
    problems: list[str] = []
    if not inv.communes:
        problems.append("communes: an inventory needs at least one commune")
    problems += _duplicates(
        ((f"districts[{i}].code", d.code) for i, d in enumerate(inv.districts)), "district code"
    )
    problems += _duplicates(
        ((f"communes[{i}].code", c.code) for i, c in enumerate(inv.communes)), "commune code"
    )
    problems += _duplicates(((f"sites[{i}].id", s.id) for i, s in enumerate(inv.sites)), "site id")

    districts = {d.code for d in inv.districts}
    for i, commune in enumerate(inv.communes):
        if commune.district is not None and commune.district not in districts:
            problems.append(
                f"communes[{i}].district: unknown district {commune.district!r} "
                f"(commune {commune.code})"
            )

    communes = {c.code for c in inv.communes}
    sites = {s.id: s for s in inv.sites}
    for i, site in enumerate(inv.sites):
        where = f"sites[{i}]"
        if site.commune not in communes:
            problems.append(f"{where}.commune: unknown commune {site.commune!r} (site {site.id})")
        if site.parent is not None and site.parent not in sites:
            problems.append(f"{where}.parent: unknown site {site.parent!r} (site {site.id})")
        problems += _device_problems(where, site)
        problems += _technology_problems(where, site)

    problems += _cycle_problems(inv.sites, sites)
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


# -- loading ----------------------------------------------------------------------------


def _validation_problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            problems.extend(cause.problems)
            continue
        loc = format_loc(tuple(error["loc"]))
        message = error["msg"]
        value = error.get("input")
        if error["type"] not in ("missing", "extra_forbidden") and not isinstance(
            value, dict | list
        ):
            message += f" (got {value!r})"
        problems.append(f"{loc}: {message}")
    return problems


def parse_inventory(data: Mapping[str, Any], source: str = "<inventory>") -> Inventory:
    """Validate already-parsed TOML data; InventoryError lists every problem."""
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(source, _validation_problems(exc)) from exc


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory TOML file.

    Raises InventoryError naming the file and each problem with its key path; a TOML
    syntax error names the line and column.
    """
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(source, [f"TOML syntax error: {exc}"]) from exc
    except OSError as exc:
        raise InventoryError(source, [f"cannot read: {exc.strerror or exc}"]) from exc
    return parse_inventory(data, source)


# -- optional check against the official 2025 list --------------------------------------

_DIVISION_PREFIXES = ("xã ", "phường ", "đặc khu ", "thị trấn ", "tỉnh ", "thành phố ")


def _bare_name(name: str) -> str:
    bare = unicodedata.normalize("NFC", name).strip().casefold()
    for prefix in _DIVISION_PREFIXES:
        if bare.startswith(prefix):
            return bare[len(prefix) :]
    return bare


def validate_official_codes(inventory: Inventory) -> list[str]:
    """Problems with the province and commune codes against the official 2025 list.

    Opt-in: needs the ``vietnam-provinces`` package (2025.x, post-merger data), imported
    here only. Codes must be the official numeric ones (province ``08``, commune
    ``02269``), each commune must belong to the province, and names must match the
    official ones, ignoring the division prefix (``Xã``, ``Phường``...) and case.
    Districts are not checked: the 2025 list has none.
    """
    try:
        from vietnam_provinces import Province as OfficialProvince
        from vietnam_provinces import Ward as OfficialWard
    except ImportError as exc:
        raise RuntimeError(
            "checking official codes needs the 'vietnam-provinces' package (2025.x): "
            "pip install 'vietnam-provinces>=2025.8'"
        ) from exc

    problems: list[str] = []
    prov = inventory.province
    official_province: Any = None
    if not prov.code.isdigit():
        problems.append(f"province.code: {prov.code!r} is not an official numeric code")
    else:
        try:
            official_province = OfficialProvince.from_code(int(prov.code))  # type: ignore[arg-type]  # IntEnum lookup by value
        except ValueError:
            problems.append(f"province.code: {prov.code!r} is not an official 2025 province")
    if official_province is not None and _bare_name(prov.name) != _bare_name(
        official_province.name
    ):
        problems.append(
            f"province.name: {prov.name!r} differs from the official {official_province.name!r}"
        )

    for i, commune in enumerate(inventory.communes):
        where = f"communes[{i}]"
        if not commune.code.isdigit():
            problems.append(
                f"{where}.code: {commune.code!r} is not an official numeric commune code"
            )
            continue
        try:
            ward = OfficialWard.from_code(int(commune.code))  # type: ignore[arg-type]  # IntEnum lookup by value
        except ValueError:
            problems.append(f"{where}.code: {commune.code!r} is not an official 2025 commune code")
            continue
        if official_province is not None and ward.province_code != official_province.code:
            problems.append(
                f"{where}.code: {commune.code!r} ({ward.name}) belongs to province "
                f"{int(ward.province_code):02d}, not {prov.code}"
            )
        if _bare_name(commune.name) != _bare_name(ward.name):
            problems.append(
                f"{where}.name: {commune.name!r} differs from the official {ward.name!r}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m xanet.inventory FILE [--official]``: validate and summarise."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m xanet.inventory", description=main.__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--official", action="store_true", help="also check codes against vietnam-provinces"
    )
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(args.file)
    except InventoryError as exc:
        print(exc)
        return 1
    bts = inventory.bts_count_by_technology()
    print(
        f"{args.file}: {inventory.province.name} ({inventory.province.code}): "
        f"{len(inventory.communes)} communes, {len(inventory.sites)} sites, "
        f"{len(inventory.elements)} elements; BTS stations "
        + ", ".join(f"{t}={n}" for t, n in bts.items())
    )
    if args.official:
        problems = validate_official_codes(inventory)
        for problem in problems:
            print(f"  - {problem}")
        if problems:
            print(f"{args.file}: {len(problems)} official-code problems")
            return 1
        print(f"{args.file}: codes and names match the official 2025 list")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
