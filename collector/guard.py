"""After admission, before storage: duplicate agents, wrong clocks, new-series floods. Pure.

:meth:`Guard.check` takes an admitted message and answers what may be stored and what is
refused (each refused part with a reason the collector counts and dead-letters, so it can
be replayed once the cause is fixed); faults go to :attr:`Guard.faults`, whose alert
events the collector hands to its Alertmanager notifier (collector/faults.py). Rules:
:mod:`collector.instances`, :mod:`collector.skew`, :mod:`collector.cardinality`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from collector import faults
from collector.cardinality import CardinalityGuard
from collector.config import GuardsConfig
from collector.faults import FaultBook
from collector.instances import InstanceTracker, Verdict
from collector.skew import ClockWatch
from xanet import wire
from xanet.topics import SiteTopic

log = logging.getLogger("xanet.collector.guard")


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # duplicate_agent, stale_instance, cardinality
    detail: str
    message: wire.Telemetry | wire.Status  # the refused part, as a message of its own


@dataclass(slots=True)
class Outcome:
    message: wire.Telemetry | wire.Status | None
    refused: list[Refused] = field(default_factory=list)


class Guard:
    def __init__(self, cfg: GuardsConfig) -> None:
        self.cfg = cfg
        self.instances = InstanceTracker(cfg.takeover_after_s)
        self.clocks = ClockWatch(cfg.max_clock_skew_s)
        self.cardinality = CardinalityGuard(
            cfg.cardinality_window_s, cfg.max_new_interfaces_per_device,
            cfg.max_new_series_per_agent,
            max_new_profile_series_per_device=cfg.max_new_profile_series_per_device)
        self.faults = FaultBook()
        self.counts: Counter[str] = Counter()

    def clock(self, where: SiteTopic, msg: wire.Telemetry | wire.Status,
              now: datetime) -> None:
        """Compare the agent's send stamp with ``now`` (also for messages refused for their
        time stamps: a wrong clock is what refuses them)."""
        labels = {"province": where.province, "commune": where.commune, "site": msg.site,
                  "agent": msg.agent}
        stamped = msg.sent if isinstance(msg, wire.Telemetry) else (
            msg.ts if msg.state == "online" else None)
        if stamped is not None:
            reading = self.clocks.observe(msg.agent, stamped, now)
            if reading.state != "ok":
                self.counts[f"clock_{reading.state}"] += 1
                texts = faults.clock_skew(msg.agent, msg.site, reading.state,
                                          reading.offset_s)
                if self.faults.raise_("XanetClockSkew", labels, texts, now.timestamp(),
                                      self.cfg.clock_alert_quiet_s):
                    log.error("%s", texts.en)
                if reading.state == "behind" and isinstance(msg, wire.Telemetry):
                    # Stored as stamped (which polls are wrong cannot be told), flagged.
                    self.counts["polls_clock_behind"] += len(msg.polls)

    def check(self, where: SiteTopic, msg: wire.Telemetry | wire.Status,
              now: datetime) -> Outcome:
        t = now.timestamp()
        labels = {"province": where.province, "commune": where.commune, "site": msg.site,
                  "agent": msg.agent}
        if msg.instance is not None:
            offline = isinstance(msg, wire.Status) and msg.state == "offline"
            polled_until = (max(p.ts for p in msg.polls).timestamp()
                            if isinstance(msg, wire.Telemetry) else None)
            verdict = self.instances.observe(msg.agent, msg.instance, t, offline=offline,
                                             polled_until=polled_until)
            if verdict is Verdict.STALE:
                detail = (f"agent {msg.agent} (site {msg.site}): offline of instance "
                          f"{msg.instance}, which no longer owns the id")
                self.counts["stale_instance_messages"] += 1
                return Outcome(None, [Refused("stale_instance", detail, msg)])
            if verdict is Verdict.BACKLOG:
                self.counts["backlog_of_former_instance"] += 1
            if verdict is Verdict.DUPLICATE:
                owner = self.instances.owner(msg.agent)
                texts = faults.duplicate_agent(msg.agent, msg.site, owner, msg.instance)
                if self.faults.raise_("XanetDuplicateAgent", labels, texts, t,
                                      self.cfg.takeover_after_s, "major"):
                    log.error("%s", texts.en)
                self.counts["duplicate_agent_messages"] += 1
                return Outcome(None, [Refused("duplicate_agent", texts.en, msg)])
            if offline and self.instances.duplicates(msg.agent, t):
                # The owner's Last Will while a duplicate lives: the duplicate knocked it off
                # the broker (shared credentials); not a real offline - no presence flap.
                summary = (f"agent {msg.agent} (site {msg.site}): offline of instance "
                           f"{msg.instance} while duplicate instance(s) "
                           f"{', '.join(self.instances.duplicates(msg.agent, t))} live")
                self.counts["duplicate_agent_messages"] += 1
                return Outcome(None, [Refused("duplicate_agent", summary, msg)])
            if verdict is Verdict.TAKEOVER:
                log.info("agent %s (site %s): instance %s took over", msg.agent, msg.site,
                         msg.instance)
        self.clock(where, msg, now)
        if isinstance(msg, wire.Status):
            return Outcome(msg)
        checked = self.cardinality.check(msg, t)
        out = Outcome(checked.message)
        for r in checked.refused:
            n = r.series
            self.counts["series_refused"] += n
            device = r.device if r.scope != "agent" else None
            limit = {"device": self.cfg.max_new_interfaces_per_device,
                     "profile": self.cfg.max_new_profile_series_per_device,
                     }.get(r.scope, self.cfg.max_new_series_per_agent)
            texts = faults.cardinality(msg.agent, msg.site, device, limit,
                                       self.cfg.cardinality_window_s)
            dev_labels = {**labels, "device": device or ""}
            if self.faults.raise_("XanetCardinalityExceeded", dev_labels, texts, t,
                                  self.cfg.cardinality_window_s):
                log.error("%s", texts.en)
            out.refused.append(Refused(
                "cardinality", f"{texts.en}: {n} series",
                msg.model_copy(update={"polls": list(r.polls)})))
        return out


def split_to_fit(msg: wire.Telemetry, max_bytes: int) -> list[wire.Telemetry]:
    """``msg`` as one or more messages whose encodings fit in ``max_bytes`` (a refused part
    is dead-lettered whole, so it can be replayed): polls split into groups, one poll's
    interfaces into groups if it must."""
    if len(wire.encode(msg)) <= max_bytes:
        return [msg]
    polls = msg.polls
    if len(polls) > 1:
        half = len(polls) // 2
        return [*split_to_fit(msg.model_copy(update={"polls": polls[:half]}), max_bytes),
                *split_to_fit(msg.model_copy(update={"polls": polls[half:]}), max_bytes)]
    (p,) = polls
    if len(p.interfaces) <= 1:
        return [msg]  # cannot be smaller (bounded by the wire's limits anyway)
    half = len(p.interfaces) // 2
    return [*split_to_fit(msg.model_copy(update={"polls": [
                p.model_copy(update={"interfaces": p.interfaces[:half]})]}), max_bytes),
            *split_to_fit(msg.model_copy(update={"polls": [
                p.model_copy(update={"interfaces": p.interfaces[half:]})]}), max_bytes)]
