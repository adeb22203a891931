"""When each device is polled. Pure: times are plain floats (monotonic seconds).

Each device gets a fixed phase inside the interval, derived from its id, so a
fleet's polls are spread evenly instead of bursting at the top of the minute,
and a device keeps the same phase across agent restarts. A poll that overruns
its slot skips the missed slots (counted as overruns) rather than queueing
them: the schedule never drifts and never bursts to catch up.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass


def phase_of(device_id: str, interval_s: float, jitter: float) -> float:
    """A stable offset in ``[0, jitter × interval)`` for ``device_id``."""
    if jitter <= 0:
        return 0.0
    fraction = zlib.crc32(device_id.encode()) / 2**32
    return fraction * jitter * interval_s


@dataclass(frozen=True, slots=True)
class Slot:
    at: float          # when to start the next poll
    skipped: int       # slots missed since the previous one (overruns)


def next_slot(start: float, interval_s: float, phase_s: float, previous: float, now: float) -> Slot:
    """The first slot ``start + phase + k·interval`` after ``previous`` that is not in the past.

    ``previous`` is the slot just polled (or ``-inf`` before the first poll).
    """
    base = start + phase_s
    k_prev = -1 if previous == -math.inf else round((previous - base) / interval_s)
    k_now = math.ceil((now - base) / interval_s - 1e-9)
    k = max(k_prev + 1, k_now, 0)
    return Slot(at=base + k * interval_s, skipped=max(0, k - k_prev - 1) if k_prev >= 0 else 0)
