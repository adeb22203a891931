"""The annotations of an outage alert: what it says, in Vietnamese and English (pure).

``summary_vi`` / ``summary_en`` name the unit, where it is and since when (local time in
Vietnamese, UTC in English), ``description`` says what kind of outage it is, and a root's
``children`` list the sites behind it that were affected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from collector.alerttopology import AlertTopology, Unit
from collector.outagemachine import Condition
from xanet.inventory import SERVICE_LABELS_VI, Service

_ICT = timezone(timedelta(hours=7))  # Vietnam: UTC+7, no daylight saving


def _when_vi(ts: float) -> str:
    return datetime.fromtimestamp(ts, _ICT).strftime("%H:%M:%S %d/%m/%Y")


def _when_en(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _services_vi(services: Iterable[str]) -> str:
    out = []
    for s in services:
        try:
            out.append(SERVICE_LABELS_VI[Service(s)])
        except ValueError:
            out.append(s)
    return ", ".join(out)


_STATE_VI: Final[Mapping[Condition, str]] = {
    "active": "mất", "unknown": "không xác định", "clear": "hoạt động"}
_STATE_EN: Final[Mapping[Condition, str]] = {
    "active": "down", "unknown": "unknown", "clear": "up"}


def summaries(topology: AlertTopology, unit: Unit, started_at: float,
              children: Sequence[tuple[str, Condition]] = ()) -> dict[str, str]:
    """Annotations: ``summary_vi``, ``summary_en``, ``description``, ``children``."""
    site = unit.site
    where_vi = f"trạm {site} ({topology.site_names[site]}, {topology.commune_names[site]})"
    where_en = f"site {site} ({topology.site_names[site]}, {topology.commune_names[site]})"
    since_vi, since_en = _when_vi(started_at), _when_en(started_at)
    svc_vi, svc_en = _services_vi(unit.services), ", ".join(unit.services)
    labels = unit.labels
    if unit.kind == "site":
        vi = f"Mất kết nối {where_vi}: đường truyền lên bị mất từ {since_vi}"
        en = f"Site {where_en.removeprefix('site ')} cut off: uplink down since {since_en}"
        if children:
            vi += f"; {len(children)} trạm phía sau bị ảnh hưởng: " + ", ".join(
                f"{s} ({_STATE_VI[c]})" for s, c in children)
            en += f"; {len(children)} site(s) behind it affected: " + ", ".join(
                f"{s} ({_STATE_EN[c]})" for s, c in children)
        desc = (f"Root outage. Services of the site: {svc_en}. Sites behind it are not "
                "alerted separately.")
    elif unit.kind == "device":
        dev = labels["device"]
        vi = f"Thiết bị {dev} tại {where_vi} không hoạt động từ {since_vi} ({svc_vi})"
        en = f"Device {dev} at {where_en} down since {since_en} ({svc_en})"
        desc = "The device does not answer, or every monitored interface of it is down."
    elif unit.kind == "element":
        dev, iface = labels["device"], labels["interface"]
        vi = (f"Cổng {iface} của thiết bị {dev} tại {where_vi} bị mất từ {since_vi} "
              f"({svc_vi})")
        en = f"Interface {iface} of {dev} at {where_en} down since {since_en} ({svc_en})"
        desc = "The device answers; this interface's operational status is down."
    else:
        agent = labels["agent"]
        sites = ", ".join(unit.sites)
        vi = (f"Agent giám sát {agent} ({where_vi}) im lặng từ {since_vi}: trạng thái của "
              f"trạm {sites} KHÔNG XÁC ĐỊNH (không tính là mất dịch vụ)")
        en = (f"Monitoring agent {agent} ({where_en}) silent since {since_en}: the state of "
              f"site(s) {sites} is UNKNOWN (not counted as down)")
        desc = ("A monitoring blind spot, not an outage: the Last Will arrived or no data "
                "came in time. No device alert is raised for these sites meanwhile.")
    return {
        "summary_vi": vi,
        "summary_en": en,
        "summary": en,
        "description": desc,
        **({"children": ",".join(s for s, _ in children)} if children else {}),
    }
