"""The collector program: MQTT in, admission, accounting, InfluxDB out.

Wiring only: the decisions are in :mod:`collector.admission`,
:mod:`collector.sequence`, :mod:`collector.schema` and :mod:`collector.acks`;
the I/O in :mod:`collector.mqtt_in`, :mod:`collector.sink`, :mod:`collector.writer` and
:mod:`collector.deadletter`.

Delivery: MQTT v5 persistent session and **manual acknowledgement**
(:mod:`collector.mqtt_in`) — a QoS 1 message is acknowledged only after its points are
written to InfluxDB (or it was rejected and dead-lettered). The broker should keep at
most ``receive_maximum`` unacknowledged messages in flight to the collector; the sink is
told to flush as soon as half of that window is waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from collector import schema
from collector.acks import AckQueue, Ticket, countdown
from collector.admission import (
    DETAILS,
    Accepted,
    Limits,
    Rejected,
    admit,
    admit_batch,
    admit_message,
)
from collector.alerting import Alerting
from collector.alertmanager import Notifier, notifier_for
from collector.availability import AvailabilityEngine, Fact, Topology
from collector.config import CollectorConfig
from collector.continuity import Continuity
from collector.deadletter import KEEP_BYTES, DeadLetter, keep_lines
from collector.facts import FactMapper, emission_lines
from collector.guard import Guard, split_to_fit
from collector.maintenance_sync import MaintenanceSync
from collector.mqtt_in import MqttError, MqttIn, Received
from collector.sequence import Seen, SequenceTracker
from collector.sink import Sink
from collector.statestore import CheckpointStore
from collector.unmapped import UnmappedLog
from collector.writer import LineWriter, make_writer
from xanet import capabilities, compact, wire
from xanet.inventory import Inventory, load_inventory

log = logging.getLogger("xanet.collector")


def _json_of(message: wire.Telemetry) -> Callable[[], bytes]:
    """The message as the JSON path would have received it (for the dead-letter store)."""
    return lambda: wire.encode(message)


class Collector:
    def __init__(self, cfg: CollectorConfig, *, writer: LineWriter | None = None,
                 inventory: Inventory | None = None) -> None:
        self.cfg = cfg
        self.writer = writer or make_writer(cfg.influx)
        self.sink = Sink(cfg.influx, self.writer, on_rejected=self._lines_rejected)
        i = cfg.ingest
        self.limits = Limits(max_payload_bytes=i.max_payload_bytes,
                             max_future_s=i.max_future_s, max_past_s=i.max_past_s,
                             max_profile_values=i.max_profile_values,
                             max_profile_tag_bytes=i.max_profile_tag_bytes,
                             max_batch_decompressed_bytes=i.max_batch_decompressed_bytes,
                             max_batch_messages=i.max_batch_messages,
                             max_batch_polls=i.max_batch_polls)
        self.dead_letter = DeadLetter(i.dead_letter_dir, i.dead_letter_max_bytes,
                                      i.dead_letter_max_files)
        self.sequences = SequenceTracker()
        self.guard = Guard(cfg.guards)  # duplicate agents, clock skew, cardinality
        # One delivery to Alertmanager for every alert: outages, monitoring, agent faults.
        self.notifier: Notifier | None = (notifier_for(cfg.alerts)
                                          if cfg.alerts.url is not None else None)
        self.rejected: Counter[str] = Counter()
        self.received = 0
        self.accepted = 0
        self.polls = 0
        self.agents_online: dict[str, bool] = {}
        self.acks = AckQueue()
        self.batches = 0  # compact batches read (their messages count as received)
        announce = (capabilities.encode(capabilities.announce(self.limits.batch))
                    if i.batches else None)
        self.mqtt = MqttIn(cfg, self.acks, announce=announce)  # no connection before run()
        #: set once this collector no longer owns its partition (collector/partition.py):
        #: nothing more acknowledged, no availability, alerts, checkpoints or final emission
        self.fenced = False
        #: the partition member's lease_state, lease_epoch and takeovers (partitioned only)
        self.partition_stats: Callable[[], dict[str, int | str]] | None = None
        #: partitioned: True while the lease is held and not past its fencing deadline
        self.lease_valid: Callable[[], bool] | None = None
        self.subscribed = self.mqtt.subscribed
        if inventory is None and cfg.inventory is not None:
            inventory = load_inventory(cfg.inventory.path)
        self.inventory = inventory
        self.site_agents: dict[str, str] = (
            {site.id: site.agent for site in inventory.sites if site.agent}
            if inventory is not None else {}
        )
        self.engine: AvailabilityEngine | None = None
        self.mapper: FactMapper | None = None
        self.facts: Counter[str] = Counter()
        if inventory is not None:
            a = cfg.availability
            self.engine = AvailabilityEngine(Topology.from_inventory(inventory),
                                             stale_after_s=a.stale_after_s, bucket_s=a.bucket_s)
            self.mapper = FactMapper(inventory)
        self.alerting: Alerting | None = None  # outage alerts (collector/alerting.py)
        if inventory is not None and cfg.alerts.url is not None:
            self.alerting = Alerting(cfg.alerts, inventory, now=time.time(),
                                     notifier=self.notifier,
                                     stale_after_s=cfg.availability.stale_after_s)
        self.unmapped_log = UnmappedLog()
        self.maintenance: MaintenanceSync | None = None  # declared maintenance windows
        if inventory is not None and self.engine is not None:
            self.maintenance = MaintenanceSync(cfg, inventory, self.engine, self.alerting)
        self.continuity: Continuity | None = (  # the partition's checkpoint ([state])
            Continuity(self, CheckpointStore(cfg, self.writer)) if cfg.checkpointing() else None)

    # -- message handling (no network here: tests drive it directly) --------

    async def handle(self, topic: str, payload: bytes, now: datetime | None = None,
                     ticket: Ticket | None = None) -> None:
        """Admit, account and store one message (or each message of a compact batch);
        settle ``ticket`` once it is durable (a batch: once all its messages are)."""
        now = now or datetime.now(UTC)
        settle = (lambda: self._settle(ticket)) if ticket is not None else None
        if topic.endswith("/batch") and self.cfg.ingest.batches:
            await self._handle_batch(topic, payload, now, settle)
            return
        self.received += 1
        verdict = admit(topic, payload, now, self.limits, self.site_agents)
        await self._handle_verdict(topic, lambda: payload, verdict, now, settle)

    async def _handle_batch(self, topic: str, payload: bytes, now: datetime,
                            settle: Callable[[], None] | None) -> None:
        """Each message of the batch exactly as if it had come alone on the site's
        telemetry topic; one that is refused is dead-lettered there, as JSON."""
        batch = admit_batch(topic, payload, self.limits)
        if isinstance(batch, Rejected):
            self.received += 1
            self._reject(now, topic, batch.reason, batch.detail, payload)
            if settle is not None:
                settle()
            return
        self.batches += 1
        json_topic = str(batch.where)
        done = countdown(len(batch.messages), settle)
        for message in batch.messages:
            self.received += 1
            if isinstance(message, compact.Invalid):
                self._reject(now, json_topic, message.reason, message.detail, message.payload)
                if done is not None:
                    done()
                continue
            verdict = admit_message(batch.where, message, now, self.limits, self.site_agents)
            await self._handle_verdict(json_topic, _json_of(message), verdict, now, done)

    async def _handle_verdict(self, topic: str, payload: Callable[[], bytes],
                              verdict: Accepted | Rejected, now: datetime,
                              settle: Callable[[], None] | None) -> None:
        if isinstance(verdict, Rejected):
            if verdict.message is not None and verdict.where is not None:
                self.guard.clock(verdict.where, verdict.message, now)
                self._submit_faults()
            self._reject(now, topic, verdict.reason, verdict.detail, payload())
            if settle is not None:
                settle()
            return
        for reason, n in verdict.dropped.items():
            self.rejected[reason] += n
            log.warning("topic %s: %d %s dropped (%s)", topic, n,
                        DETAILS.get(reason, "poll(s)"), reason)
        for reason, polls in verdict.dropped_polls.items():  # kept, replayable
            self._keep_part(now, topic, reason,
                            f"{len(polls)} {DETAILS.get(reason, 'poll(s)')}",
                            verdict.message.model_copy(update={"polls": polls}))
        outcome = self.guard.check(verdict.where, verdict.message, now)
        self._submit_faults()
        for part in outcome.refused:
            self.rejected[part.reason] += 1
            log.warning("topic %s: refused (%s): %s", topic[:200], part.reason,
                        part.detail[:300])
            self._keep_part(now, topic, part.reason, part.detail, part.message)
        if outcome.message is None:
            if settle is not None:
                settle()
            return
        if outcome.message is not verdict.message:
            verdict = replace(verdict, message=outcome.message)
        self.accepted += 1
        await self._store(verdict, now, settle)

    def fence(self) -> None:
        """This collector lost its partition's lease: from now on it acknowledges nothing
        and writes no availability, alerts or checkpoints (a new owner does)."""
        self.fenced = True
        self.mqtt.fenced = True
        if self.notifier is not None:
            self.notifier.muted = True

    def owning(self) -> bool:
        """May this collector act as its partition's owner now (always, unpartitioned)?"""
        if self.fenced:
            return False
        if self.lease_valid is not None and not self.lease_valid():
            self.fence()  # past the fencing deadline: the supervisor demotes it next
            return False
        return True

    def _submit_faults(self) -> None:
        """Hand the agent-fault alerts' events to the notifier (dropped without one)."""
        events = self.guard.faults.events()
        if events and self.notifier is not None and self.owning():
            self.notifier.submit(events)

    def sweep_faults(self, now: float | None = None) -> None:
        """Resolve the agent faults that have been quiet long enough."""
        self.guard.faults.sweep(time.time() if now is None else now)
        self._submit_faults()

    def _keep_part(self, now: datetime, topic: str, reason: str, detail: str,
                   message: wire.Telemetry | wire.Status) -> None:
        """Dead-letter a refused part of an admitted message as a message of its own
        (valid and whole, so ``xanet deadletter replay`` can put it back through admission)."""
        parts = (split_to_fit(message, KEEP_BYTES) if isinstance(message, wire.Telemetry)
                 else [message])
        for part in parts:
            self.dead_letter.keep(now, topic, reason, detail, wire.encode(part))

    def _settle(self, ticket: Ticket) -> None:
        self.owning()  # past the lease's fencing deadline: fenced, so nothing is acked
        self.mqtt.settle(ticket)

    def _reject(self, now: datetime, topic: str, reason: str, detail: str,
                payload: bytes) -> None:
        self.rejected[reason] += 1
        log.warning("topic %s: rejected (%s): %s", topic[:200], reason, detail[:300])
        self.dead_letter.keep(now, topic, reason, detail, payload)

    def _lines_rejected(self, lines: list[str], reason: str) -> None:
        """Lines InfluxDB refused (collector/sink.py): dead-lettered, replayable."""
        keep_lines(self.dead_letter, datetime.now(UTC), reason, lines)

    async def _store(self, ok: Accepted, now: datetime,
                     on_durable: Callable[[], None] | None) -> None:
        msg = ok.message
        if isinstance(msg, wire.Status):
            was = self.agents_online.get(msg.agent)
            online = msg.state == "online"
            if was != online:
                age_s = (now - msg.ts).total_seconds() if msg.ts else 0.0
                log.info("agent %s (site %s): %s%s%s", msg.agent, msg.site, msg.state,
                         f" ({msg.reason})" if msg.reason else "",
                         f" (said {age_s:.0f} s ago: old news, e.g. retained)"
                         if age_s > 60 else "")
            self.agents_online[msg.agent] = online
            if self.mapper is not None:
                self._add_facts(self.mapper.status_facts(msg, now))
            if self.alerting is not None:
                self.alerting.agent_status(msg.agent, online, now.timestamp(),
                                           msg.ts.timestamp() if msg.ts else None)
            await self.sink.put([schema.status_line(ok.where, msg, now)], on_durable)
            return
        if self.sequences.observe(msg.agent, msg.seq) is Seen.DUPLICATE:
            # Written again all the same: the same points, so storage stays exactly-once.
            log.debug("agent %s: seq %d already stored (replay)", msg.agent, msg.seq)
        else:
            self.polls += len(msg.polls)
        if self.mapper is not None:
            facts, verdicts = self.mapper.map_telemetry(msg)
            self._add_facts(facts)
            if self.alerting is not None:
                self.alerting.device_verdicts(verdicts)
                for poll in msg.polls:
                    if poll.power is not None:
                        self.alerting.power_reading(msg.site, poll.device,
                                                    poll.ts.timestamp(), poll.power)
            self.unmapped_log.check(msg, self.mapper.counts.unmapped_devices, time.monotonic())
            for key, indices in self.mapper.take_new_ambiguous():
                log.warning("element %s: its interface name is on several rows of the poll "
                            "(ifIndex %s): unknown (interface_ambiguous) until the inventory "
                            "names its ifindex (docs/inventory.md)", key, indices)
        if self.alerting is not None:
            self.alerting.agent_seen(msg.agent, now.timestamp(),
                                     msg.sent.timestamp() if msg.sent else None)
        await self.sink.put(schema.telemetry_lines(ok.where, msg), on_durable)

    def _add_facts(self, facts: list[Fact]) -> None:
        assert self.engine is not None
        for fact in facts:
            self.facts[self.engine.add(fact)] += 1

    async def _availability_loop(self) -> None:
        """Write state changes and roll-ups as they become final; forget old facts;
        resolve the agent faults gone quiet."""
        while True:
            await asyncio.sleep(self.cfg.availability.emit_interval_s)
            self.sweep_faults()
            await self.emit_availability()

    async def emit_availability(self, now: float | None = None) -> int:
        """Write what the availability engine has to say up to ``now``; return the line count
        (nothing once fenced)."""
        if self.engine is None or self.inventory is None or not self.owning():
            return 0
        now = time.time() if now is None else now
        emission = self.engine.emit(now)
        lines = emission_lines(emission, self.inventory)
        if self.alerting is not None:
            lines += self.alerting.update(emission.elements, now)
            if self.alerting.outages_changed and self.continuity is not None:
                # the notifier posts nothing before this: no await since update() queued
                # the events, and before_notifying holds it until the checkpoint is written
                self.alerting.outages_changed = False
                await self.continuity.before_notifying(self.notifier)
        if lines:
            await self.sink.put(lines)
        self.engine.compact(now - self.cfg.availability.horizon_s)
        return len(lines)

    # -- stats -------------------------------------------------------------

    def stats(self) -> dict[str, int | str]:
        out: dict[str, int | str] = {
            "received": self.received,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "polls": self.polls,
            "lines_written": self.sink.written,
            "lines_buffered": self.sink.buffered,
            "write_retries": self.sink.retries,
            "duplicates": self.sequences.duplicates,
            "seq_gaps": sum(self.sequences.gaps(a) for a in self.sequences.agents()),
            "rejected_lines": self.sink.rejected_lines,
            "dead_letters": self.dead_letter.written,
            "dead_letters_dropped": self.dead_letter.dropped,
            "dead_letters_failed": self.dead_letter.failed,
            **self.guard.counts,
            "alerts_faults_firing": len(self.guard.faults.firing),
            "alerts_faults_raised": self.guard.faults.raised,
            "batches": self.batches,
            "acked": self.mqtt.acked,
            "unacked": self.acks.unacked,
        }
        out.update({f"facts_{k}": v for k, v in self.facts.items()})
        if self.notifier is not None:  # every post: outage, monitoring and fault alerts
            out["alertmanager_posts"] = self.notifier.posts
            out["alertmanager_failures"] = self.notifier.failures
            out["alertmanager_rejected"] = self.notifier.rejected
        if self.alerting is not None:
            out.update(self.alerting.stats())
        if self.continuity is not None:
            out["seq_resumed"] = self.sequences.resumed
            out.update(self.continuity.stats())
        if self.mapper is not None:
            out["polls_unmapped"] = self.mapper.counts.unmapped_polls
            out["interfaces_missing"] = self.mapper.counts.interface_missing
            out["interfaces_ambiguous"] = self.mapper.counts.interface_ambiguous
        out.update({f"rejected_{k}": v for k, v in self.rejected.items()})
        if self.partition_stats is not None:
            out.update(self.partition_stats())
        return out

    async def _stats_loop(self) -> None:
        last: dict[str, int | str] = {}
        holes_logged: dict[str, list[tuple[int, int]]] = {}
        while True:
            await asyncio.sleep(self.cfg.collector.stats_interval_s)
            stats = self.stats()
            if stats != last:
                log.info("stats %s", " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
                last = stats
            # Gaps are logged when they change (a replay in progress fills them again).
            for agent in self.sequences.agents():
                holes = self.sequences.holes(agent)
                if holes != holes_logged.get(agent, []):
                    if holes:
                        log.warning("agent %s: %d sequence number(s) not received (yet): %s",
                                    agent, self.sequences.gaps(agent),
                                    ", ".join(f"{a}-{b}" if a != b else str(a)
                                              for a, b in holes))
                    else:
                        log.info("agent %s: no sequence gaps any more", agent)
                    holes_logged[agent] = holes
            if not self.owning():
                continue
            ts_ms = schema.to_ms(datetime.now(UTC))
            ln = schema.collector_stats_line(self.cfg.collector.id, stats, ts_ms)
            lines = [ln] if ln else []
            if self.mapper is not None:
                lines += self.unmapped_log.lines(self.mapper.counts.unmapped_devices,
                                                 self.cfg.collector.id, ts_ms)
            if lines:
                await self.sink.put(lines)

    # -- run ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        c = self.cfg
        log.info("collector %s starting: broker %s:%d, influx %s (%s)", c.collector.id,
                 c.mqtt.host, c.mqtt.port, c.influx.url, c.influx.api)
        sink_stop = asyncio.Event()
        if self.continuity is not None:  # before subscribing: nothing acked before it
            await self.continuity.restore()
        try:
            async with asyncio.TaskGroup() as tg:
                sink = tg.create_task(self.sink.run(sink_stop), name="sink")
                stats = tg.create_task(self._stats_loop(), name="stats")
                states = tg.create_task(self._availability_loop(), name="availability")
                if self.notifier is not None:
                    self.notifier.may_post = self.owning
                    tg.create_task(self._deliver_alerts(self.notifier, sink_stop),
                                   name="alerts")
                reload = (tg.create_task(self.maintenance.run(), name="maintenance")
                          if self.maintenance is not None else None)
                keep = (tg.create_task(self.continuity.run(), name="checkpoint")
                        if self.continuity is not None else None)
                await self.mqtt.run(stop, self._receive, self.sink.flush_soon)
                stats.cancel()
                states.cancel()
                for task in (reload, keep):
                    if task is not None:
                        task.cancel()
                await self.emit_availability()
                if self.continuity is not None:  # the last one: a standby goes on exactly
                    await self.continuity.write()
                sink_stop.set()
                await sink
        finally:
            await self.writer.close()
            self.dead_letter.close()
            log.info("collector %s stopped: %s", c.collector.id, self.stats())

    async def _deliver_alerts(self, notifier: Notifier, stop: asyncio.Event) -> None:
        """Every alert to Alertmanager until ``stop`` (then a last bounded attempt)."""
        try:
            await notifier.run(stop)
        finally:
            if self.alerting is not None and not self.fenced:
                self.alerting.save()
            await notifier.port.close()

    async def _receive(self, message: Received) -> None:
        """One message from MQTT; a bug handling it must not stop the flow of good ones."""
        try:
            await self.handle(message.topic, message.payload, ticket=message.ticket)
        except (MqttError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Keep the message where an operator finds it (dead-letter, reason
            # internal_error) and go on.
            log.exception("topic %s: internal error handling a message", message.topic)
            self._reject(datetime.now(UTC), message.topic, "internal_error", repr(exc),
                         message.payload)
            self._settle(message.ticket)
