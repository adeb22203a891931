"""What a partition's new owner restores before it acknowledges anything: the checkpoint
document, its encoding and chunks, and what makes one acceptable (pure).

A checkpoint is one versioned JSON document of one partition (``[partition] id``, else
``[collector] id``) as one collector saw it: the open outages and each agent's last sign
of life (what collector/alerting.py's ``OutageStore`` keeps in ``state_path``), the
agents' sequence positions (:mod:`collector.sequence`), which agents are online, which
instance owns each agent id (:mod:`collector.instances`), and the availability engine's
:class:`collector.availability.Seed` (the facts deciding each element's state from its
last emit on, the services' stored points of the running bucket). It is compressed
(zlib) and cut into base64 text chunks below InfluxDB 1.x's 64 KiB string field limit
(:func:`to_chunks`); :func:`assemble` puts the newest complete generation back together
and :func:`decode` refuses what is not a whole, well-formed checkpoint of the expected
partition - a corrupt, foreign, oversized or newer-format document raises
:class:`CheckpointError`, never anything else. docs/delivery.md, "Failover".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from collector.availability import (
    AgentOffline,
    Change,
    Fact,
    Observation,
    Seed,
    ServiceKey,
    State,
    Unobserved,
)
from collector.outages import OutageRecord
from collector.sequence import Positions

FORMAT: Final = "xanet-checkpoint"
VERSION: Final = 1
#: Characters of one chunk: InfluxDB 1.x refuses string fields over 64 KiB.
CHUNK_CHARS: Final = 60_000
_STATES: Final[Mapping[object, State]] = {
    "up": "up", "down": "down", "unknown": "unknown", "maintenance": "maintenance"}


class CheckpointError(ValueError):
    """Not a whole, well-formed checkpoint of the expected partition (the reason says why)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One partition's state as collector ``collector`` saw it at ``written_at``."""

    partition: str
    collector: str
    generation: int  # grows with every checkpoint of the partition: the newest wins
    written_at: float
    outages: list[OutageRecord] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # agent -> last sign of life
    sequences: Positions = field(default_factory=dict)
    online: dict[str, bool] = field(default_factory=dict)
    instances: dict[str, tuple[str, float]] = field(default_factory=dict)  # owner, seen
    engine: Seed | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One stored piece of a generation: ``index`` of ``count``, ``sha`` of the whole."""

    generation: int
    index: int
    count: int
    sha: str
    data: str


# ------------------------------------------------------------------------ encoding


def to_json(cp: Checkpoint) -> dict[str, object]:
    doc: dict[str, object] = {
        "format": FORMAT, "v": VERSION, "partition": cp.partition, "collector": cp.collector,
        "generation": cp.generation, "written_at": cp.written_at,
        "outages": [r.to_json() for r in cp.outages],
        "seen": dict(sorted(cp.seen.items())),
        "sequences": {a: [list(p) for p in r] for a, r in sorted(cp.sequences.items())},
        "online": dict(sorted(cp.online.items())),
        "instances": {a: list(v) for a, v in sorted(cp.instances.items())},
    }
    if cp.engine is not None:
        e = cp.engine
        doc["engine"] = {
            "as_of": e.as_of,
            "observed": [[f.element, f.ts, f.state] for f in e.facts
                         if isinstance(f, Observation)],
            "unobserved": [[f.element, f.ts, f.reason] for f in e.facts
                           if isinstance(f, Unobserved)],
            "offline": [[f.agent, f.ts] for f in e.facts if isinstance(f, AgentOffline)],
            "services": [[k.commune, k.service, [[c.ts, c.state] for c in pts]]
                         for k, pts in sorted(e.services.items())],
        }
    return doc


def encode(cp: Checkpoint, max_bytes: int) -> bytes:
    """The checkpoint compressed; :class:`CheckpointError` when its JSON is over
    ``max_bytes``."""
    text = json.dumps(to_json(cp), ensure_ascii=False, separators=(",", ":")).encode()
    if len(text) > max_bytes:
        raise CheckpointError(f"checkpoint of {len(text)} bytes is over the "
                              f"{max_bytes}-byte limit")
    return zlib.compress(text, 6)


def decode(blob: bytes, partition: str, max_bytes: int) -> Checkpoint:
    """The checkpoint of ``partition`` in ``blob`` (from :func:`encode`), validated."""
    inflate = zlib.decompressobj()
    try:
        text = inflate.decompress(blob, max_bytes + 1)
    except zlib.error as exc:
        raise CheckpointError(f"not a compressed checkpoint: {exc}") from None
    if len(text) > max_bytes or inflate.unconsumed_tail:
        raise CheckpointError(f"checkpoint over the {max_bytes}-byte limit")
    if not inflate.eof:
        raise CheckpointError("checkpoint cut short")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"not JSON: {exc}") from None
    return from_json(doc, partition)


def from_json(doc: object, partition: str) -> Checkpoint:
    d = _dict(doc, "document")
    if d.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint (format {d.get('format')!r})")
    if d.get("v") != VERSION:
        raise CheckpointError(f"checkpoint format version {d.get('v')!r}, this collector "
                              f"reads {VERSION}")
    if d.get("partition") != partition:
        raise CheckpointError(f"checkpoint of partition {d.get('partition')!r}, not "
                              f"{partition!r}")
    try:
        outages = [OutageRecord.from_json(_dict(r, "outage"))
                   for r in _list(d.get("outages", []), "outages")]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"bad open outage: {exc}") from None
    return Checkpoint(
        partition=partition, collector=_str(d.get("collector"), "collector"),
        generation=_int(d.get("generation"), "generation"),
        written_at=_ts(d.get("written_at"), "written_at"), outages=outages,
        seen={a: _ts(t, f"seen {a}") for a, t in _dict(d.get("seen", {}), "seen").items()},
        sequences={a: _ranges(r, a) for a, r in
                   _dict(d.get("sequences", {}), "sequences").items()},
        online={a: _bool(v, f"online {a}") for a, v in
                _dict(d.get("online", {}), "online").items()},
        instances={a: _instance(v, a) for a, v in
                   _dict(d.get("instances", {}), "instances").items()},
        engine=_seed(d["engine"]) if d.get("engine") is not None else None,
    )


def _seed(doc: object) -> Seed:
    e = _dict(doc, "engine")
    facts: list[Fact] = []
    for item in _list(e.get("observed", []), "observed"):
        element, ts, state = _tuple(item, 3, "observed fact")
        if state not in ("up", "down"):
            raise CheckpointError(f"observed fact: state {state!r}")
        facts.append(Observation(_str(element, "element"), _ts(ts, "fact ts"),
                                 "up" if state == "up" else "down"))
    for item in _list(e.get("unobserved", []), "unobserved"):
        element, ts, reason = _tuple(item, 3, "unobserved fact")
        facts.append(Unobserved(_str(element, "element"), _ts(ts, "fact ts"),
                                _str(reason, "reason")))
    for item in _list(e.get("offline", []), "offline"):
        agent, ts = _tuple(item, 2, "offline mark")
        facts.append(AgentOffline(_str(agent, "agent"), _ts(ts, "offline ts")))
    services: dict[ServiceKey, list[Change]] = {}
    for item in _list(e.get("services", []), "services"):
        commune, service, points = _tuple(item, 3, "service")
        pts: list[Change] = []
        for p in _list(points, "service points"):
            ts, state = _tuple(p, 2, "service point")
            if state not in _STATES:
                raise CheckpointError(f"service point: state {state!r}")
            pts.append(Change(_ts(ts, "service point ts"), _STATES[state]))
        services[ServiceKey(_str(commune, "commune"), _str(service, "service"))] = pts
    return Seed(_ts(e.get("as_of"), "as_of"), facts, services)


# -------------------------------------------------------------------------- chunks


def to_chunks(generation: int, blob: bytes, chunk_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """``blob`` as base64 text chunks of at most ``chunk_chars`` characters."""
    text = base64.b64encode(blob).decode("ascii")
    parts = [text[i:i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
    sha = hashlib.sha256(blob).hexdigest()
    return [Chunk(generation, i, len(parts), sha, p) for i, p in enumerate(parts)]


def assemble(chunks: Iterable[Chunk]) -> list[tuple[int, bytes]]:
    """Every complete generation among ``chunks`` (all its pieces, one count and hash,
    the hash right), newest first. A generation cut short or mixed is left out."""
    by_gen: dict[int, list[Chunk]] = {}
    for c in chunks:
        by_gen.setdefault(c.generation, []).append(c)
    out: list[tuple[int, bytes]] = []
    for gen in sorted(by_gen, reverse=True):
        pieces = {c.index: c for c in by_gen[gen]}
        first = next(iter(pieces.values()))
        if sorted(pieces) != list(range(first.count)) or any(
                c.count != first.count or c.sha != first.sha for c in pieces.values()):
            continue
        try:
            blob = base64.b64decode("".join(pieces[i].data for i in range(first.count)),
                                    validate=True)
        except (binascii.Error, ValueError):
            continue
        if hashlib.sha256(blob).hexdigest() == first.sha:
            out.append((gen, blob))
    return out


# ---------------------------------------------------------------------- validation


def _dict(v: object, what: str) -> dict[str, object]:
    if not isinstance(v, dict):
        raise CheckpointError(f"{what}: not an object")
    return {str(k): x for k, x in v.items()}


def _list(v: object, what: str) -> list[object]:
    if not isinstance(v, list):
        raise CheckpointError(f"{what}: not a list")
    return v


def _tuple(v: object, n: int, what: str) -> tuple[object, ...]:
    if not isinstance(v, list) or len(v) != n:
        raise CheckpointError(f"{what}: not a list of {n}: {v!r}"[:200])
    return tuple(v)


def _str(v: object, what: str) -> str:
    if not isinstance(v, str) or not v:
        raise CheckpointError(f"{what}: not a string: {v!r}"[:200])
    return v


def _bool(v: object, what: str) -> bool:
    if not isinstance(v, bool):
        raise CheckpointError(f"{what}: not true/false: {v!r}"[:200])
    return v


def _int(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise CheckpointError(f"{what}: not a count: {v!r}"[:200])
    return v


def _ts(v: object, what: str) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
        raise CheckpointError(f"{what}: not a time: {v!r}"[:200])
    return float(v)


def _ranges(v: object, agent: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for item in _list(v, f"sequences {agent}"):
        a, b = (_int(x, f"sequences {agent}") for x in _tuple(item, 2, f"sequences {agent}"))
        if b < a or (out and a <= out[-1][1] + 1):
            raise CheckpointError(f"sequences {agent}: ranges not sorted and apart")
        out.append((a, b))
    return out


def _instance(v: object, agent: str) -> tuple[str, float]:
    owner, seen = _tuple(v, 2, f"instances {agent}")
    return _str(owner, f"instances {agent}"), _ts(seen, f"instances {agent}")
