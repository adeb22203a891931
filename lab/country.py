"""The country the load generator plays: 34 provinces of agents, sites and devices, and
each partition's inventory.

Every province is ``config/inventory.province.toml`` (one real province, 124 communes,
1,292 sites, 396 agents, 1,810 devices) with its ids made country-unique: every commune
code, site id and agent id is prefixed with the province code (``08-00691``,
``08-hub-00691``, ``08-agt-00691``); the province codes are the 34 official ones of 2025.
Extra BTS devices (``xbts-N``, one device element each, counted for the site's first
technology) bring a province to ``devices_per_province`` (default 3,000: 34 x 3,000
devices polled every 60 s = 1,700 polls/s, the issue's country); each agent keeps the
inventory's sites. One ``probe`` device per province (on its first agent's own site, no
element: known, never unmapped, no availability) is polled every second: its points are
the bench's lag markers.

Deterministic: the same arguments give the same shape, so the generator's process and
the bench's inventories agree without talking. No sockets, no clocks.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lab.fleet import inventory_text

ROOT = Path(__file__).resolve().parent.parent
PROVINCE_TEMPLATE = ROOT / "config" / "inventory.province.toml"

#: The 34 provinces and cities of Viet Nam since July 2025 (official codes, as the
#: ``vietnam-provinces`` package lists them).
PROVINCES: tuple[str, ...] = (
    "01", "04", "08", "11", "12", "14", "15", "19", "20", "22", "24", "25", "31", "33",
    "37", "38", "40", "42", "44", "46", "48", "51", "52", "56", "66", "68", "75", "79",
    "80", "82", "86", "91", "92", "96")

#: ~10 interfaces per device, named as the template's elements name them.
INTERFACES: dict[str, tuple[str, ...]] = {
    "rtr": ("xe-0/0/0", "xe-0/0/1", *(f"ge-0/0/{i}" for i in range(8))),
    "olt": ("gpon-0/1", "gpon-0/2", "gpon-0/3", "gpon-0/4", *(f"ge-0/0/{i}" for i in range(6))),
    "csr": tuple(f"ge-0/0/{i}" for i in range(10)),
    "bts": tuple(f"eth{i}" for i in range(10)),
}
PROBE = "probe"
_POLLING = ("host", "address", "port", "snmp_version", "credentials", "profiles", "interval_s")
_SERVICE = {"2g": "mobile_2g", "3g": "mobile_3g", "4g": "mobile_4g"}


def kind_of(device_id: str) -> str:
    for kind in ("rtr", "olt", "csr"):
        if device_id.startswith(kind):
            return kind
    return "bts"


@dataclass(frozen=True, slots=True)
class Device:
    province: str
    commune: str
    site: str
    id: str
    interfaces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent: the site its box sits at (its status topic) and the devices it polls."""

    id: str
    province: str
    commune: str
    site: str
    devices: tuple[Device, ...]


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    agents: tuple[Agent, ...]
    probe: Device  # polled every second, by agents[0]

    @property
    def devices(self) -> int:
        return sum(len(a.devices) for a in self.agents)


@cache
def _template() -> dict[str, Any]:
    return tomllib.loads(PROVINCE_TEMPLATE.read_text())


def province_raw(code: str, devices_per_province: int) -> dict[str, Any]:
    """The province's inventory as the TOML shape (the template, ids prefixed, extra BTS
    devices and the probe added)."""
    raw = copy.deepcopy(_template())
    p = f"{code}-"
    raw["province"] = {"code": code, "name": f"{raw['province']['name']} ({code})"}
    for c in raw["communes"]:
        c["code"] = p + c["code"]
    for s in raw["sites"]:
        s["id"] = p + s["id"]
        s["commune"] = p + s["commune"]
        if s.get("parent"):
            s["parent"] = p + s["parent"]
        if s.get("agent"):
            s["agent"] = p + s["agent"]
    for a in raw.get("agents", []):
        a["id"] = p + a["id"]
        a["site"] = p + a["site"]
    count = sum(len(s.get("devices", [])) for s in raw["sites"])
    bts = [s for s in raw["sites"] if s["role"] == "bts"]
    i = 0
    while count < devices_per_province and bts:
        site = bts[i % len(bts)]
        tech = sorted(site.get("technologies", ["2g"]))[0]
        site["devices"].append({"id": f"xbts-{i // len(bts)}",
                                "elements": [{"service": _SERVICE[tech]}]})
        count += 1
        i += 1
    first = raw["agents"][0]
    home = next(s for s in raw["sites"] if s["id"] == first["site"])
    home["devices"].append({"id": PROBE})
    return raw


def province(code: str, devices_per_province: int) -> Province:
    raw = province_raw(code, devices_per_province)
    sites = {s["id"]: s for s in raw["sites"]}
    by_agent: dict[str, list[Device]] = {a["id"]: [] for a in raw["agents"]}
    probe = None
    for s in raw["sites"]:
        for d in s.get("devices", []):
            dev = Device(code, s["commune"], s["id"], d["id"], INTERFACES[kind_of(d["id"])])
            if d["id"] == PROBE:
                probe = dev
            else:
                by_agent.setdefault(s["agent"], []).append(dev)
    assert probe is not None
    agents = []
    for a in raw["agents"]:
        home = sites[a["site"]]
        agents.append(Agent(a["id"], code, home["commune"], a["site"],
                            tuple(by_agent[a["id"]])))
    return Province(code, tuple(agents), probe)


def country(provinces: list[str], devices_per_province: int) -> list[Province]:
    return [province(code, devices_per_province) for code in provinces]


def split(provinces: list[str], k: int) -> list[list[str]]:
    """``provinces`` in ``k`` partitions as even as they go (round robin)."""
    return [provinces[i::k] for i in range(k)]


def partition_inventory(provinces: list[str], devices_per_province: int,
                        partition: str) -> str:
    """One inventory holding every province of a partition (TOML text).

    The inventory model holds one ``[province]``: the partition's is named after the
    partition (``code = partition``); its communes, sites and agents are the provinces'
    (country-unique ids), so every element maps and the availability engine sees all of
    them. Only the province tag of the availability rows is the partition's.
    """
    raws = [province_raw(code, devices_per_province) for code in provinces]
    merged: dict[str, Any] = {
        "province": {"code": partition, "name": f"partition {partition}: "
                     + ", ".join(provinces)},
        "communes": [c for r in raws for c in r["communes"]],
        "sites": [s for r in raws for s in r["sites"]],
    }
    for site in merged["sites"]:
        for dev in site.get("devices", []):
            for key in _POLLING:
                dev.pop(key, None)  # how a device is polled: the generator does not poll
    agents = [a for r in raws for a in r.get("agents", [])]
    return inventory_text(merged) + "".join(
        f'\n[[agents]]\nid = "{a["id"]}"\nsite = "{a["site"]}"\n' for a in agents)
