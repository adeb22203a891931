"""``xanet deadletter list|replay``: look at dead letters, and put them back once the cause
is fixed (a clock set right, a limit raised, a field type conflict resolved).

``replay`` sends every selected record back through admission (:func:`collector.admission.
admit`: topic, schema, time bounds, the inventory's site → agent rule) with the time of the
replay, and writes what passes straight to InfluxDB (the collector need not run). Records
of line protocol InfluxDB refused (``kind: lines``) are written as they are. Exactly once:
a record is marked replayed (its id appended to ``replayed.txt``, fsynced) only after its
points were written, and a marked record is never replayed again; a crash in between
writes the same points again, which InfluxDB keeps once (same series and time).

``--correct-clock``: a message refused because the agent's clock was wrong is shifted by
the offset measured when it arrived (its ``sent`` stamp vs the collector's receive time)
before admission, so its polls land at the time they were really taken.

Not re-applied on replay: the duplicate-agent and cardinality guards (the operator decided),
sequence accounting and the running collector's availability state (the points are in
InfluxDB; reports read them there).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from collector.admission import Accepted, Limits, admit
from collector.config import CollectorConfig
from collector.deadletter import mark_replayed, read_records, replayed_ids
from collector.errors import WriteRejected, WriteUnavailable
from collector.schema import status_line, telemetry_lines
from collector.writer import LineWriter, make_writer
from xanet import wire
from xanet.config import load_model

Record = dict[str, object]


@dataclass
class Selection:
    reasons: set[str] = field(default_factory=set)
    topic: str | None = None
    ids: set[str] = field(default_factory=set)
    since: datetime | None = None

    def matches(self, r: Record) -> bool:
        if self.reasons and r.get("reason") not in self.reasons:
            return False
        if self.ids and r.get("id") not in self.ids:
            return False
        if self.topic and self.topic not in str(r.get("topic", "")):
            return False
        if self.since is not None:
            try:
                at = datetime.fromisoformat(str(r.get("received_at")))
            except ValueError:
                return False
            if at < self.since:
                return False
        return True


def select(directory: Path, sel: Selection) -> list[Record]:
    return [r for _, r in read_records(directory) if sel.matches(r)]


def shift_clock(record: Record, msg: wire.Telemetry | wire.Status
                ) -> wire.Telemetry | wire.Status | None:
    """The message with the agent's clock error taken out, or ``None`` when it cannot be
    measured (no ``sent``/``ts`` stamp)."""
    received = datetime.fromisoformat(str(record["received_at"]))
    if isinstance(msg, wire.Telemetry):
        if msg.sent is None:
            return None
        offset = msg.sent - received
        return msg.model_copy(update={
            "sent": received,
            "polls": [p.model_copy(update={"ts": p.ts - offset}) for p in msg.polls]})
    if msg.ts is None:
        return None
    return msg.model_copy(update={"ts": received})


@dataclass
class Plan:
    #: (record id, its lines, its polls)
    items: list[tuple[str, list[str], int]] = field(default_factory=list)

    @property
    def polls(self) -> int:
        return sum(n for _, _, n in self.items)
    refused: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


def plan(records: list[Record], done: set[str], cfg: CollectorConfig, now: datetime,
         *, correct_clock: bool = False, site_agents: dict[str, str] | None = None) -> Plan:
    """What replaying ``records`` would write (pure: no I/O)."""
    i = cfg.ingest
    limits = Limits(max_payload_bytes=i.max_payload_bytes, max_future_s=i.max_future_s,
                    max_past_s=i.max_past_s, max_profile_values=i.max_profile_values,
                    max_profile_tag_bytes=i.max_profile_tag_bytes)
    out = Plan()
    for r in records:
        rid = str(r.get("id", ""))
        if not rid:
            out.skipped["no id (written by an older collector)"] += 1
            continue
        if rid in done:
            out.skipped["already replayed"] += 1
            continue
        if r.get("truncated") or "payload" not in r:
            out.skipped["payload not kept whole"] += 1
            continue
        payload = str(r["payload"])
        if r.get("kind") == "lines":
            out.items.append((rid, [ln for ln in payload.split("\n") if ln], 0))
            continue
        topic = str(r.get("topic", ""))
        data = payload.encode()
        if correct_clock:
            verdict = admit(topic, data, now, replace(limits, max_future_s=1e9,
                                                      max_past_s=1e9))
            if isinstance(verdict, Accepted):
                fixed = shift_clock(r, verdict.message)
                if fixed is None:
                    out.refused["clock offset unknown (no send time)"] += 1
                    continue
                data = wire.encode(fixed)
        verdict = admit(topic, data, now, limits, site_agents)
        if not isinstance(verdict, Accepted) or verdict.dropped:
            reason = verdict.reason if not isinstance(verdict, Accepted) else \
                ",".join(sorted(verdict.dropped))
            out.refused[reason] += 1
            continue
        msg = verdict.message
        if isinstance(msg, wire.Telemetry):
            out.items.append((rid, telemetry_lines(verdict.where, msg), len(msg.polls)))
        else:
            out.items.append((rid, [status_line(verdict.where, msg, now)], 0))
    return out


async def _write(writer: LineWriter, items: list[tuple[str, list[str], int]], batch: int
                 ) -> tuple[list[str], Counter[str]]:
    """Write every item's lines; the ids written, and why the others were refused.

    All together first, in batches; if InfluxDB refuses lines (4xx), record by record, so
    one record still refused does not hold back the others. Unavailable: raised."""
    failed: Counter[str] = Counter()
    try:
        lines = [ln for _, ls, _ in items for ln in ls]
        try:
            for k in range(0, len(lines), batch):
                await writer.write(lines[k:k + batch])
            return [rid for rid, _, _ in items], failed
        except WriteRejected:
            pass
        done = []
        for rid, ls, _ in items:
            try:
                await writer.write(ls)
            except WriteRejected as exc:
                failed[f"InfluxDB refused: {str(exc)[:200]}"] += 1
            else:
                done.append(rid)
        return done, failed
    finally:
        await writer.close()


def _selection(args: argparse.Namespace) -> Selection:
    since = None
    if args.since:
        since = datetime.fromisoformat(args.since)
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    return Selection(set(args.reason or []), args.topic, set(args.id or []), since)


def _directory(args: argparse.Namespace, cfg: CollectorConfig) -> Path:
    return Path(args.dir) if args.dir else cfg.ingest.dead_letter_dir


def cmd_list(args: argparse.Namespace) -> int:
    cfg = load_model(args.config, CollectorConfig)
    directory = _directory(args, cfg)
    done = replayed_ids(directory)
    records = select(directory, _selection(args))
    by_reason: Counter[str] = Counter()
    for r in records:
        replayed = str(r.get("id")) in done
        if args.pending and replayed:
            continue
        by_reason[str(r.get("reason"))] += 1
        polls = ""
        if r.get("kind") == "lines":
            polls = f"{str(r.get('payload', '')).count(chr(10)) + 1} line(s): "
        print(f"{r.get('received_at')}  {r.get('reason')!s:<16} {r.get('id')!s:<32} "
              f"{'replayed' if replayed else 'pending ':<8}  {r.get('topic') or '-'}  "
              f"{polls}{str(r.get('detail', ''))[:120]}")
    print(f"{sum(by_reason.values())} record(s): "
          + (", ".join(f"{k} {v}" for k, v in by_reason.most_common()) or "none"))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    cfg = load_model(args.config, CollectorConfig)
    directory = _directory(args, cfg)
    site_agents: dict[str, str] | None = None
    if cfg.inventory is not None:
        from xanet.inventory import load_inventory

        inv = load_inventory(cfg.inventory.path)
        site_agents = {s.id: s.agent for s in inv.sites if s.agent}
    records = select(directory, _selection(args))
    p = plan(records, replayed_ids(directory), cfg, datetime.now(UTC),
             correct_clock=args.correct_clock, site_agents=site_agents)
    for why, n in sorted(p.skipped.items()):
        print(f"skipped {n} record(s): {why}")
    for why, n in sorted(p.refused.items()):
        print(f"still refused {n} record(s): {why} (not marked; fix the cause and replay again)")
    n_lines = sum(len(ls) for _, ls, _ in p.items)
    if args.dry_run:
        print(f"dry run: would replay {len(p.items)} record(s): {p.polls} poll(s), "
              f"{n_lines} line(s)")
        return 0
    done: list[str] = []
    failed: Counter[str] = Counter()
    if p.items:
        try:
            done, failed = asyncio.run(_write(make_writer(cfg.influx), p.items,
                                              cfg.influx.batch_lines))
        except WriteUnavailable as exc:
            print(f"xanet deadletter replay: InfluxDB unavailable, nothing marked: {exc}",
                  file=sys.stderr)
            return 1
    mark_replayed(directory, done)
    for why, n in sorted(failed.items()):
        print(f"still refused {n} record(s): {why} (not marked)")
    ok = set(done)
    polls = sum(n for rid, _, n in p.items if rid in ok)
    lines = sum(len(ls) for rid, ls, _ in p.items if rid in ok)
    print(f"replayed {len(done)} record(s): {polls} poll(s), {lines} line(s)")
    return 1 if p.refused or failed else 0
