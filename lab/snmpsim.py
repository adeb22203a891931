"""snmpsim serving real recordings and generated ones (counters that advance) on loopback."""

from __future__ import annotations

import bz2
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.base import Daemon, ServiceError
from lab.snmpd import OID_SYS_UPTIME, snmpget

#: Communities under which ``recorded_devices()`` serves the two recordings.
COMMUNITY_IFX = "recorded/vyatta-router"
COMMUNITY_IFTABLE_ONLY = "recorded/ubiquiti-m5"


def _snmpsim_data_dir() -> Path:
    spec = importlib.util.find_spec("snmpsim_data")
    if spec is None or spec.origin is None:
        raise ServiceError("snmpsim-data is not installed (pip install -e '.[test]')")
    return Path(spec.origin).parent / "data"


#: snmpsim-data's recordings (``.snmprec.bz2``).
SNMPSIM_DATA_DIR = _snmpsim_data_dir()

#: Vyatta router (real recording, 586 kB): sysUpTime, ifTable and ifXTable
#: (ifName, ifHCInOctets/ifHCOutOctets, ifHighSpeed) for ifIndex 1..24:
#: lo, mgt, eth0..eth4, gre0, vqos0..vqos15. eth1 (4) and eth2 (5) are up,
#: 1000 Mbit/s, with non-zero 64-bit counters; lo (1) has traffic too.
RECORDING_IFX = SNMPSIM_DATA_DIR / "network/router/vyatta-unknown.snmprec.bz2"

#: Ubiquiti airMAX M5 radio (real recording, 12 kB): sysUpTime and ifTable
#: (ifInOctets/ifOutOctets Counter32) for ifIndex 1..9: lo, eth0, eth1,
#: wifi0, ath0, eth0.40, ath0.40, br0, br1 (eth1 oper down). No ifXTable.
RECORDING_IFTABLE_ONLY = SNMPSIM_DATA_DIR / "network/wifi/ubiquiti-m5.snmprec.bz2"


def snmprec_values(path: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """Read a ``.snmprec`` (or ``.snmprec.bz2``) file.

    Returns ``{oid: (tag, value)}``: numeric OID without leading dot, the type
    tag as in the file *without* the ``x`` hex marker (``"4"`` OCTET STRING,
    ``"2"`` Integer, ``"65"`` Counter32, ``"66"`` Gauge32, ``"67"`` TimeTicks,
    ``"70"`` Counter64, ``"6"`` OID, ``"64"`` IpAddress), and the value as
    text. Hex-encoded values (``4x``) are decoded to text (latin-1, so every
    byte maps to one character; ``value.encode("latin-1")`` gives the bytes).
    Variation lines (``tag:module``) are kept as is: ``("65:numeric",
    "rate=...")``.
    """
    p = Path(path)
    raw = bz2.decompress(p.read_bytes()) if p.suffix == ".bz2" else p.read_bytes()
    out: dict[str, tuple[str, str]] = {}
    for line in raw.decode("latin-1").splitlines():
        if not line or line.startswith("#"):
            continue
        oid, tag, value = line.split("|", 2)
        if tag.endswith("x") and ":" not in tag:
            tag = tag[:-1]
            value = bytes.fromhex(value).decode("latin-1")
        out[oid.lstrip(".")] = (tag, value)
    return out


@dataclass(frozen=True)
class SimInterface:
    """One interface of a ``write_numeric_recording`` device.

    ``in_rate``/``out_rate`` are octets per second. Counters start at
    ``in_initial``/``out_initial`` when the snmpsim process starts.
    """

    index: int
    name: str
    in_rate: float = 125_000.0
    out_rate: float = 62_500.0
    in_initial: int = 0
    out_initial: int = 0
    speed_bps: int = 1_000_000_000
    oper_status: int = 1  # up(1) down(2)
    admin_status: int = 1
    hc: bool = True  # also serve ifXTable HC counters
    #: ifHighSpeed as served, when not ``speed_bps // 10**6`` (a device that lies about it)
    high_speed: int | None = None
    alias: str | None = None  # ifAlias (ifXTable, so with ``hc`` only)


def write_numeric_recording(
    path: str | os.PathLike[str],
    *,
    sys_descr: str = "xanet simulated device",
    sys_uptime_rate: float = 100.0,
    sys_uptime_initial: int = 0,
    interfaces: Sequence[SimInterface] = (SimInterface(1, "ge-0/0/0"),),
) -> Path:
    """Write a ``.snmprec`` whose counters advance (snmpsim ``numeric``).

    snmpsim's numeric module returns ``initial + rate * (now - T0)`` where T0
    is when the snmpsim process imported the module (≈ its start), so
    ``rate`` is units per second: octets/s for the octet counters,
    ticks/s for sysUpTime (100 = real time, since a tick is 1/100 s).
    Counter32 lines carry ``wrap=1`` (and ``max=4294967296``, so the value
    wraps modulo 2**32 like a real counter); Counter64 lines wrap at 2**64.
    A restart of snmpsim restarts the counters at ``initial`` (a counter
    reset, like a device reboot - but sysUpTime restarts too).

    Served per interface: ifIndex, ifDescr, ifSpeed (min(speed, 2**32-1)),
    ifAdminStatus, ifOperStatus, ifInOctets, ifOutOctets (Counter32); if
    ``hc``: ifName, ifHCInOctets, ifHCOutOctets (Counter64), ifHighSpeed.
    Plus sysDescr, sysUpTime, sysName, ifNumber.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rec: list[tuple[str, str, str]] = [
        ("1.3.6.1.2.1.1.1.0", "4", sys_descr),
        (
            "1.3.6.1.2.1.1.3.0",
            "67:numeric",
            f"rate={sys_uptime_rate},initial={sys_uptime_initial},wrap=1,max=4294967296",
        ),
        ("1.3.6.1.2.1.1.5.0", "4", p.name.split(".")[0]),
        ("1.3.6.1.2.1.2.1.0", "2", str(len(interfaces))),
    ]

    def counter32(rate: float, initial: int) -> tuple[str, str]:
        return ("65:numeric", f"rate={rate},initial={initial % 2**32},wrap=1,max=4294967296")

    def counter64(rate: float, initial: int) -> tuple[str, str]:
        return ("70:numeric", f"rate={rate},initial={initial},wrap=1")

    for i in interfaces:
        x = i.index
        rec += [
            (f"1.3.6.1.2.1.2.2.1.1.{x}", "2", str(x)),
            (f"1.3.6.1.2.1.2.2.1.2.{x}", "4", i.name),
            (f"1.3.6.1.2.1.2.2.1.5.{x}", "66", str(min(i.speed_bps, 2**32 - 1))),
            (f"1.3.6.1.2.1.2.2.1.7.{x}", "2", str(i.admin_status)),
            (f"1.3.6.1.2.1.2.2.1.8.{x}", "2", str(i.oper_status)),
            (f"1.3.6.1.2.1.2.2.1.10.{x}", *counter32(i.in_rate, i.in_initial)),
            (f"1.3.6.1.2.1.2.2.1.16.{x}", *counter32(i.out_rate, i.out_initial)),
        ]
        if i.hc:
            rec += [
                (f"1.3.6.1.2.1.31.1.1.1.1.{x}", "4", i.name),
                (f"1.3.6.1.2.1.31.1.1.1.6.{x}", *counter64(i.in_rate, i.in_initial)),
                (f"1.3.6.1.2.1.31.1.1.1.10.{x}", *counter64(i.out_rate, i.out_initial)),
                (f"1.3.6.1.2.1.31.1.1.1.15.{x}", "66",
                 str(i.speed_bps // 1_000_000 if i.high_speed is None else i.high_speed)),
            ]
            if i.alias is not None:
                rec.append((f"1.3.6.1.2.1.31.1.1.1.18.{x}", "4", i.alias))

    def key(item: tuple[str, str, str]) -> tuple[int, ...]:
        return tuple(int(n) for n in item[0].split("."))

    p.write_text("".join(f"{o}|{t}|{v}\n" for o, t, v in sorted(rec, key=key)))
    return p


class SnmpSim(Daemon):
    """snmpsim command responder serving ``recordings`` over SNMP v1/v2c.

    ``recordings`` maps community → recording file (``.snmprec`` or
    ``.snmprec.bz2``). Each is copied (decompressed) to
    ``<workdir>/data/<community>.snmprec``; a community may contain ``/`` to
    make sub-directories. Runs as root without dropping privileges
    (``--process-user=root --process-group=root``). Index cache in
    ``<workdir>/cache`` (kept across restarts, so a restart is fast).
    Readiness: a real v2c GET of sysUpTime.0 for every community answers
    (the first GET triggers indexing: allow time for big recordings).
    """

    name = "snmpsim"
    start_timeout_s = 120.0

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        recordings: Mapping[str, Path | str],
        port: int | None = None,
    ):
        super().__init__(workdir, port, udp=True)
        self.recordings = {c: Path(p) for c, p in recordings.items()}
        self.data_dir = self.workdir / "data"
        self.cache_dir = self.workdir / "cache"
        self.communities = list(self.recordings)

    def recording_path(self, community: str) -> Path:
        """The served copy of ``community``'s recording."""
        return self.data_dir / f"{community}.snmprec"

    def _prepare(self) -> None:
        self.cache_dir.mkdir(exist_ok=True)
        for community, src in self.recordings.items():
            dst = self.recording_path(community)
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = bz2.decompress(src.read_bytes()) if src.suffix == ".bz2" else src.read_bytes()
            if not dst.exists() or dst.read_bytes() != data:
                dst.write_bytes(data)

    def _command(self) -> list[str]:
        exe = Path(sys.executable).parent / "snmpsim-command-responder"
        return [
            str(exe),
            f"--data-dir={self.data_dir}",
            f"--cache-dir={self.cache_dir}",
            f"--agent-udpv4-endpoint={self.host}:{self.port}",
            "--process-user=root",
            "--process-group=root",
            "--log-level=error",
        ]

    def _ready(self) -> bool:
        try:
            for community in self.communities:
                snmpget(
                    self.port, OID_SYS_UPTIME, host=self.host, community=community, timeout_s=2.0
                )
            return True
        except ServiceError:
            return False


def recorded_devices(
    workdir: str | os.PathLike[str],
    port: int | None = None,
    extra: Mapping[str, Path | str] | None = None,
) -> SnmpSim:
    """An (unstarted) ``SnmpSim`` serving ``RECORDING_IFX`` as
    ``COMMUNITY_IFX`` and ``RECORDING_IFTABLE_ONLY`` as
    ``COMMUNITY_IFTABLE_ONLY``, plus any ``extra`` community → recording."""
    recordings: dict[str, Path | str] = {
        COMMUNITY_IFX: RECORDING_IFX,
        COMMUNITY_IFTABLE_ONLY: RECORDING_IFTABLE_ONLY,
    }
    recordings.update(extra or {})
    return SnmpSim(workdir, recordings, port)
