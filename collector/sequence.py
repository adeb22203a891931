"""Per-agent sequence accounting: duplicates and gaps. Pure.

Each agent numbers its messages 0, 1, 2, ... (persisted in its spool). The
collector keeps, per agent, the set of sequence numbers seen as a list of
disjoint ranges — a handful of ranges in practice, since messages mostly arrive
in order — so a replayed message already stored is recognised and holes
(numbers never received) can be reported. Storage is idempotent anyway (a
point rewritten with the same tags and time replaces itself), so a duplicate
is never counted twice even after a collector restart.
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


class SequenceTracker:
    def __init__(self, max_ranges_per_agent: int = 1024) -> None:
        self._agents: dict[str, _Ranges] = {}
        self.max_ranges = max_ranges_per_agent
        self.duplicates = 0

    def observe(self, agent: str, seq: int) -> Seen:
        ranges = self._agents.setdefault(agent, _Ranges())
        if not ranges.add(seq):
            self.duplicates += 1
            return Seen.DUPLICATE
        ranges.compact(self.max_ranges)
        return Seen.NEW

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
