"""Per-agent sequence accounting: duplicates and gaps. Pure.

Each agent numbers its messages 0, 1, 2, ... (persisted in its spool). The
collector keeps, per agent, the set of sequence numbers seen as a list of
disjoint ranges — a handful of ranges in practice, since messages mostly arrive
in order — so a replayed message already stored is recognised and holes
(numbers never received) can be reported. Storage is idempotent anyway (a
point rewritten with the same tags and time replaces itself), so a duplicate
is never counted twice even after a collector restart.

Across a failover (collector/checkpoint.py) the ranges are restored from the last
checkpoint (:meth:`SequenceTracker.restore`): a re-delivered message is a duplicate. The
messages the previous owner received and acknowledged after that checkpoint are not
re-delivered: the first message of each restored agent above its restored position
closes the hole up to it (counted in :attr:`SequenceTracker.resumed`), since the
previous owner acknowledged in arrival order - a gap is what was never received.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum


class Seen(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"


@dataclass
class _Ranges:
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # inclusive

    def add(self, n: int) -> bool:
        """Insert ``n``; False when it was already present."""
        i = bisect.bisect_right(self.starts, n) - 1
        if i >= 0 and self.starts[i] <= n <= self.ends[i]:
            return False
        joins_left = i >= 0 and self.ends[i] == n - 1
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == n + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends[i + 1]
            del self.starts[i + 1], self.ends[i + 1]
        elif joins_left:
            self.ends[i] = n
        elif joins_right:
            self.starts[i + 1] = n
        else:
            self.starts.insert(i + 1, n)
            self.ends.insert(i + 1, n)
        return True

    def holes(self) -> list[tuple[int, int]]:
        """The missing runs ``(first, last)``, inclusive, oldest first."""
        return [(self.ends[k] + 1, self.starts[k + 1] - 1) for k in range(len(self.starts) - 1)]

    def missing(self) -> int:
        return sum(self.starts[k + 1] - self.ends[k] - 1 for k in range(len(self.starts) - 1))

    def compact(self, max_ranges: int) -> None:
        """Forget the oldest holes when there are too many (bounded memory)."""
        while len(self.starts) > max_ranges:
            self.ends[0] = self.ends[1]
            del self.starts[1], self.ends[1]


#: Per agent, its seen ranges ``(first, last)`` inclusive, oldest first (a checkpoint's).
Positions = dict[str, list[tuple[int, int]]]


class SequenceTracker:
    def __init__(self, max_ranges_per_agent: int = 1024) -> None:
        self._agents: dict[str, _Ranges] = {}
        self.max_ranges = max_ranges_per_agent
        self.duplicates = 0
        self.resumed = 0  # numbers taken as the previous owner's (after a restore)
        self._resuming: dict[str, int] = {}  # agent -> restored highest, until passed

    def observe(self, agent: str, seq: int) -> Seen:
        ranges = self._agents.setdefault(agent, _Ranges())
        top = self._resuming.get(agent)
        if top is not None and seq > top:
            del self._resuming[agent]
            if seq > top + 1:  # acknowledged by the previous owner: not a gap
                ranges.ends[-1] = seq - 1  # the restored last range ends at ``top``
                self.resumed += seq - top - 1
        if not ranges.add(seq):
            self.duplicates += 1
            return Seen.DUPLICATE
        ranges.compact(self.max_ranges)
        return Seen.NEW

    def positions(self, max_ranges: int = 16) -> Positions:
        """Every agent's seen ranges, the newest ``max_ranges`` of each (older holes are
        forgotten as :meth:`_Ranges.compact` does), for a checkpoint."""
        out: Positions = {}
        for agent, r in self._agents.items():
            pairs = list(zip(r.starts, r.ends, strict=True))
            if len(pairs) > max_ranges:
                cut = len(pairs) - max(max_ranges, 1)
                pairs = [(pairs[0][0], pairs[cut][1]), *pairs[cut + 1:]]
            out[agent] = pairs
        return out

    def restore(self, positions: Positions) -> None:
        """Continue from a checkpoint's positions (before any message of this run)."""
        for agent, pairs in positions.items():
            r = _Ranges([a for a, _ in pairs], [b for _, b in pairs])
            self._agents[agent] = r
            if r.ends:
                self._resuming[agent] = r.ends[-1]

    def gaps(self, agent: str) -> int:
        """Sequence numbers between the lowest and highest seen that never arrived."""
        ranges = self._agents.get(agent)
        return ranges.missing() if ranges else 0

    def holes(self, agent: str, limit: int = 10) -> list[tuple[int, int]]:
        """The newest ``limit`` runs of sequence numbers that never arrived, ``(first, last)``
        inclusive, for the logs. A hole may still fill while a replay is under way."""
        ranges = self._agents.get(agent)
        return ranges.holes()[-limit:] if ranges and limit > 0 else []

    def highest(self, agent: str) -> int | None:
        ranges = self._agents.get(agent)
        return ranges.ends[-1] if ranges and ranges.ends else None

    def agents(self) -> list[str]:
        return sorted(self._agents)
