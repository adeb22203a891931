from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from collector.sequence import Seen, SequenceTracker


def test_duplicates_and_gaps() -> None:
    t = SequenceTracker()
    assert [t.observe("a", n) for n in (0, 1, 2, 5, 6)] == [Seen.NEW] * 5
    assert t.gaps("a") == 2
    assert t.observe("a", 1) is Seen.DUPLICATE
    assert t.observe("a", 3) is Seen.NEW
    assert t.gaps("a") == 1
    assert t.observe("a", 4) is Seen.NEW
    assert t.gaps("a") == 0 and t.highest("a") == 6
    assert t.duplicates == 1
    assert t.gaps("other") == 0


@given(st.lists(st.integers(0, 200), max_size=300), st.randoms())
def test_matches_a_plain_set(seqs: list[int], rnd: random.Random) -> None:
    t = SequenceTracker()
    seen: set[int] = set()
    rnd.shuffle(seqs)
    for n in seqs:
        assert (t.observe("a", n) is Seen.NEW) == (n not in seen)
        seen.add(n)
    if seen:
        assert t.gaps("a") == (max(seen) - min(seen) + 1) - len(seen)


def test_memory_bounded() -> None:
    t = SequenceTracker(max_ranges_per_agent=4)
    for n in range(0, 100, 2):
        t.observe("a", n)
    assert t.gaps("a") <= 3
