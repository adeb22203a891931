"""The Alertmanager edge: alerts to ``POST /api/v2/alerts``, retried, re-posted while firing.

Alertmanager identifies an alert by its label set (the fingerprint). Posting the same
firing alert again only refreshes it - no new notification; that is how an alert stays
alive (each post sets ``endsAt`` to now + ``expire_after_s``, so if the collector dies
Alertmanager resolves its alerts by itself after that long) and how a restarted
collector re-announces what it had open without paging anyone twice. A resolved alert
is posted with the ``endsAt`` at which the outage ended.

:class:`Notifier` keeps the latest version of every alert to deliver; it posts the whole
set (firing and not yet delivered resolved ones) whenever something changed and every
``resend_interval_s``; while Alertmanager is unreachable it retries with capped,
jittered backoff. A 4xx answer (a malformed alert) is logged and not retried.

One notifier per collector (:func:`notifier_for`, made in collector/app.py whenever
``[alerts] url`` is set) delivers every kind of alert: outages and monitoring faults
(collector/alerting.py) and agent faults (collector/faults.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from collector.config import AlertsConfig
from collector.outages import Alert, AlertEvent
from xanet.mqtt import backoff_s

log = logging.getLogger("xanet.collector.alertmanager")

Payload = dict[str, Any]


class AlertmanagerError(Exception):
    """Base of the Alertmanager edge's errors."""


class AlertmanagerUnavailable(AlertmanagerError):
    """Not reachable, or a 5xx: retry later."""


class AlertmanagerRejected(AlertmanagerError):
    """A 4xx: the alerts are malformed; retrying will not help."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def payload(alert: Alert, *, now: float, expire_after_s: float,
            generator_url: str | None = None) -> Payload:
    """The v2 API form of one alert (``postableAlert``)."""
    ends = alert.ends_at if alert.ends_at is not None else now + expire_after_s
    out: Payload = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": iso(alert.starts_at),
        "endsAt": iso(max(ends, alert.starts_at)),
    }
    if generator_url:
        out["generatorURL"] = generator_url
    return out


class AlertmanagerPort(Protocol):
    async def post(self, alerts: Sequence[Payload]) -> None:
        """Deliver alerts; raise AlertmanagerUnavailable or AlertmanagerRejected."""
        ...

    async def close(self) -> None: ...


class AlertmanagerClient:
    """``POST {url}/api/v2/alerts`` through httpx; library errors translated here."""

    def __init__(self, url: str, *, timeout_s: float = 10.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def post(self, alerts: Sequence[Payload]) -> None:
        try:
            r = await self._client.post(self.url, json=list(alerts))
        except httpx.HTTPError as exc:
            raise AlertmanagerUnavailable(f"{self.url}: {exc!r}") from exc
        if r.status_code >= 500:
            raise AlertmanagerUnavailable(f"{self.url}: HTTP {r.status_code}: {r.text[:200]}")
        if r.status_code >= 300:
            raise AlertmanagerRejected(f"{self.url}: HTTP {r.status_code}: {r.text[:300]}")

    async def close(self) -> None:
        await self._client.aclose()


Key = tuple[tuple[str, str], ...]


class Notifier:
    """Delivers alert events to Alertmanager; see the module doc."""

    def __init__(self, port: AlertmanagerPort, *, resend_interval_s: float,
                 expire_after_s: float, retry_min_s: float, retry_max_s: float,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.port = port
        self.resend_interval_s = resend_interval_s
        self.muted = False  # a fenced collector posts nothing more
        self.may_post: Callable[[], bool] | None = None  # False: muted for now (fencing)
        self.expire_after_s = expire_after_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        self.rng = rng or random.Random()
        self._firing: dict[Key, Alert] = {}
        self._resolved: dict[Key, Alert] = {}
        self._changed = asyncio.Event()
        self._held = 0  # hold() calls not yet released: nothing is posted meanwhile
        self.posts = 0
        self.failures = 0
        self.rejected = 0
        self.unavailable = False

    @property
    def firing(self) -> list[Alert]:
        return list(self._firing.values())

    def firing_by_kind(self) -> Counter[str]:
        """How many alerts fire, per :attr:`Alert.kind`."""
        return Counter(a.kind for a in self._firing.values())

    @property
    def pending_resolved(self) -> int:
        return len(self._resolved)

    def submit(self, events: Iterable[AlertEvent]) -> None:
        for ev in events:
            key = ev.alert.fingerprint
            if ev.action == "firing":
                self._firing[key] = ev.alert
                self._resolved.pop(key, None)
            else:
                self._firing.pop(key, None)
                self._resolved[key] = ev.alert
            self._changed.set()

    def hold(self) -> None:
        """Post nothing until :meth:`release` (the partition's checkpoint is written before
        Alertmanager hears of an outage change: collector/continuity.py)."""
        self._held += 1

    def release(self) -> None:
        self._held = max(self._held - 1, 0)
        if not self._held:
            self._changed.set()

    def _batch(self) -> tuple[list[Payload], list[Key]]:
        now = self.clock()
        resolved = list(self._resolved.items())
        out = [payload(a, now=now, expire_after_s=self.expire_after_s)
               for a in (*self._firing.values(), *(a for _, a in resolved))]
        return out, [k for k, _ in resolved]

    async def flush(self) -> bool:
        """Post the current set once; True when delivered (or refused as malformed), or
        held (:meth:`hold`: posted at the release). Nothing is posted once ``muted`` (a
        fenced collector: collector/partition.py)."""
        if self.muted or (self.may_post is not None and not self.may_post()) or self._held:
            return True
        batch, resolved_keys = self._batch()
        if not batch:
            return True
        try:
            await self.port.post(batch)
        except AlertmanagerUnavailable as exc:
            self.failures += 1
            if not self.unavailable:
                log.warning("alertmanager unavailable (%d alert(s) waiting): %s",
                            len(batch), exc)
            self.unavailable = True
            return False
        except AlertmanagerRejected as exc:
            self.rejected += 1
            log.error("alertmanager refused %d alert(s), not retried: %s", len(batch), exc)
        else:
            self.posts += 1
            if self.unavailable:
                log.info("alertmanager reachable again: %d alert(s) delivered", len(batch))
            self.unavailable = False
        for key in resolved_keys:
            self._resolved.pop(key, None)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; then one last attempt (bounded) and return."""
        attempt = 0
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self._changed.clear()
                waiters: set[asyncio.Future[Any]] = {stopper}
                changed = asyncio.ensure_future(self._changed.wait())
                if await self.flush():
                    attempt = 0
                    delay = self.resend_interval_s
                    waiters.add(changed)  # a change is posted at once
                else:  # unreachable: changes wait for the backoff (the next post has them)
                    delay = backoff_s(attempt, self.retry_min_s, self.retry_max_s, self.rng)
                    attempt += 1
                try:
                    await asyncio.wait(waiters, timeout=delay,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
        finally:
            stopper.cancel()
        try:
            await asyncio.wait_for(self.flush(), timeout=5.0)
        except TimeoutError:
            log.warning("alertmanager: last delivery timed out at stop; the next start "
                        "re-posts the open outages")


def notifier_for(cfg: AlertsConfig, port: AlertmanagerPort | None = None) -> Notifier:
    """The notifier of ``[alerts]``: posting to ``cfg.url`` unless ``port`` is given."""
    if port is None:
        if cfg.url is None:
            raise ValueError("alert delivery needs alerts.url")
        port = AlertmanagerClient(cfg.url, timeout_s=cfg.timeout_s)
    return Notifier(port, resend_interval_s=cfg.resend_interval_s,
                    expire_after_s=cfg.expire_after_s, retry_min_s=cfg.retry_min_s,
                    retry_max_s=cfg.retry_max_s)
