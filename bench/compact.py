"""Bytes per interface sample of a site's backlog: JSON, JSON+zstd, compact, compact+dictionary.

    python bench/compact.py                       # 10 devices x 10 interfaces, 24 h at 60 s
    python bench/compact.py --hours 1 --traffic uniform

The backlog is lab/backlog.py's (polls as the agent makes them: its rate engine, counters
that advance); it is cut into batches exactly as the agent's replay lane cuts them
(agent/backlogbatch.py ``next_batch``, the core's default announcement, ``--batch-bytes``).
Bytes are MQTT PUBLISH packets (payload + topic + header, agent/uplink.py
``packet_bytes``); TCP/IP and TLS add their own (bench/thin_link.py measures the link).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zstandard

from agent.backlogbatch import Batch, next_batch, next_try
from agent.spool import Entry
from agent.uplink_batches import packet_bytes
from bench.common import finish, header, print_table
from lab.backlog import site_backlog
from xanet import capabilities, compact, topics, wire

TOPIC = topics.build("ha-giang", "00688", "lungcu-hub", "telemetry")
BATCH_TOPIC = topics.build("ha-giang", "00688", "lungcu-hub", "batch")
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def entries_of(msgs: list[wire.Telemetry]) -> list[Entry]:
    return [Entry(m.seq, TOPIC, wire.encode(m.model_copy(update={"sent": None})), 0.0)
            for m in msgs]


def cut(entries: list[Entry], batch_bytes: int) -> list[Batch]:
    caps = capabilities.announce(compact.Limits())
    out: list[Batch] = []
    first: int | None = None
    while entries:
        batch = next_batch(entries, caps, batch_bytes, NOW, first_try=first)
        assert batch is not None
        first = next_try(batch, first, caps.max_batch_messages)
        out.append(batch)
        entries = entries[len(batch.entries):]
    return out


def packets(topic: str, payloads: list[bytes]) -> int:
    return sum(packet_bytes(topic, p, v5=True) for p in payloads)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=10)
    p.add_argument("--interfaces", type=int, default=10)
    p.add_argument("--hours", type=float, default=24)
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--traffic", choices=["site", "uniform"], default="site")
    p.add_argument("--batch-bytes", type=int, nargs="+", default=[16 * 1024, 64 * 1024,
                                                                   256 * 1024 - 64])
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    header(f"compact batches: {args.devices} devices x {args.interfaces} interfaces, "
           f"{args.hours:g} h at {args.interval:g} s, traffic {args.traffic}")
    n_polls = int(args.hours * 3600 / args.interval)
    t0 = NOW - timedelta(hours=args.hours)
    msgs = site_backlog(n_dev=args.devices, n_if=args.interfaces, polls=n_polls, t0=t0,
                        traffic=args.traffic, interval_s=args.interval)
    msgs = [m.model_copy(update={"sent": NOW, "instance": None}) for m in msgs]
    samples = sum(len(pl.interfaces) for m in msgs for pl in m.polls)
    entries = entries_of(msgs)
    rows: list[dict[str, object]] = []

    def row(what: str, n_msgs: int, nbytes: int, **more: object) -> None:
        rows.append({"encoding": what, "messages": n_msgs, "bytes": nbytes,
                     "B/sample": nbytes / samples, **more})

    json_payloads = [wire.encode(m) for m in msgs]
    row("JSON, one message per poll (today)", len(msgs), packets(TOPIC, json_payloads))
    zc = zstandard.ZstdCompressor(level=3)
    row("JSON, each message zstd -3", len(msgs),
        packets(TOPIC, [zc.compress(pl) for pl in json_payloads]))
    # A dictionary trained on another day's polls of a site like it (another seed).
    train = site_backlog(n_dev=args.devices, n_if=args.interfaces, polls=120, seed=7,
                         t0=t0, traffic=args.traffic, interval_s=args.interval)
    dictionary = zstandard.train_dictionary(16 * 1024, [compact.body([m]) for m in train])
    dc = zstandard.ZstdCompressor(level=19, dict_data=dictionary)
    singles = [compact.body([m]) for m in msgs]
    row("compact, one message per poll (live)", len(msgs),
        packets(BATCH_TOPIC, [compact.frame(b) for b in singles]))
    row("compact + 16 KiB dictionary, one per poll", len(msgs),
        packets(BATCH_TOPIC, [compact.MAGIC + b"\x01\x01" + dc.compress(b) for b in singles]))
    for batch_bytes in args.batch_bytes:
        started = time.process_time()
        batches = cut(entries, batch_bytes)
        encode_s = time.process_time() - started
        label = f"{batch_bytes // 1024} KiB batches"
        groups = [[msgs[e.seq] for e in b.entries] for b in batches]
        row(f"JSON + zstd -19, {label}", len(batches), packets(BATCH_TOPIC, [
            zstandard.ZstdCompressor(level=19).compress(b"\n".join(wire.encode(m) for m in g))
            for g in groups]))
        row(f"compact zstd -3, {label}", len(batches), packets(BATCH_TOPIC, [
            compact.encode(g, level=3) for g in groups]))
        decode_s = json_s = 0.0
        for b in batches:  # interleaved, so that both see the same machine
            started = time.process_time()
            compact.decode(b.payload)
            decode_s += time.process_time() - started
            started = time.process_time()
            for e in b.entries:
                wire.decode(json_payloads[e.seq], "telemetry")
            json_s += time.process_time() - started
        row(f"compact (zstd -19), {label}", len(batches),
            packets(BATCH_TOPIC, [b.payload for b in batches]),
            **{"encode µs/poll": encode_s / len(msgs) * 1e6,
               "decode µs/poll": decode_s / len(msgs) * 1e6,
               "JSON decode µs/poll": json_s / len(msgs) * 1e6})
        row(f"compact + dictionary, {label}", len(batches), packets(BATCH_TOPIC, [
            compact.MAGIC + b"\x01\x01" + dc.compress(compact.body(g)) for g in groups]))
    print(f"   {len(msgs):,} polls, {samples:,} interface samples; decode: the collector "
          f"reading the batches, next to its JSON path reading the same messages")
    print_table(rows, ["encoding", "messages", "bytes", "B/sample", "encode µs/poll",
                       "decode µs/poll", "JSON decode µs/poll"])
    finish({"rows": rows, "samples": samples}, args.json)


if __name__ == "__main__":
    main()
