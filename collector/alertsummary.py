"""The annotations of an outage alert: what it says, in Vietnamese and English (pure).

``summary_vi`` / ``summary_en`` name the unit, where it is and since when (local time in
Vietnamese, UTC in English) and the outage's cause, ``description`` says what kind of
outage it is, and a root's ``children`` list the sites behind it that were affected. The
words are templates of :mod:`xanet.texts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from collector.alerttopology import AlertTopology, Unit
from collector.outagemachine import Condition
from xanet.texts import Lang, table, text

_ICT = timezone(timedelta(hours=7))  # Vietnam: UTC+7, no daylight saving


def when(ts: float, lang: Lang) -> str:
    """Vietnamese: local time (ICT) day first; English: UTC."""
    if lang == "vi":
        return datetime.fromtimestamp(ts, _ICT).strftime("%H:%M:%S %d/%m/%Y")
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _services(services: Iterable[str], lang: Lang) -> str:
    """Vietnamese: the services' names; English: their ids."""
    if lang == "en":
        return ", ".join(services)
    names = table("service", lang)
    return ", ".join(names.get(s, s) for s in services)


def _summary(topology: AlertTopology, unit: Unit, started_at: float,
             children: Sequence[tuple[str, Condition]], cause: str | None,
             lang: Lang) -> str:
    site, labels = unit.site, unit.labels
    fields = {"site": site, "site_name": topology.site_names[site],
              "commune_name": topology.commune_names[site], "since": when(started_at, lang),
              "services": _services(unit.services, lang), "device": labels.get("device"),
              "interface": labels.get("interface"), "agent": labels.get("agent"),
              "sites": ", ".join(unit.sites)}
    fields["where"] = text("alert.where", lang).format(**fields)
    out = text(f"alert.{unit.kind}", lang).format(**fields)
    if unit.kind == "site" and children:
        out += text("alert.site_children", lang).format(
            count=len(children),
            children=", ".join(f"{s} ({text(f'condition.{c}', lang)})" for s, c in children))
    if cause:
        out += text("alert.cause", lang).format(cause=text(f"cause.{cause}", lang))
    return out


_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "device": "The device does not answer, or every monitored interface of it is down.",
    "element": "The device answers; this interface's operational status is down.",
    "agent": "A monitoring blind spot, not an outage: the Last Will arrived or no data came "
             "in time. No device alert is raised for these sites meanwhile.",
}


def summaries(topology: AlertTopology, unit: Unit, started_at: float,
              children: Sequence[tuple[str, Condition]] = (),
              cause: str | None = None) -> dict[str, str]:
    """Annotations: ``summary_vi``, ``summary_en``, ``description``, ``children``; the
    summaries end with the ``cause`` when there is one."""
    en = _summary(topology, unit, started_at, children, cause, "en")
    if unit.kind == "site":
        desc = (f"Root outage. Services of the site: {', '.join(unit.services)}. Sites "
                "behind it are not alerted separately.")
    else:
        desc = _DESCRIPTIONS[unit.kind]
    return {
        "summary_vi": _summary(topology, unit, started_at, children, cause, "vi"),
        "summary_en": en,
        "summary": en,
        "description": desc,
        **({"children": ",".join(s for s, _ in children)} if children else {}),
    }
