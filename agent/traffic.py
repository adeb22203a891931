"""What the uplink moves, in bytes: by lane, per poll and interface sample, compression,
the backlog's drain rate and ETA. Pure.

Fed by the batcher (what each stored message holds: :meth:`Traffic.note_spooled`) and the
uplink (what each acknowledged publish cost: :meth:`Traffic.note_sent`, whose
``raw_bytes`` is the JSON the message carries and ``wire_bytes`` what went on the wire —
equal until a compact encoding sends fewer). The status reads a :class:`Period`: the
figures since the previous online status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lane = Literal["live", "backlog"]


@dataclass(frozen=True, slots=True)
class Period:
    """The figures of one status period (None: nothing to measure in it)."""

    #: wire bytes per device poll / per interface sample stored in the period
    bytes_per_poll: float | None
    bytes_per_interface: float | None
    #: raw (JSON) bytes / wire bytes of what was sent in the period
    compression_ratio: float | None
    #: backlog bytes acknowledged per second in the period
    drain_bytes_per_s: float | None


@dataclass
class Traffic:
    """Byte counters since the agent started, and the marks of the previous period."""

    bytes_live: int = 0
    bytes_backlog: int = 0
    raw_bytes: int = 0
    spooled_bytes: int = 0
    spooled_polls: int = 0
    spooled_interfaces: int = 0
    _mark: tuple[int, int, int, int, int, int, float] | None = None

    @property
    def bytes_sent(self) -> int:
        return self.bytes_live + self.bytes_backlog

    def note_spooled(self, polls: int, interfaces: int, nbytes: int) -> None:
        """A telemetry message of ``nbytes`` (JSON) holding ``polls`` device polls (parts
        count as theirs) and ``interfaces`` interface samples was stored."""
        self.spooled_polls += polls
        self.spooled_interfaces += interfaces
        self.spooled_bytes += nbytes

    def note_sent(self, lane: Lane, raw_bytes: int, wire_bytes: int) -> None:
        """A telemetry publish was acknowledged: ``raw_bytes`` of JSON it carries, in
        ``wire_bytes`` on the wire (the hook a compact encoding feeds)."""
        if lane == "live":
            self.bytes_live += wire_bytes
        else:
            self.bytes_backlog += wire_bytes
        self.raw_bytes += raw_bytes

    def period(self, now_s: float) -> Period:
        """The figures since the previous call (the first: since start); starts the next."""
        now = (self.bytes_backlog, self.bytes_sent, self.raw_bytes, self.spooled_bytes,
               self.spooled_polls, self.spooled_interfaces, now_s)
        before = self._mark or (0, 0, 0, 0, 0, 0, None)
        self._mark = now
        backlog, sent, raw, spooled, polls, interfaces = (
            a - b for a, b in zip(now[:6], before[:6], strict=True))
        ratio = raw / sent if sent else None
        per = spooled / (ratio or 1.0)  # stored JSON, as it goes on the wire
        elapsed = None if before[6] is None else now_s - before[6]
        return Period(
            bytes_per_poll=round(per / polls, 1) if polls else None,
            bytes_per_interface=round(per / interfaces, 2) if interfaces else None,
            compression_ratio=round(ratio, 3) if ratio else None,
            drain_bytes_per_s=(round(backlog / elapsed, 1) if elapsed and elapsed > 0
                               else None),
        )


def drain_eta_s(backlog_bytes: int, drain_bytes_per_s: float | None) -> float | None:
    """How long the backlog takes to drain at the measured rate (0: nothing to drain;
    None: not draining, so no estimate)."""
    if backlog_bytes <= 0:
        return 0.0
    if not drain_bytes_per_s:
        return None
    return round(backlog_bytes / drain_bytes_per_s, 1)
