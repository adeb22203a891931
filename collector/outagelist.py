"""The outage list operators are asked to explain (pure).

Built from the element timelines read back from storage, so it lists every outage the
data shows, alerted or not:

* a site is **affected** while any of its elements is down; the services affected are
  those of its down elements;
* it is **dark** while all of its elements are down;
* an affected period whose site hangs behind a dark ancestor (inventory ``parent``) when it
  begins, or within ``tolerance_s`` of that (polls are not simultaneous), belongs to the
  outage of the topmost such ancestor: the **root** (root cause: that site's uplink, i.e.
  transmission for the sites behind it);
* **cause**: ``power`` when the root's alert (its ``outage`` point) says the root went
  down on battery; else ``transmission`` when sites behind the root went dark with it;
  else ``site`` (docs/alerts.md, "Cause");
* **alerted**: an ``outage`` point (an alert the collector raised) for one of the affected
  sites overlaps it; **maintenance**: an affected site was in declared maintenance during
  it, or the alert point says so.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from collector.report import service_rank
from collector.reportformat import format_duration, format_time, service_label, zone_label
from collector.timeline import Step, combine_any, spans
from xanet.inventory import Inventory
from xanet.texts import Lang, table


@dataclass(frozen=True, slots=True)
class AlertedPeriod:
    """An alert the collector raised, as read back from the ``outage`` measurement."""

    site: str
    start: float
    end: float | None  # None: still open
    maintenance: bool = False
    cause: str = ""  # power, transmission, site (empty: an older point, or an agent's)


@dataclass(slots=True)
class Outage:
    root: str  # site id of the root cause
    commune: str
    start: float
    end: float
    ongoing: bool  # still down at the end of the window
    sites: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    alerted: bool = False
    maintenance: bool = False
    power: bool = False  # the root's alert says it went down on battery (cause power)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def cause(self) -> str:
        """``power`` when the root's alert says so (it went down on battery), else
        ``transmission`` when sites behind the root went dark with it, else ``site``."""
        if self.power:
            return "power"
        return "transmission" if len(self.sites) > 1 else "site"


def _down_periods(
    timelines: Sequence[Sequence[Step]], start: float, end: float
) -> list[tuple[float, float]]:
    pieces = sorted((a, b) for t in timelines for a, b, s in spans(t, start, end) if s == "down")
    merged: list[tuple[float, float]] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _dark_at(dark: Sequence[Step], times: Sequence[float], a: float, b: float) -> bool:
    """Whether the timeline (with its change times ``times``) is down somewhere in [a, b)."""
    i = bisect.bisect_right(times, a)
    if i > 0 and dark[i - 1][1] == "down":
        return True
    j = bisect.bisect_left(times, b)
    return any(s == "down" for _, s in dark[i:j])


def build_outages(
    inventory: Inventory,
    elements: Mapping[str, Sequence[Step]],
    *,
    window_start: float,
    window_end: float,
    alerted: Iterable[AlertedPeriod] = (),
    tolerance_s: float = 120.0,
    min_duration_s: float = 0.0,
) -> list[Outage]:
    """Outages over ``[window_start, window_end)``, in start order."""
    start, end = window_start, window_end
    per_site: dict[str, list[tuple[str, Sequence[Step]]]] = {}
    for site in inventory.sites:
        for device in site.devices:
            for el in device.elements:
                per_site.setdefault(site.id, []).append(
                    (str(el.service), elements.get(el.key, ())))
    dark = {sid: combine_any([t for _, t in items]) for sid, items in per_site.items()}
    dark_times = {sid: [c[0] for c in t] for sid, t in dark.items()}
    periods = {sid: _down_periods([t for _, t in items], start, end)
               for sid, items in per_site.items()}

    def root_of(site_id: str, a: float) -> str:
        root = site_id
        for ancestor in inventory.ancestors(site_id):
            if ancestor in dark and _dark_at(dark[ancestor], dark_times[ancestor],
                                             a - tolerance_s, a + tolerance_s):
                root = ancestor
        return root

    outages: dict[tuple[str, float], Outage] = {}
    attach: list[tuple[str, str, float, float]] = []
    for sid in per_site:
        for a, b in periods[sid]:
            root = root_of(sid, a)
            if root == sid:
                outages[(sid, a)] = Outage(sid, inventory.site(sid).commune, a, b, b >= end,
                                           {sid})
            else:
                attach.append((sid, root, a, b))
    of_root: dict[str, list[Outage]] = {}
    for o in sorted(outages.values(), key=lambda o: o.start):
        of_root.setdefault(o.root, []).append(o)
    starts = {root: [o.start for o in items] for root, items in of_root.items()}
    for sid, root, a, b in attach:
        host = None
        items = of_root.get(root, [])
        # the root's outages do not overlap: the candidate is the last one starting in time
        k = bisect.bisect_right(starts.get(root, []), a + tolerance_s) - 1
        if k >= 0 and a < items[k].end + tolerance_s:
            host = items[k]
        if host is None:  # the root's own period lies outside the window: list it apart
            host = outages.setdefault((sid, a), Outage(root, inventory.site(root).commune,
                                                       a, b, b >= end))
        host.sites.add(sid)
        host.end = max(host.end, b)
        host.ongoing = host.ongoing or b >= end
    alerts: dict[str, list[AlertedPeriod]] = {}
    for al in alerted:
        alerts.setdefault(al.site, []).append(al)
    out = sorted(outages.values(), key=lambda o: (o.start, o.root))
    for o in out:
        for sid in o.sites:
            for service, timeline in per_site[sid]:
                if any(s == "down" for _, _, s in spans(timeline, o.start, o.end)):
                    o.services.add(service)
            for _, _, s in spans(dark[sid], max(start, o.start - tolerance_s),
                                 min(end, o.end + tolerance_s)):
                if s == "maintenance":
                    o.maintenance = True
        for al in (al for sid in o.sites for al in alerts.get(sid, ())):
            al_end = end if al.end is None else al.end
            if al.start < o.end + tolerance_s and al_end > o.start:
                o.alerted = True
                o.maintenance = o.maintenance or al.maintenance
                o.power = o.power or (al.site == o.root and al.cause == "power")
    return [o for o in out if o.duration_s >= min_duration_s]


# ------------------------------------------------------------------ rendering

def outage_cells(o: Outage, lang: Lang, tz: str) -> list[str]:
    t = table("outages", lang)
    services = sorted(o.services, key=service_rank)
    return [
        format_time(o.start, tz, zone=True),
        t["ongoing"] if o.ongoing else format_time(o.end, tz, zone=True),
        format_duration(o.duration_s, lang),
        o.commune,
        o.root,
        t[o.cause],
        str(len(o.sites)),
        ", ".join(service_label(s, lang) for s in services),
        t["yes" if o.alerted else "no"],
        t["yes" if o.maintenance else "no"],
    ]


def headers(lang: Lang) -> list[str]:
    t = table("outages", lang)
    return [t["start"], t["end"], t["duration"], t["commune"], t["root"], t["cause"],
            t["sites"], t["services"], t["alerted"], t["maintenance"]]


def render_table(outages: Sequence[Outage], lang: Lang, tz: str, window: tuple[float, float],
                 ) -> str:
    t = table("outages", lang)
    head = headers(lang)
    body = [outage_cells(o, lang, tz) for o in outages]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    total = sum(o.duration_s for o in outages)
    out = [t["title"], f"{format_time(window[0], tz)} – {format_time(window[1], tz)} "
           f"({zone_label(tz, window[0])})", ""]
    if not outages:
        return "\n".join([*out, t["none"]]) + "\n"
    out += [line(head), line(["-" * w for w in widths]), *(line(c) for c in body), "",
            t["count"].format(count=len(outages), total=format_duration(total, lang))]
    return "\n".join(out) + "\n"


def render_csv(outages: Sequence[Outage], lang: Lang, tz: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*headers(lang), "duration_s"])
    for o in outages:
        writer.writerow([*outage_cells(o, lang, tz), round(o.duration_s, 3)])
    return buf.getvalue()


def outage_json(o: Outage, tz: str) -> dict[str, object]:
    return {
        "start": o.start, "end": o.end, "ongoing": o.ongoing,
        "start_local": format_time(o.start, tz, zone=True, seconds=True),
        "end_local": format_time(o.end, tz, zone=True, seconds=True),
        "duration_s": round(o.duration_s, 3), "commune": o.commune, "root": o.root,
        "cause": o.cause, "sites": sorted(o.sites),
        "services": sorted(o.services, key=service_rank),
        "alerted": o.alerted, "maintenance": o.maintenance,
    }


def render_json(outages: Sequence[Outage], tz: str, window: tuple[float, float]) -> str:
    doc = {"tz": tz, "window": {"start": window[0], "end": window[1]},
           "outages": [outage_json(o, tz) for o in outages]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
