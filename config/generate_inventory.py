"""Generate ``config/inventory.province.toml``: a realistic, province-scale inventory.

    python config/generate_inventory.py                    # Tuyên Quang (08), seed 2025
    python config/generate_inventory.py --province 15 --seed 7 --output /tmp/lao-cai.toml

Deterministic: the same package data, province and seed give byte-identical output.

Real: the province and every commune/ward (official 2025 codes and names) come from the
``vietnam-provinces`` package (2025.x), which must be installed to run this script.
Made up: every site, device, interface, host and agent, the BTS placement and the uplink
tree, drawn from a seeded RNG to match the province figures in DESIGN.md:

* fibre to every commune centre: one hub site per commune, each with a fibre uplink
  element (15% with a second, redundant uplink);
* broadband in 98% of communes (rounded): an OLT with one or two PON-port elements;
* BTS: 2,418 base stations = 783 2G + 932 3G + 703 4G. The provincial figures count
  stations per technology (they sum exactly to 2,418), so a physical BTS site carrying 2G,
  3G and 4G counts three times. The generator co-locates technologies the way towers are
  shared: 1,168 physical BTS sites whose technologies add up to exactly those counts (see
  ``TECHNOLOGY_MIX``); ``Inventory.bts_count_by_technology()`` gives the figures back.
* uplink tree: ~60% of BTS hang directly behind their commune's hub, ~25% behind another
  BTS of the commune (microwave chains, at most 3 deep), the rest have their own backhaul
  (no parent).
* polling data (no random draw: the plan above is unchanged by it): every device has a
  management address ``10.8.{commune index}.{n}`` and credentials (``tq-v3``, SNMPv3;
  the 2G radios ``legacy-v2c``); routers and OLTs poll ``if-mib`` and ``entity-sensor``,
  radios every 120 s; every agent is declared in ``[[agents]]`` at the site it sits at
  (a hub's agent at the hub, a BTS's own agent at that BTS), so
  ``xanet inventory agent-config AGENT`` renders each agent's config.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from xanet.inventory import (
    TECHNOLOGY_SERVICE,
    Technology,
    load_inventory,
    validate_official_codes,
)

DEFAULT_PROVINCE = 8  # Tuyên Quang (absorbed Hà Giang in July 2025)
DEFAULT_SEED = 2025
DEFAULT_OUTPUT = Path(__file__).with_name("inventory.province.toml")

BROADBAND_SHARE = 0.98
SECOND_FIBRE_SHARE = 0.15
SECOND_PON_SHARE = 0.40

# (technologies, number of physical BTS sites). Stations per technology:
#   2G: 400 + 200 + 183       = 783
#   3G: 400 + 250 + 200 + 82  = 932
#   4G: 400 + 250 + 53        = 703      total 2,418 stations on 1,168 sites.
TECHNOLOGY_MIX: tuple[tuple[tuple[Technology, ...], int], ...] = (
    ((Technology.G2, Technology.G3, Technology.G4), 400),
    ((Technology.G3, Technology.G4), 250),
    ((Technology.G2, Technology.G3), 200),
    ((Technology.G2,), 183),
    ((Technology.G3,), 82),
    ((Technology.G4,), 53),
)
EXPECTED_STATIONS = {Technology.G2: 783, Technology.G3: 932, Technology.G4: 703}

OPERATORS = (("Viettel", 0.45), ("VNPT", 0.35), ("MobiFone", 0.20))
# Ports of a cell-site router towards each radio unit.
CSR_PORT = {Technology.G2: "ge-0/0/1", Technology.G3: "ge-0/0/2", Technology.G4: "ge-0/0/3"}
# Radio equipment polled directly (reachability), when there is no cell-site router.
RADIO_DEVICE = {Technology.G2: "bts-2g", Technology.G3: "nodeb", Technology.G4: "enodeb"}


@dataclass
class Bts:
    index: int  # 1-based within the commune
    technologies: tuple[Technology, ...]
    operator: str
    parent: str | None = None
    depth: int = 1  # hops from the hub (1 = directly behind it); 0 = own backhaul
    own_agent: bool = False
    use_csr: bool = True


@dataclass
class CommunePlan:
    code: str
    name: str
    urban: bool
    broadband: bool = True
    fibre_ports: int = 1
    pon_ports: int = 1
    bts: list[Bts] = field(default_factory=list)


def q(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def bare(name: str) -> str:
    for prefix in ("Xã ", "Phường ", "Đặc khu "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def ascii_fold(name: str) -> str:
    folded = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in folded if not unicodedata.combining(c))


def pick_operator(rng: random.Random) -> str:
    names = [n for n, _ in OPERATORS]
    weights = [w for _, w in OPERATORS]
    return rng.choices(names, weights)[0]


def plan(province_code: int, seed: int) -> tuple[str, str, list[CommunePlan]]:
    from vietnam_provinces import Province, VietNamDivisionType, Ward

    rng = random.Random(seed)
    province = Province.from_code(province_code)  # type: ignore[arg-type]  # IntEnum by value
    wards = sorted(Ward.iter_by_province(province.code), key=lambda w: int(w.code))
    communes = [
        CommunePlan(
            code=f"{int(w.code):05d}",
            name=w.name,
            urban=w.division_type == VietNamDivisionType.PHUONG,
        )
        for w in wards
    ]

    # Broadband: 98% of communes; the ones without are rural communes.
    without = len(communes) - round(len(communes) * BROADBAND_SHARE)
    rural = [c for c in communes if not c.urban]
    for commune in rng.sample(rural, without):
        commune.broadband = False
    for commune in communes:
        commune.fibre_ports = 2 if rng.random() < SECOND_FIBRE_SHARE else 1
        commune.pon_ports = 2 if rng.random() < SECOND_PON_SHARE else 1

    # BTS: every commune gets at least 3 physical sites, the rest by weight (wards denser).
    mix = [techs for techs, count in TECHNOLOGY_MIX for _ in range(count)]
    rng.shuffle(mix)
    weights = [3.0 if c.urban else rng.uniform(0.5, 1.6) for c in communes]
    owners = list(range(len(communes))) * 3
    owners += rng.choices(range(len(communes)), weights, k=len(mix) - len(owners))
    rng.shuffle(owners)
    for techs, owner in zip(mix, owners, strict=True):
        commune = communes[owner]
        commune.bts.append(
            Bts(
                index=len(commune.bts) + 1,
                technologies=tuple(sorted(techs)),
                operator=pick_operator(rng),
                use_csr=rng.random() < 0.7,
            )
        )

    # Uplink tree within each commune.
    for commune in communes:
        hub = hub_id(commune)
        for bts in commune.bts:
            roll = rng.random()
            chainable = [b for b in commune.bts[: bts.index - 1] if 1 <= b.depth < 3]
            if roll < 0.60 or (roll < 0.85 and not chainable):
                bts.parent, bts.depth = hub, 1
            elif roll < 0.85:
                upstream = rng.choice(chainable)
                bts.parent, bts.depth = bts_id(commune, upstream), upstream.depth + 1
            else:
                bts.parent, bts.depth = None, 0
            bts.own_agent = bts.parent is None or rng.random() < 0.10
    return f"{int(province.code):02d}", province.name, communes


def hub_id(commune: CommunePlan) -> str:
    return f"hub-{commune.code}"


def bts_id(commune: CommunePlan, bts: Bts) -> str:
    return f"bts-{commune.code}-{bts.index:02d}"


def render(province_code: str, province_name: str, communes: list[CommunePlan], seed: int) -> str:
    from vietnam_provinces import __data_version__, __version__

    stations = {t: 0 for t in Technology}
    for commune in communes:
        for bts in commune.bts:
            for tech in bts.technologies:
                stations[tech] += 1
    n_bts = sum(len(c.bts) for c in communes)
    lines = [
        "# GENERATED by config/generate_inventory.py -- do not edit by hand; re-run it.",
        f"# seed={seed} province={province_code}; communes from vietnam-provinces "
        f"{__version__} (data {__data_version__}).",
        "# Real: province and commune codes/names (official 2025 list). Made up: every",
        "# site, device, interface, host, agent and the uplink tree.",
        f"# {len(communes)} communes, {sum(c.broadband for c in communes)} with broadband; "
        f"{n_bts} BTS sites carrying "
        f"{sum(stations.values())} stations (2g={stations[Technology.G2]}, "
        f"3g={stations[Technology.G3]}, 4g={stations[Technology.G4]}).",
        "# Format: docs/inventory.md.",
        "",
        "[province]",
        f"code = {q(province_code)}",
        f"name = {q(province_name)}",
        "",
        *MANAGEMENT,
    ]
    for commune in communes:
        lines += ["[[communes]]", f"code = {q(commune.code)}", f"name = {q(commune.name)}", ""]
    for commune in communes:
        lines += ["[[agents]]", f"id = {q('agt-' + commune.code)}", f"site = {q(hub_id(commune))}",
                  ""]
        for bts in commune.bts:
            if bts.own_agent:
                site = bts_id(commune, bts)
                lines += ["[[agents]]", f"id = {q('agt-' + site)}", f"site = {q(site)}", ""]
    for number, commune in enumerate(communes):
        lines += render_hub(commune, number)
        host = 10
        for bts in commune.bts:
            lines += render_bts(commune, bts, number, host)
            host += 4
    return "\n".join(lines)


# What every agent config rendered from the file gets (docs/inventory.md, "Agent configs").
MANAGEMENT = [
    "[agent_defaults]",
    'credentials = "tq-v3"          # devices naming no credentials',
    'secrets_dir = "/etc/xanet/snmp"  # a credentials table\'s absent secrets: files here',
    "mqtt = { host = \"mqtt.tuyen-quang.example\", port = 8883, tls = true, "
    "ca_file = \"/etc/xanet/ca.crt\", password = { file = \"/etc/xanet/mqtt.password\" } }",
    'spool = { path = "/var/lib/xanet/agent-spool.sqlite3" }',
    "",
    "[credentials.tq-v3]             # no secret here: the site box reads them from files",
    'version = "3"',
    'user = "xanet"',
    'auth_protocol = "SHA256"',
    'priv_protocol = "AES"',
    "",
    "[credentials.legacy-v2c]        # the 2G radios speak v2c only",
    'version = "2c"',
    'community = { env = "XANET_SNMP_COMMUNITY" }',
    "",
]
ROUTER_PROFILES = '["if-mib", "entity-sensor"]'


def management(number: int, host: int, credentials: str | None = None,
               profiles: str | None = None, interval_s: int | None = None) -> list[str]:
    """A device's polling data: its address in the commune's /24, what it is polled with."""
    lines = [f"  address = {q(f'10.8.{number}.{host}')}"]
    if credentials is not None:
        lines += [f"  credentials = {q(credentials)}", '  snmp_version = "2c"']
    if profiles is not None:
        lines.append(f"  profiles = {profiles}")
    if interval_s is not None:
        lines.append(f"  interval_s = {interval_s}")
    return lines


def elements(items: Iterable[tuple[str, str | None]]) -> str:
    parts = [
        f"{{ service = {q(service)} }}"
        if interface is None
        else f"{{ service = {q(service)}, interface = {q(interface)} }}"
        for service, interface in items
    ]
    return "elements = [" + ", ".join(parts) + "]"


def render_hub(commune: CommunePlan, number: int) -> list[str]:
    site = hub_id(commune)
    slug = ascii_fold(bare(commune.name)).lower().replace(" ", "-")
    lines = [
        "[[sites]]",
        f"id = {q(site)}",
        f"commune = {q(commune.code)}",
        'role = "hub"',
        f"name = {q('Trung tâm ' + commune.name[0].lower() + commune.name[1:])}",
        f"agent = {q('agt-' + commune.code)}",
        "  [[sites.devices]]",
        '  id = "rtr-1"',
        f"  host = {q(f'rtr-1.{slug}.example')}",
        *management(number, 1, profiles=ROUTER_PROFILES),
        "  " + elements(("fibre", f"xe-0/0/{port}") for port in range(commune.fibre_ports)),
    ]
    if commune.broadband:
        lines += [
            "  [[sites.devices]]",
            '  id = "olt-1"',
            f"  host = {q(f'olt-1.{slug}.example')}",
            *management(number, 2, profiles=ROUTER_PROFILES),
            "  "
            + elements(("broadband", f"gpon-0/{port}") for port in range(1, commune.pon_ports + 1)),
        ]
    return [*lines, ""]


def render_bts(commune: CommunePlan, bts: Bts, number: int, host: int) -> list[str]:
    site = bts_id(commune, bts)
    agent = f"agt-{site}" if bts.own_agent else f"agt-{commune.code}"
    lines = [
        "[[sites]]",
        f"id = {q(site)}",
        f"commune = {q(commune.code)}",
        'role = "bts"',
        f"name = {q(f'{bts.operator} {bare(commune.name)} {bts.index:02d}')}",
    ]
    if bts.parent is not None:
        lines.append(f"parent = {q(bts.parent)}")
    lines += [
        "technologies = [" + ", ".join(q(t) for t in bts.technologies) + "]",
        f"agent = {q(agent)}",
        f"operator = [{q(bts.operator)}]",
    ]
    if bts.use_csr:
        lines += [
            "  [[sites.devices]]",
            '  id = "csr-1"',
            *management(number, host, profiles=ROUTER_PROFILES),
            "  " + elements((TECHNOLOGY_SERVICE[t], CSR_PORT[t]) for t in bts.technologies),
        ]
    else:
        for offset, tech in enumerate(bts.technologies, start=1):
            legacy = "legacy-v2c" if tech == Technology.G2 else None
            lines += [
                "  [[sites.devices]]",
                f"  id = {q(RADIO_DEVICE[tech])}",
                *management(number, host + offset, legacy, interval_s=120),
                "  " + elements([(TECHNOLOGY_SERVICE[tech], None)]),
            ]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--province", type=int, default=DEFAULT_PROVINCE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    code, name, communes = plan(args.province, args.seed)
    args.output.write_text(render(code, name, communes, args.seed) + "\n", encoding="utf-8")

    inventory = load_inventory(args.output)  # the generated file must validate
    problems = validate_official_codes(inventory)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    counts = inventory.bts_count_by_technology()
    if counts != EXPECTED_STATIONS:
        print(f"BTS stations {counts} != {EXPECTED_STATIONS}", file=sys.stderr)
        return 1
    print(
        f"{args.output}: {name}: {len(inventory.communes)} communes, "
        f"{len(inventory.sites)} sites, {len(inventory.elements)} elements, "
        f"stations {', '.join(f'{t}={n}' for t, n in counts.items())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
