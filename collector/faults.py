"""Fault alerts: an agent misbehaving (a duplicate instance, a wrong clock, a flood of new
series), as opposed to an outage (collector/outages.py). Pure.

A fault is raised with :meth:`FaultBook.raise_` every time it is observed; it fires at the
first observation and resolves once it has not been observed for its ``quiet_s``
(:meth:`FaultBook.sweep`). Both turn into :class:`collector.outages.AlertEvent` s of kind
:data:`KIND`, taken with :meth:`FaultBook.events` and delivered by the one
:class:`collector.alertmanager.Notifier` of the collector, with the outage and monitoring
alerts. Alertmanager identifies an alert by its labels, so a fault raised again while
firing is one alert, re-posted, never a new page; new text for it (another clock offset)
is a ``firing`` event that updates its annotations.

The texts (``summary_vi``, ``summary_en``, ``description``) are built here, by
:func:`duplicate_agent`, :func:`clock_skew` and :func:`cardinality`, from the templates
of :mod:`xanet.texts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from collector.alerttopology import Severity
from collector.outages import Alert, AlertEvent
from xanet.texts import text

#: The ``kind`` of fault alerts (:attr:`collector.outages.Alert.kind`).
KIND: Final = "agent_fault"

#: alertname -> what it means (docs/alerts.md)
ALERTNAMES: Final[Mapping[str, str]] = {
    "XanetDuplicateAgent": "two live instances of one agent id; the second is refused",
    "XanetClockSkew": "an agent's clock differs from the collector's beyond the threshold",
    "XanetCardinalityExceeded": "an agent or device sends more new series than allowed",
}

#: What to do, per alertname (the ``description`` annotation; docs/alerts.md).
_WHAT_TO_DO: Final[Mapping[str, str]] = {
    "XanetDuplicateAgent": "Find the cloned or replaced box (both instance ids are named); "
                           "the refused instance's messages are dead-lettered, replayable.",
    "XanetClockSkew": "Fix NTP on the agent's box; polls refused for their time stamps are "
                      "dead-lettered, replayable with xanet deadletter replay --correct-clock.",
    "XanetCardinalityExceeded": "Check the device's interface names (a firmware bug, a "
                                "hostile box); the refused series are dead-lettered, "
                                "replayable once the limit is raised.",
}


@dataclass(frozen=True, slots=True)
class Texts:
    """A fault's summary in English (also the log line and the dead-letter detail) and
    in Vietnamese."""

    en: str
    vi: str


def _texts(key: str, **fields: object) -> Texts:
    return Texts(text(key, "en").format(**fields), text(key, "vi").format(**fields))


def duplicate_agent(agent: str, site: str, owner: str | None, refused: str) -> Texts:
    return _texts("fault.duplicate_agent", agent=agent, site=site, owner=owner,
                  refused=refused)


def clock_skew(agent: str, site: str, state: Literal["ahead", "behind"],
               offset_s: float) -> Texts:
    return Texts(*(text("fault.clock_skew", lang).format(
        agent=agent, site=site, state=text(f"fault.clock_{state}", lang),
        offset_s=abs(offset_s)) for lang in ("en", "vi")))


def cardinality(agent: str, site: str, device: str | None, limit: int,
                window_s: float) -> Texts:
    """``device`` None: the agent's limit, over all of its devices."""
    what = "fault.what_device" if device else "fault.what_agent"
    return Texts(*(text("fault.cardinality", lang).format(
        what=text(what, lang).format(device=device, agent=agent), site=site, limit=limit,
        window_s=window_s) for lang in ("en", "vi")))


Key = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Fault:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    last_seen: float
    quiet_s: float

    @property
    def key(self) -> Key:
        return tuple(sorted(self.labels.items()))

    def alert(self, ends_at: float | None = None) -> Alert:
        unit = "fault:" + ",".join(f"{k}={v}" for k, v in self.key)
        return Alert(unit, KIND, dict(self.labels), dict(self.annotations), self.starts_at,
                     ends_at)


@dataclass
class FaultBook:
    firing: dict[Key, Fault] = field(default_factory=dict)
    raised: int = 0  # faults that started firing
    _events: list[AlertEvent] = field(default_factory=list)  # not yet taken

    def raise_(self, alertname: str, labels: Mapping[str, str], texts: Texts, now: float,
               quiet_s: float, severity: Severity = "warning") -> bool:
        """Observe a fault; ``True`` when it starts firing now (log it then). Labels with
        an empty value are left out (Alertmanager treats them as absent)."""
        full = {"alertname": alertname, "severity": severity,
                **{k: v for k, v in labels.items() if v}}
        annotations = {"summary_vi": texts.vi, "summary_en": texts.en, "summary": texts.en,
                       "description": _WHAT_TO_DO.get(alertname, ALERTNAMES.get(alertname, ""))}
        fault = Fault(full, annotations, now, now, quiet_s)
        old = self.firing.get(fault.key)
        if old is not None:
            old.last_seen = max(old.last_seen, now)
            old.quiet_s = quiet_s
            if old.annotations != annotations:
                old.annotations = annotations
                self._events.append(AlertEvent("firing", old.alert()))
            return False
        self.firing[fault.key] = fault
        self.raised += 1
        self._events.append(AlertEvent("firing", fault.alert()))
        return True

    def sweep(self, now: float) -> list[Fault]:
        """Resolve the faults not observed for their ``quiet_s`` (ended ``now``); return
        them."""
        done = [f for f in self.firing.values() if now - f.last_seen >= f.quiet_s]
        for f in done:
            del self.firing[f.key]
            self._events.append(AlertEvent("resolved", f.alert(ends_at=now)))
        return done

    def events(self) -> list[AlertEvent]:
        """The fault alerts' events since the last call (for the Notifier), oldest first."""
        out, self._events = self._events, []
        return out
