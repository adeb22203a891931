"""What a site's power alert says, in Vietnamese and English (pure).

``summary_vi`` / ``summary_en``: the commune, the site, the services at risk (the site's
and those of the sites behind it) and the UPS's estimate of the minutes left ("Xã Lũng
Cú: BTS 01 on battery, 2G/4G at risk in ~40 min"); once the site is down on battery:
since when, and since when it ran on battery. The words are templates of
:mod:`xanet.texts`; times as in :mod:`collector.alertsummary` (vi: local time, en: UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.alertsummary import when
from collector.alerttopology import AlertTopology
from xanet.texts import Lang, table, text
from xanet.wire import PowerState


@dataclass(frozen=True, slots=True)
class Quote:
    """What the alert quotes of the site's power."""

    state: PowerState  # on_battery or battery_low
    minutes_remaining: float | None
    charge_pct: float | None
    battery_since: float
    down_since: float | None = None  # the site's outage (cause power) began


def minutes(value: float) -> str:
    """The minutes left as the text shows them: whole minutes, never negative."""
    return str(max(0, round(value)))


def _summary(topology: AlertTopology, site: str, services: Sequence[str], q: Quote,
             lang: Lang) -> str:
    names = table("power_service", lang)
    fields = {"commune_name": topology.commune_names.get(site, ""),
              "site_name": topology.site_names.get(site, site), "site": site,
              "services": "/".join(names.get(s, s) for s in services) or site,
              "battery_since": when(q.battery_since, lang)}
    if q.down_since is not None:
        return text("power.down", lang).format(since=when(q.down_since, lang), **fields)
    left = (text("power.no_minutes", lang) if q.minutes_remaining is None
            else text("power.left", lang).format(minutes=minutes(q.minutes_remaining)))
    return text(f"power.{q.state}", lang).format(left=left, **fields)


def power_summaries(topology: AlertTopology, site: str, services: Sequence[str],
                    q: Quote) -> dict[str, str]:
    """Annotations: ``summary_vi``, ``summary_en``, ``summary``, ``description`` and the
    figures quoted (``on_battery_since``, ``minutes_remaining``, ``charge_pct``)."""
    en = _summary(topology, site, services, q, "en")
    out = {
        "summary_vi": _summary(topology, site, services, q, "vi"),
        "summary_en": en,
        "summary": en,
        "description": "Early warning: the site runs on battery (its UPS says so). Critical "
                       "when the battery is low, or once the site went down on battery (that "
                       "outage, cause power, is carried by this alert, not paged apart).",
        "on_battery_since": when(q.battery_since, "en"),
    }
    if q.minutes_remaining is not None:
        out["minutes_remaining"] = minutes(q.minutes_remaining)
    if q.charge_pct is not None:
        out["charge_pct"] = f"{q.charge_pct:g}"
    return out
