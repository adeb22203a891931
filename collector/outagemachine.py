"""When one unit's outage opens and closes: the hold-down / clear-down machine as data
(pure).

A unit's *condition* is ``active`` (down/silent), ``clear``, ``unknown`` or
``maintenance``. An outage opens once the condition has been active *continuously* for
``hold_down_s`` (its start is the first down), and closes once it has been clear
continuously for ``clear_down_s`` (its end is the first up). Unknown never opens an
outage and never closes one (no recovery was seen); it resets a pending hold-down and a
running clear-down. Maintenance never opens an outage and closes an open one. The outage
core (:mod:`collector.outages`) and the monitoring-fault alerts
(:mod:`collector.monitoring`) run this one machine (docs/alerts.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

Condition = Literal["active", "clear", "unknown", "maintenance"]
Phase = Literal["idle", "pending", "open", "clearing"]
Signal = Literal["active_short", "active_held", "clear_short", "clear_held", "unknown",
                 "maintenance"]
Action = Literal["none", "open", "resolve"]

PHASES: Final[tuple[Phase, ...]] = ("idle", "pending", "open", "clearing")
SIGNALS: Final[tuple[Signal, ...]] = (
    "active_short", "active_held", "clear_short", "clear_held", "unknown", "maintenance",
)

#: The outage state machine, as data: (phase, signal) -> (next phase, action).
#: ``*_held`` means the condition has lasted the hold-down (active) or clear-down (clear).
MACHINE: Final[Mapping[tuple[Phase, Signal], tuple[Phase, Action]]] = {
    ("idle", "active_short"): ("pending", "none"),
    ("idle", "active_held"): ("open", "open"),
    ("idle", "clear_short"): ("idle", "none"),
    ("idle", "clear_held"): ("idle", "none"),
    ("idle", "unknown"): ("idle", "none"),
    ("pending", "active_short"): ("pending", "none"),
    ("pending", "active_held"): ("open", "open"),
    ("pending", "clear_short"): ("idle", "none"),
    ("pending", "clear_held"): ("idle", "none"),
    ("pending", "unknown"): ("idle", "none"),
    ("open", "active_short"): ("open", "none"),
    ("open", "active_held"): ("open", "none"),
    ("open", "clear_short"): ("clearing", "none"),
    ("open", "clear_held"): ("idle", "resolve"),
    ("open", "unknown"): ("open", "none"),
    ("clearing", "active_short"): ("open", "none"),
    ("clearing", "active_held"): ("open", "none"),
    ("clearing", "clear_short"): ("clearing", "none"),
    ("clearing", "clear_held"): ("idle", "resolve"),
    ("clearing", "unknown"): ("open", "none"),
    # declared maintenance: no outage opens, an open one closes
    ("idle", "maintenance"): ("idle", "none"),
    ("pending", "maintenance"): ("idle", "none"),
    ("open", "maintenance"): ("idle", "resolve"),
    ("clearing", "maintenance"): ("idle", "resolve"),
}

#: Phases in which a unit covers the units below it.
COVERING: Final[frozenset[Phase]] = frozenset({"pending", "open", "clearing"})


def step(phase: Phase, signal: Signal) -> tuple[Phase, Action]:
    """Next phase and action, following :data:`MACHINE` (every pair is defined)."""
    return MACHINE[(phase, signal)]


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a condition must last: hold-down, clear-down, agent silence."""

    hold_down_s: float
    clear_down_s: float
    agent_silent_after_s: float
    #: A unit with something above it (a device of a site, a site behind a parent) waits
    #: this much longer before it is alerted on its own, so that a parent cut off at the
    #: same moment - whose own down poll may land up to a poll interval + the SNMP timeout
    #: later - is known first and takes the alert as the root cause.
    root_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.hold_down_s >= 0 and self.clear_down_s >= 0
                and self.agent_silent_after_s > 0 and self.root_wait_s >= 0):
            raise ValueError(f"invalid alert policy {self!r}")

    def signal(self, condition: Condition, since: float, now: float) -> Signal:
        """The machine's input: the condition and whether it has lasted long enough."""
        if condition == "unknown":
            return "unknown"
        if condition == "maintenance":
            return "maintenance"
        lasted = now - since
        if condition == "active":
            return "active_held" if lasted >= self.hold_down_s else "active_short"
        return "clear_held" if lasted >= self.clear_down_s else "clear_short"

