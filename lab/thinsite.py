"""A site catching up after a cut over a thin link, measured: bytes on the wire, catch-up time,
live latency, nothing lost or doubled.

One run (:func:`run`) of a :class:`Scenario`:

1. a :class:`lab.thinlink.ThinLink` (site, wan, core namespaces; ``tc tbf`` at
   ``rate_kbit`` both ways; ``loss_pct`` random loss);
2. snmpsim inside the site namespace serving ``devices`` devices of ``interfaces``
   interfaces each (SNMP stays in the site; only MQTT crosses the thin link);
3. the agent's spool filled with a ``hours``-long cut of those devices polled every
   ``cut_interval_s`` (:mod:`lab.cutbacklog`, stamped in the past);
4. the collector (a child process) in the root namespace with the broker and InfluxDB on
   127.0.0.1; the broker reached from the site through the thin link and a relay in core;
5. the real agent (``xanet agent``, a child process) started inside the site namespace,
   polling its devices live every ``live_interval_s`` while it replays the backlog.

Measured from InfluxDB (what the core really has) once a second: the backlog is caught up
when every polled ``device`` point of the cut is stored; a live poll's latency is the time
from its poll ``ts`` to the first query that returns it. Bytes are the thin link's frame
counters from the agent's start to the catch-up. Lost or doubled: the cut's points per
device, and the collector's ``duplicates`` and ``seq_gaps`` (collector_stats).

The encoding (JSON or compact) is chosen by the core: :func:`encoding_sections` is the one
place that says how a collector is told to announce the compact encoding or not.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lab.cutbacklog import prefill, site_interfaces
from lab.fleet import agent_config, collector_config, to_toml
from lab.influx import InfluxDB1
from lab.mosquitto import Mosquitto
from lab.netns import Netns
from lab.programs import ROOT, Subprogram
from lab.snmpsim import SnmpSim, write_numeric_recording
from lab.thinlink import ThinLink
from xanet import topics, wire

Encoding = Literal["json", "compact"]
PROVINCE, COMMUNE, SITE, AGENT = "ha-giang", "00688", "thin-site", "agent-thin"
COMMUNITY_ENV = "XANET_THIN_COMMUNITY"
COMMUNITY = "thin/site-device"


class ScenarioError(RuntimeError):
    """The scenario could not run (not its outcome: that is an :class:`Outcome`)."""


def encoding_sections(encoding: Encoding) -> dict[str, dict[str, Any]]:
    """The collector config sections that make the core announce (or not) the compact
    encoding; the agent follows the core. The one switch of the scenario."""
    has_compact = importlib.util.find_spec("xanet.compact") is not None
    if encoding == "compact":
        if not has_compact:
            raise ScenarioError("this tree has no compact encoding: xanet.compact missing")
        return {"ingest": {"batches": True}}
    return {"ingest": {"batches": False}} if has_compact else {}


@dataclass(frozen=True)
class Scenario:
    rate_kbit: float = 64.0
    loss_pct: float = 0.0
    hours: float = 1.0
    devices: int = 10
    interfaces: int = 10
    cut_interval_s: float = 60.0
    live_interval_s: float = 60.0
    encoding: Encoding = "json"
    timeout_s: float = 900.0
    #: extra agent config sections (e.g. ``{"spool": {"replay_budget_bytes_per_s": 6000}}``)
    agent_sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def backlog_polls(self) -> int:
        return self.devices * self.polls_per_device

    @property
    def polls_per_device(self) -> int:
        return max(1, round(self.hours * 3600 / self.cut_interval_s))


@dataclass
class Outcome:
    scenario: Scenario
    backlog_polls: int
    caught_up: bool
    catchup_s: float
    up_bytes: int
    down_bytes: int
    live_polls: int  # live polls stamped during the catch-up (all seen: see seq_gaps)
    live_delivered: int  # live polls stored during the catch-up (their bytes are counted)
    live_latencies_s: list[float]  # of the live polls stamped during the catch-up
    #: uplink bytes per live poll once caught up (None: no live poll came after)
    live_wire_bytes_per_poll: float | None
    stored_per_device: dict[str, int]
    duplicates: int
    seq_gaps: int
    packets_dropped: int

    @property
    def interface_samples(self) -> int:
        return (self.backlog_polls + self.live_delivered) * self.scenario.interfaces

    @property
    def bytes_per_interface_sample(self) -> float:
        """Uplink frame bytes per interface sample delivered during the catch-up (backlog
        and live; live polls are ~4 % of them at 60 s over 64 kbit/s)."""
        return self.up_bytes / max(1, self.interface_samples)

    @property
    def backlog_bytes_per_interface_sample(self) -> float:
        """The backlog's own share: the catch-up's uplink bytes less the live polls sent
        meanwhile (at what a live poll costs alone, after the catch-up), per interface
        sample of the backlog. Without that figure, :attr:`bytes_per_interface_sample`."""
        if self.live_wire_bytes_per_poll is None:
            return self.bytes_per_interface_sample
        backlog_bytes = self.up_bytes - self.live_delivered * self.live_wire_bytes_per_poll
        return max(0.0, backlog_bytes) / max(1, self.backlog_polls * self.scenario.interfaces)

    @property
    def catchup_24h_s(self) -> float:
        """The catch-up time scaled to a 24-hour cut (linear in the backlog)."""
        return self.catchup_s * 24 / self.scenario.hours

    def latency(self, q: float) -> float:
        lat = sorted(self.live_latencies_s)
        if not lat:
            return math.nan
        return lat[min(len(lat) - 1, math.ceil(q * len(lat)) - 1)]

    @property
    def lost(self) -> int:
        """Polls of the cut not in InfluxDB."""
        expected = self.scenario.polls_per_device
        return sum(max(0, expected - self.stored_per_device.get(f"bts-{i}", 0))
                   for i in range(self.scenario.devices))

    @property
    def live_within_2_intervals(self) -> bool:
        return (bool(self.live_latencies_s) and self.seq_gaps == 0
                and max(self.live_latencies_s) <= 2 * self.scenario.live_interval_s)

    def row(self) -> dict[str, Any]:
        """The figures, flat (for a table or JSON)."""
        s = self.scenario
        return {
            "encoding": s.encoding, "rate_kbit": s.rate_kbit, "loss_pct": s.loss_pct,
            "hours": s.hours, "backlog_polls": self.backlog_polls, "caught_up": self.caught_up,
            "catchup_s": round(self.catchup_s, 1), "catchup_24h_s": round(self.catchup_24h_s),
            "up_bytes": self.up_bytes, "down_bytes": self.down_bytes,
            "bytes_per_if_sample": round(self.bytes_per_interface_sample, 1),
            "backlog_bytes_per_if_sample": round(self.backlog_bytes_per_interface_sample, 1),
            "live_wire_bytes_per_poll": None if self.live_wire_bytes_per_poll is None
            else round(self.live_wire_bytes_per_poll),
            "live_polls": self.live_polls,
            "live_p50_s": round(self.latency(0.5), 1), "live_p99_s": round(self.latency(0.99), 1),
            "live_max_s": round(max(self.live_latencies_s, default=math.nan), 1),
            "lost": self.lost, "duplicates": self.duplicates, "seq_gaps": self.seq_gaps,
            "packets_dropped": self.packets_dropped,
        }


class NetnsSnmpSim(SnmpSim):
    """snmpsim inside a namespace, on that namespace's 127.0.0.1."""

    def __init__(self, workdir: Path, ns: Netns, recordings: dict[str, Path]) -> None:
        super().__init__(workdir, recordings)
        self.ns = ns

    def _command(self) -> list[str]:
        return self.ns.wrap(super()._command())

    def _ready(self) -> bool:
        return self.ns.call(super()._ready)  # snmpget forks from a thread inside ns


def _probe_collector(broker: Mosquitto, influx: InfluxDB1, db: str, timeout_s: float = 60) -> None:
    """Wait until the collector stores what reaches the broker (its subscription is up)."""
    topic = topics.build(PROVINCE, COMMUNE, SITE, "telemetry")
    deadline = time.monotonic() + timeout_s
    while _collector_stats(influx, db) == (-1, -1):  # up and writing
        if time.monotonic() > deadline:
            raise ScenarioError(f"the collector wrote no stats within {timeout_s:.0f}s")
        time.sleep(0.2)
    seq = 0
    while time.monotonic() < deadline:
        msg = wire.Telemetry(agent="probe", site=SITE, seq=seq, polls=[wire.DevicePoll(
            device="probe", ts=datetime.now(UTC), reachable=True)])
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="thin-probe")
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            client.publish(topic, wire.encode(msg), qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        seq += 1
        for _ in range(10):
            if influx.query('SELECT count("seq") FROM "device" WHERE "agent" = \'probe\'', db=db):
                return
            time.sleep(0.2)
    raise ScenarioError(f"the collector stored nothing within {timeout_s:.0f}s")


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _collector_stats(influx: InfluxDB1, db: str) -> tuple[int, int]:
    rows = influx.query('SELECT last("duplicates") AS d, last("seq_gaps") AS g '
                        'FROM "collector_stats" WHERE "collector" = \'thin\'', db=db)
    return (int(rows[0]["d"]), int(rows[0]["g"])) if rows else (-1, -1)


def run(s: Scenario, workdir: Path, broker: Mosquitto, influx: InfluxDB1, db: str,
        log: Any = None) -> Outcome:
    """Run the scenario against ``broker`` and ``influx`` (database ``db``, fresh)."""
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    sections = encoding_sections(s.encoding)
    workdir.mkdir(parents=True, exist_ok=True)
    interfaces = site_interfaces(s.interfaces)
    devices = [f"bts-{i}" for i in range(s.devices)]
    cfg_path = workdir / "collector.toml"
    cfg_path.write_text(to_toml(collector_config(
        mqtt_port=broker.port, influx_url=influx.url, database=db,
        dead_letter_dir=workdir / "dead", collector_id="thin", **sections)))
    collector = Subprogram("collector", cfg_path)
    with ThinLink(rate_kbit=s.rate_kbit, loss_pct=s.loss_pct) as link:
        port = link.expose(broker.port)
        recording = write_numeric_recording(workdir / "device.snmprec", interfaces=interfaces)
        sim = NetnsSnmpSim(workdir / "snmpsim", link.site, {COMMUNITY: recording}).start()
        try:
            spool_path = workdir / "spool.sqlite3"
            t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(
                seconds=s.polls_per_device * s.cut_interval_s + 60)
            started = time.monotonic()
            stored = prefill(spool_path, agent=AGENT, province=PROVINCE, commune=COMMUNE,
                             site=SITE, devices=devices, interfaces=interfaces, start=t0,
                             polls_per_device=s.polls_per_device,
                             interval_s=s.cut_interval_s)
            say(f"thin link {s.rate_kbit:g} kbit/s, loss {s.loss_pct:g} %, {s.encoding}: "
                f"{stored} polls of a {s.hours:g} h cut in the spool "
                f"({time.monotonic() - started:.0f} s)")
            agent_cfg = agent_config(
                agent_id=AGENT, site=SITE, commune=COMMUNE, province=PROVINCE,
                mqtt_port=port, spool_path=spool_path, interval_s=s.live_interval_s,
                devices=[{"id": d, "host": "127.0.0.1", "port": sim.port,
                          "snmp": {"version": "2c", "community": {"env": COMMUNITY_ENV}}}
                         for d in devices],
                agent={"status_interval_s": 60},
                mqtt={"host": link.core_ip, "keepalive_s": 30, "reconnect_max_s": 10},
                polling={"jitter": 0.0, "timeout_s": 2.0, "retries": 1},
                spool={"replay_rate_per_s": 50.0})
            for key, value in s.agent_sections.items():
                agent_cfg.setdefault(key, {}).update(value)
            agent_path = workdir / "agent.toml"
            agent_path.write_text(to_toml(agent_cfg))
            collector.start()
            _probe_collector(broker, influx, db)
            return _catch_up(s, link, agent_path, workdir, influx, db, devices, say)
        finally:
            collector.stop()
            sim.stop()


def _catch_up(s: Scenario, link: ThinLink, agent_path: Path, workdir: Path,
              influx: InfluxDB1, db: str, devices: list[str], say: Any) -> Outcome:
    boundary = datetime.now(UTC)
    where = f'"agent" = \'{AGENT}\''
    before = link.counters()
    with (workdir / "agent.log").open("ab") as agent_log:
        agent = link.site.popen(
            [sys.executable, "-m", "xanet.cli", "--log-level", "info", "agent", "--config",
             str(agent_path)], cwd=ROOT, stdout=agent_log, stderr=subprocess.STDOUT,
            env={**os.environ, COMMUNITY_ENV: COMMUNITY})
    started = time.monotonic()
    seen: dict[tuple[str, int], float] = {}  # live (device, ts ms) -> wall time first seen

    def observe() -> int:
        rows = influx.query(f'SELECT "device", "seq" FROM "device" WHERE {where} AND '
                            f'time >= {_ms(boundary)}ms', db=db, epoch="ms")
        now = time.time()
        for r in rows:
            seen.setdefault((r["device"], int(r["time"])), now)
        count = influx.query(f'SELECT count("seq") FROM "device" WHERE {where} AND '
                             f'time < {_ms(boundary)}ms', db=db)
        return int(count[0]["count"]) if count else 0

    try:
        caught_up, last_report = False, 0.0
        while time.monotonic() - started < s.timeout_s:
            if agent.poll() is not None:
                raise ScenarioError(f"the agent exited ({agent.returncode}): see "
                                    f"{workdir / 'agent.log'}")
            backlog_stored = observe()
            if backlog_stored >= s.backlog_polls:
                caught_up = True
                break
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                say(f"  {time.monotonic() - started:4.0f} s: {backlog_stored}/"
                    f"{s.backlog_polls} backlog polls stored, {len(seen)} live")
            time.sleep(1.0)
        catchup_s = time.monotonic() - started
        at_end = link.counters()
        used = at_end - before
        end = datetime.now(UTC)
        live_before = dict(seen)  # delivered during the catch-up: their bytes are in `used`
        # The live polls stamped during the catch-up: wait for the late ones, until each
        # device has a newer one stored (the live lane sends in order), 2 intervals at most.
        settle = time.monotonic() + 2 * s.live_interval_s + 5
        while time.monotonic() < settle:
            observe()
            if {d for d, ts in seen if ts > _ms(end)} >= set(devices):
                break
            time.sleep(1.0)
        # What a live poll costs on the wire alone (status and keepalives included): the
        # bytes after the catch-up per live poll stored after it.
        after = len(seen) - len(live_before)
        live_wire = (link.counters() - at_end).up_bytes / after if after else None
        stamped = {k: v for k, v in seen.items() if k[1] <= _ms(end)}
        latencies = [v - k[1] / 1000 for k, v in stamped.items()]
        per_device = _per_device(influx, db, where, boundary)
        time.sleep(2.5)  # two collector stats intervals
        duplicates, gaps = _collector_stats(influx, db)
        say(f"  caught up: {caught_up} in {catchup_s:.0f} s, {used.up_bytes} bytes up")
        return Outcome(
            scenario=s, backlog_polls=s.backlog_polls, caught_up=caught_up, catchup_s=catchup_s,
            up_bytes=used.up_bytes, down_bytes=used.down_bytes, live_polls=len(stamped),
            live_delivered=len(live_before), live_latencies_s=latencies,
            live_wire_bytes_per_poll=live_wire,
            stored_per_device=per_device, duplicates=duplicates, seq_gaps=gaps,
            packets_dropped=link.dropped())
    finally:
        if agent.poll() is None:
            agent.terminate()
            try:
                agent.wait(15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()


def _per_device(influx: InfluxDB1, db: str, where: str, boundary: datetime) -> dict[str, int]:
    rows = influx.query_raw(f'SELECT count("seq") FROM "device" WHERE {where} AND '
                            f'time < {_ms(boundary)}ms GROUP BY "device"', db=db)
    out: dict[str, int] = {}
    for result in rows.get("results", []):
        for series in result.get("series", []):
            out[series["tags"]["device"]] = int(series["values"][0][1])
    return out

