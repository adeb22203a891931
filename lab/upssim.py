"""A UPS whose power the test switches: a real UPS recording (snmpsim-data's EAST iStars,
UPS-MIB) in three variants - on mains, on battery, battery low - served by one snmpsim on
one port, switched by restarting the simulator, and a device that stops answering.

``write_ups_variants(dir)`` writes the three ``.snmprec`` files (the recording with the
UPS-MIB objects of :data:`UPS_STATES` set); :class:`UpsSim` serves one of them under
one community and ``switch(state)`` swaps the file and restarts the simulator on the same
port (snmpsim indexes its data files at start: a restart re-reads them; a few seconds).
``stop_answering()`` freezes it (SIGSTOP: requests go unanswered, as with a UPS whose
SNMP card died with the batteries); ``answer()`` thaws it.
"""

from __future__ import annotations

import bz2
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from lab.snmpsim import SNMPSIM_DATA_DIR, SnmpSim

UpsState = Literal["mains", "on_battery", "battery_low"]

#: The real recording the variants start from (UPS-MIB under 1.3.6.1.2.1.33).
RECORDING_UPS: Final = SNMPSIM_DATA_DIR / "UPS/eastpower-istars-swv053.snmprec.bz2"

UPS: Final = "1.3.6.1.2.1.33.1"
OID_BATTERY_STATUS: Final = f"{UPS}.2.1.0"  # 2 batteryNormal, 3 batteryLow
OID_SECONDS_ON_BATTERY: Final = f"{UPS}.2.2.0"
OID_MINUTES_REMAINING: Final = f"{UPS}.2.3.0"
OID_CHARGE_REMAINING: Final = f"{UPS}.2.4.0"
OID_OUTPUT_SOURCE: Final = f"{UPS}.4.1.0"  # 3 normal, 5 battery

#: Each state's UPS-MIB values (INTEGER), over the recording's.
UPS_STATES: Final[Mapping[UpsState, Mapping[str, int]]] = {
    "mains": {OID_OUTPUT_SOURCE: 3, OID_BATTERY_STATUS: 2, OID_SECONDS_ON_BATTERY: 0,
              OID_CHARGE_REMAINING: 100},
    "on_battery": {OID_OUTPUT_SOURCE: 5, OID_BATTERY_STATUS: 2, OID_SECONDS_ON_BATTERY: 120,
                   OID_MINUTES_REMAINING: 40, OID_CHARGE_REMAINING: 90},
    "battery_low": {OID_OUTPUT_SOURCE: 5, OID_BATTERY_STATUS: 3, OID_SECONDS_ON_BATTERY: 2400,
                    OID_MINUTES_REMAINING: 4, OID_CHARGE_REMAINING: 12},
}


def ups_variant(state: UpsState, src: Path = RECORDING_UPS) -> str:
    """The recording's text with ``state``'s values (every other line as recorded)."""
    raw = bz2.decompress(src.read_bytes()) if src.suffix == ".bz2" else src.read_bytes()
    values = UPS_STATES[state]
    lines: list[str] = []
    seen: set[str] = set()
    for line in raw.decode("latin-1").splitlines():
        oid = line.split("|", 1)[0].lstrip(".")
        if oid in values:
            line = f"{oid}|2|{values[oid]}"
            seen.add(oid)
        lines.append(line)
    missing = set(values) - seen
    if missing:
        raise ValueError(f"{src}: no {sorted(missing)} to set")
    return "\n".join(lines) + "\n"


def write_ups_variants(directory: Path, src: Path = RECORDING_UPS) -> dict[UpsState, Path]:
    """The three variants as ``<directory>/ups-<state>.snmprec``."""
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[UpsState, Path] = {}
    for state in UPS_STATES:
        path = directory / f"ups-{state}.snmprec"
        path.write_text(ups_variant(state, src), encoding="latin-1")
        out[state] = path
    return out


class UpsSim(SnmpSim):
    """One snmpsim serving the UPS under ``community``, in the state the test sets."""

    def __init__(self, workdir: str | os.PathLike[str], community: str = "ups",
                 state: UpsState = "mains", port: int | None = None) -> None:
        root = Path(workdir)
        self.variants = write_ups_variants(root / "variants")
        self.community = community
        self.state: UpsState = state
        super().__init__(root / "sim", {community: self.variants[state]}, port)

    def switch(self, state: UpsState) -> None:
        """Serve ``state`` from now on: same port, the simulator restarted."""
        self.state = state
        self.recordings[self.community] = self.variants[state]
        self.restart()

    def stop_answering(self) -> None:
        """Requests go unanswered (SIGSTOP) until :meth:`answer`."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)

    def answer(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGCONT)

    def stop(self, grace_s: float | None = None) -> None:
        self.answer()  # a stopped process would not see the SIGTERM
        super().stop(grace_s)
