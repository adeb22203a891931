"""How element states roll up to commune-services: which elements make up each service
(:class:`Topology`) and the rule that combines them, declared maintenance included (pure).

``any_of`` (the default): a service is up while any of its elements is up, down when all
are down, else unknown. ``all_of``: down when any is down, up when all are up, else
unknown. With an element in declared maintenance the rows of :data:`MAINTENANCE_RULES`
decide (docs/availability.md).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

from collector.changepoints import Change, State

if TYPE_CHECKING:
    from xanet.inventory import Inventory

Rule = Literal["any_of", "all_of"]
Quantifier = Literal["any", "all"]


class ServiceKey(NamedTuple):
    """One service of one commune, e.g. ``ServiceKey("08821", "fibre")``."""

    commune: str
    service: str



@dataclass(frozen=True, slots=True)
class ElementSpec:
    """A monitored element: the agent that polls it and the services it carries."""

    element: str
    agent: str | None  # None: polled by no known agent (no Last Will applies)
    services: tuple[ServiceKey, ...]
    stale_after_s: float | None = None  # None: the engine's default


@dataclass(frozen=True)
class Topology:
    """Which elements exist, who polls them and which commune-services they make up."""

    elements: tuple[ElementSpec, ...]
    rules: Mapping[ServiceKey, Rule] = field(default_factory=dict)  # default any_of

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> Topology:
        """One element per inventory element key (``site/device[/ifname]``), polled by its
        site's agent, counting for every (commune, service) the inventory lists it for;
        every service any-of."""
        services: dict[str, list[ServiceKey]] = {}
        agents: dict[str, str | None] = {}
        for site in inventory.sites:
            for device in site.devices:
                for element in device.elements:
                    key = ServiceKey(site.commune, str(element.service.value))
                    services.setdefault(element.key, []).append(key)
                    agents[element.key] = site.agent
        return cls(
            tuple(
                ElementSpec(element, agents[element], tuple(keys))
                for element, keys in services.items()
            )
        )

    def service_keys(self) -> list[ServiceKey]:
        keys: dict[ServiceKey, None] = {}
        for spec in self.elements:
            for key in spec.services:
                keys[key] = None
        return sorted(keys)


def rule_state(rule: Rule, states: Iterable[State]) -> State:
    """Combine element states into a service state.

    ``any_of``: up if any element is up, down if all are down, else unknown.
    ``all_of``: down if any element is down, up if all are up, else unknown.
    No elements: unknown. With an element in maintenance: :func:`maintenance_rule_state`.
    """
    seen = list(states)
    if "maintenance" in seen:
        return maintenance_rule_state(rule, seen)
    n = up = down = 0
    for s in seen:
        n += 1
        up += s == "up"
        down += s == "down"
    if n == 0:
        return "unknown"
    if rule == "any_of":
        return "up" if up else "down" if down == n else "unknown"
    return "down" if down else "up" if up == n else "unknown"


def combine(rule: Rule, timelines: Sequence[Sequence[Change]]) -> list[Change]:
    """The service timeline of element timelines (each a sorted change list)."""
    return combine_window(rule, ["unknown"] * len(timelines), timelines)[1]


#: How a commune-service combines element states when some element is in maintenance,
#: as data: the first row whose condition holds decides; none holds: ``unknown``.
#: Maintenance ranks between up and down: it never hides an up (any-of) nor a down of
#: an element outside maintenance (all-of), and never makes anything down. Without
#: maintenance these rows are exactly :func:`rule_state`'s rules.
MAINTENANCE_RULES: Final[Mapping[Rule, tuple[tuple[Quantifier, State, State], ...]]] = {
    "any_of": (
        ("any", "up", "up"),
        ("any", "maintenance", "maintenance"),
        ("all", "down", "down"),
    ),
    "all_of": (
        ("any", "down", "down"),
        ("any", "maintenance", "maintenance"),
        ("all", "up", "up"),
    ),
}


def maintenance_rule_state(rule: Rule, states: Sequence[State]) -> State:
    """Combine element states (some possibly ``maintenance``) by :data:`MAINTENANCE_RULES`."""
    if not states:
        return "unknown"
    for quantifier, state, result in MAINTENANCE_RULES[rule]:
        hit = (any if quantifier == "any" else all)(s == state for s in states)
        if hit:
            return result
    return "unknown"


def combine_window(
    rule: Rule, befores: Sequence[State], timelines: Sequence[Sequence[Change]]
) -> tuple[State, list[Change]]:
    """Combine element states before a window (``befores``) and their changes inside it:
    the service state before the window and its changes inside it."""
    states = list(befores)
    current = before = rule_state(rule, states)
    merged = heapq.merge(*[[(c.ts, idx, c.state) for c in tl] for idx, tl in enumerate(timelines)])
    out: list[Change] = []
    pending = next(merged, None)
    while pending is not None:
        ts = pending[0]
        while pending is not None and pending[0] == ts:
            states[pending[1]] = pending[2]
            pending = next(merged, None)
        new = rule_state(rule, states)
        if new != current:
            out.append(Change(ts, new))
            current = new
    return before, out

