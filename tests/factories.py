"""Builders of valid wire messages and small inventories for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lab.fleet import inventory_text
from xanet import wire


def interface(index: int = 1, **kw: object) -> wire.InterfacePoll:
    base: dict[str, object] = dict(index=index, name=f"ge-0/0/{index}", oper=1, admin=1,
                                   speed_bps=1_000_000_000, hc=True, in_octets=1000 * index,
                                   out_octets=2000 * index)
    base.update(kw)
    return wire.InterfacePoll.model_validate(base)


def poll(device: str = "rtr1", ts: datetime | None = None, n_if: int = 2,
         **kw: object) -> wire.DevicePoll:
    base: dict[str, object] = dict(device=device, ts=ts or datetime.now(UTC), reachable=True,
                                   rtt_ms=3.5, uptime_cs=123456,
                                   interfaces=[interface(i) for i in range(1, n_if + 1)])
    base.update(kw)
    return wire.DevicePoll.model_validate(base)


def telemetry(seq: int = 0, site: str = "site-a", agent: str = "agent-a",
              polls: list[wire.DevicePoll] | None = None) -> wire.Telemetry:
    return wire.Telemetry(agent=agent, site=site, seq=seq, polls=polls or [poll()])


TOPIC = "xanet/v1/ha-giang/00688/site-a/telemetry"
STATUS_TOPIC = "xanet/v1/ha-giang/00688/site-a/status"


# ------------------------------------------------------------------ inventories as TOML

#: The province every small test inventory belongs to, and its communes by code.
PROVINCE = {"code": "08", "name": "Tuyên Quang"}
LAM_BINH = {"02266": "Xã Lâm Bình"}
LAM_BINH_THUONG_LAM = {**LAM_BINH, "02269": "Xã Thượng Lâm"}

Element = str | dict[str, Any]


def inv_device(device_id: str, *elements: Element, monitor: str | None = None) -> dict[str, Any]:
    """One inventory device; an element is a service name or a whole element table
    (``{"service": "fibre", "interface": "xe-0/0/0"}``)."""
    dev: dict[str, Any] = {"id": device_id}
    if monitor is not None:
        dev["monitor"] = monitor
    dev["elements"] = [{"service": e} if isinstance(e, str) else e for e in elements]
    return dev


def inv_site(site_id: str, commune: str = "02266", role: str = "hub", *,
         devices: list[dict[str, Any]], **keys: Any) -> dict[str, Any]:
    """One inventory site; ``keys`` are its other keys (name, agent, parent,
    technologies) in the order given."""
    return {"id": site_id, "commune": commune, "role": role, **keys, "devices": devices}


def inventory_data(*sites: dict[str, Any], communes: dict[str, str] | None = None,
                   province: dict[str, str] | None = None) -> dict[str, Any]:
    """The inventory as ``tomllib`` would read it (for ``parse_inventory``)."""
    return {"province": province or PROVINCE,
            "communes": [{"code": code, "name": name}
                         for code, name in (communes or LAM_BINH).items()],
            "sites": list(sites)}


def inventory_toml(*sites: dict[str, Any], communes: dict[str, str] | None = None,
                   province: dict[str, str] | None = None) -> str:
    """A small inventory as TOML text, e.g. ``inventory_toml(inv_site("hub-a",
    agent="agt-a", devices=[inv_device("rtr-1", "fibre")]))``."""
    return inventory_text(inventory_data(*sites, communes=communes, province=province))
