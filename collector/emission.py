"""What the availability engine hands to storage: state-change points and roll-up rows
(pure; :mod:`collector.availability` re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass

from collector.changepoints import State
from collector.servicerules import ServiceKey


@dataclass(frozen=True, slots=True)
class ElementPoint:
    """A state-change point for an element, to be written (upserted) to storage.

    ``reason`` (unknown points only): why it is unknown - the :class:`Unobserved` reason,
    ``agent_offline`` or ``stale``."""

    element: str
    ts: float
    state: State
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePoint:
    """A state-change point for a commune-service, to be written (upserted) to storage."""

    key: ServiceKey
    ts: float
    state: State


@dataclass(frozen=True, slots=True)
class Rollup:
    """Seconds spent in each state by a commune-service during one bucket."""

    key: ServiceKey
    bucket_start: float
    bucket_s: float
    up_s: float
    down_s: float
    unknown_s: float
    maintenance_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Emission:
    """What to write after :meth:`AvailabilityEngine.emit`.

    State points are upserts keyed by (key, ts): a point at an existing
    timestamp replaces the stored one. Roll-up rows likewise replace the
    stored row of their (key, bucket_start).
    """

    elements: list[ElementPoint]
    services: list[ServicePoint]
    rollups: list[Rollup]
