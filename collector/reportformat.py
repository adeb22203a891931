"""How one figure of a report reads for people, in Vietnamese or English: percentages,
durations, times and zones, service names, statuses (pure).

Percentages are truncated, never rounded up past a target; Vietnamese uses a decimal
comma. The words come from :mod:`xanet.texts`.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from collector.report import Stations, Status
from xanet.texts import Lang, table, text


def service_label(service: str, lang: Lang) -> str:
    """The service's name in ``lang`` (an unknown service: its id)."""
    return table("service", lang).get(service, service)


def format_duration(seconds: float, lang: Lang) -> str:
    """Human downtime: ``45s``, ``12m 05s``, ``1h 02m``, ``2d 03h 04m`` (vi: giây/phút/giờ/ngày)."""
    total = round(seconds)
    d, rem = divmod(total, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    unit = ("seconds" if total < 60 else "minutes" if total < 3600
            else "hours" if total < 86400 else "days")
    return text(f"duration.{unit}", lang).format(d=d, h=h, m=m, s=s)


def format_pct(value: float, lang: Lang, decimals: int = 3) -> str:
    """A percentage for people: truncated (never rounded up past a target), vi decimal comma."""
    scale = 10**decimals
    truncated = math.floor(value * scale + 1e-6) / scale
    out = f"{truncated:.{decimals}f}"
    return out.replace(".", ",") if lang == "vi" else out


def format_target(value: float, lang: Lang) -> str:
    out = f"{value:g}"
    return out.replace(".", ",") if lang == "vi" else out


def zone_label(tz: str, ts: float) -> str:
    """``UTC``, or ``Asia/Ho_Chi_Minh, UTC+07:00``: the zone every printed time is in."""
    if tz == "UTC":
        return "UTC"
    offset = datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%z")
    return f"{tz}, UTC{offset[:3]}:{offset[3:]}"


def format_time(ts: float, tz: str, *, zone: bool = False, seconds: bool | None = None) -> str:
    """Local wall time ``2026-11-01 07:00`` (seconds shown when ``seconds``, or by default
    when the time is not on a whole minute), with ``+07`` appended when ``zone``."""
    local = datetime.fromtimestamp(ts, ZoneInfo(tz))
    if seconds is None:
        seconds = round(ts) % 60 != 0
    out = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    if zone:
        off = local.strftime("%z")
        out += " " + (off[:3] if off.endswith("00") else f"{off[:3]}:{off[3:]}")
    return out


def status_text(status: Status, lang: Lang) -> str:
    t = table("report", lang)
    return {"met": t["yes"], "failed": t["no"], "insufficient": t["insufficient"],
            "no_data": t["no_data"]}[status]


def stations_text(stations: Stations | None, lang: Lang) -> str:
    if stations is None:
        return ""
    pct = "-" if stations.up_pct is None else format_pct(stations.up_pct, lang, 1)
    key = "stations_none_down" if stations.most_down == 0 else "stations_cell"
    return text(f"report.{key}", lang).format(pct=pct, down=stations.most_down,
                                               total=stations.total)

