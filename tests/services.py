"""Real daemons for integration tests and demos (no pytest, no systemd).

Every class starts one real daemon on 127.0.0.1, on a free port, in a work
directory of its own, with its log in ``<workdir>/<name>.log``:

    with Mosquitto(tmp / "mqtt") as broker:
        ...  # broker.host, broker.port

Common API (``_Daemon``):

- ``start()``    starts the daemon and waits until it really answers (an MQTT
  CONNACK, an HTTP health check, an SNMP GET ...). On failure or timeout it
  kills the daemon and raises ``ServiceError`` whose message holds the tail of
  the log. Returns ``self``. Calling it while running is a no-op.
- ``stop()``     SIGTERM, then SIGKILL after ``grace_s``.
- ``kill()``     SIGKILL at once (crash tests).
- ``restart()``  ``stop()`` + ``start()``: same port, same data directory.
- ``running``, ``pid``, ``log_path``, ``log_tail()``, ``startup_s`` (seconds
  the last ``start()`` took).
- context manager: ``__enter__`` starts, ``__exit__`` stops.
- an ``atexit`` hook SIGKILLs every daemon still running when Python exits.

Importable as ``tests.services`` (from the repo root) or as plain ``services``
(with ``tests/`` on ``sys.path``): no relative imports, no pytest.

Only loopback addresses are ever used.
"""

from __future__ import annotations

import atexit
import bz2
import email
import email.message
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

HOST = "127.0.0.1"

#: Communities under which ``recorded_devices()`` serves the two recordings.
COMMUNITY_IFX = "recorded/vyatta-router"
COMMUNITY_IFTABLE_ONLY = "recorded/ubiquiti-m5"

OID_SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


class ServiceError(RuntimeError):
    """A daemon failed to start, died, or a helper request failed."""


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


# --------------------------------------------------------------------------
# ports


def free_tcp_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = HOST) -> int:
    """A UDP port free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------
# net-snmp command line tools


_TOOLS_PERSIST_DIR = Path(tempfile.mkdtemp(prefix="xanet-snmp-tools-"))
atexit.register(shutil.rmtree, _TOOLS_PERSIST_DIR, True)


def snmp_env() -> dict[str, str]:
    """Environment for net-snmp tools: no MIB files (numeric OIDs), and a
    private persistent dir (the tools write ``cert_indexes`` there instead of
    /var/lib/snmp)."""
    env = dict(os.environ)
    env["MIBS"] = ""
    env.pop("MIBDIRS", None)
    env["SNMP_PERSISTENT_DIR"] = str(_TOOLS_PERSIST_DIR)
    env["SNMPCONFPATH"] = str(_TOOLS_PERSIST_DIR)
    return env


def snmpget(
    port: int,
    oids: str | Sequence[str],
    *,
    host: str = HOST,
    community: str | None = "public",
    v3: tuple[str, str, str] | None = None,
    timeout_s: float = 1.0,
    retries: int = 0,
) -> dict[str, str]:
    """GET with net-snmp's ``snmpget``; returns ``{oid: value}``: numeric OID
    without leading dot, value as text as printed with ``-On -Oq -Ot -Oe``
    (TimeTicks as raw hundredths, enums as numbers, strings without quotes),
    so it compares directly with ``snmprec_values(...)[oid][1]``.

    Non-printable OCTET STRINGs come back as net-snmp prints them (hex bytes
    separated by spaces), not decoded.

    ``v3=(user, auth_key, priv_key)`` uses SNMPv3 authPriv SHA/AES instead of
    v2c. Raises ``ServiceError`` on any error (timeout, noSuchObject ...).
    """
    if isinstance(oids, str):
        oids = [oids]
    if v3 is not None:
        user, auth, priv = v3
        auth_args = [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            user,
            "-a",
            "SHA",
            "-A",
            auth,
            "-x",
            "AES",
            "-X",
            priv,
        ]
    else:
        auth_args = ["-v2c", "-c", community or "public"]
    cmd = [
        "snmpget",
        *auth_args,
        "-On",
        "-Oq",
        "-Ot",
        "-Oe",
        "-t",
        str(timeout_s),
        "-r",
        str(retries),
        f"udp:{host}:{port}",
        *oids,
    ]
    try:
        out = subprocess.run(
            cmd,
            env=snmp_env(),
            capture_output=True,
            text=True,
            timeout=(timeout_s * (retries + 1)) + 10,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"snmpget hung: {' '.join(cmd)}") from exc
    if out.returncode != 0:
        raise ServiceError(f"snmpget failed ({out.returncode}): {out.stderr.strip()}")
    result: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        oid, _, value = line.partition(" ")
        value = value.strip()
        if value.startswith("No Such") or value.startswith("No more"):
            raise ServiceError(f"snmpget {oid}: {value}")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        result[oid.lstrip(".")] = value
    return result


# --------------------------------------------------------------------------
# the daemon base class

_LIVE: set[_Daemon] = set()
_LIVE_LOCK = threading.Lock()


def _kill_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for d in live:
        try:
            d.kill()
        except Exception as exc:  # at exit: report, keep killing the others
            print(f"services: could not kill {d!r}: {exc}", file=sys.stderr)


atexit.register(_kill_all)


def _http_ok(url: str, expect: Iterable[int] = (200, 204)) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code in tuple(expect)
    except httpx.HTTPError:
        return False


class _Daemon:
    """Base: subclasses set ``name``, build ``_command()`` and ``_ready()``."""

    name = "daemon"
    start_timeout_s = 30.0
    grace_s = 10.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None, *, udp: bool = False):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port: int = port if port is not None else (free_udp_port() if udp else free_tcp_port())
        self.log_path = self.workdir / f"{self.name}.log"
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- to override
    def _prepare(self) -> None:
        """Write config files, create dirs. Called before every start."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    def _ready(self) -> bool:
        raise NotImplementedError

    # -- public
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout_s: float | None = None) -> Self:
        if self.running:
            return self
        self._prepare()
        timeout = self.start_timeout_s if timeout_s is None else timeout_s
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== services: starting {self.name} at {time.ctime()}\n".encode())
            log.flush()
            cmd = self._command()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    cwd=self.workdir,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C on the test run doesn't hit it
                )
            except FileNotFoundError as exc:
                raise ServiceError(
                    f"{self.name}: cannot run {cmd[0]!r} - is it installed? (COMPONENTS.md)"
                ) from exc
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = t0 + timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                self._forget()
                raise ServiceError(
                    f"{self.name} exited with code {rc} while starting "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(
                    f"{self.name} not ready after {timeout:.0f}s "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.05)
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self, grace_s: float | None = None) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()

    def restart(self, timeout_s: float | None = None) -> Self:
        self.stop()
        return self.start(timeout_s)

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid} {self.workdir}>"


# --------------------------------------------------------------------------
# Mosquitto

_MQTT_CONNECT_PROBE = (
    b"\x10\x17"  # CONNECT, remaining length 23
    b"\x00\x04MQTT\x04\x02\x00\x3c"  # MQTT 3.1.1, clean session, keepalive 60
    b"\x00\x0bready-probe"
)


class Mosquitto(_Daemon):
    """Mosquitto 2.x broker on 127.0.0.1:port.

    - ``user root`` in the config: mosquitto stays root instead of dropping to
      user ``mosquitto`` (which cannot write into 0700 root-owned temp dirs).
      Mosquitto documents ``user root`` as "stay root".
    - persistence on, in ``<workdir>/data/mosquitto.db``: saved on clean stop()
      (SIGTERM) and every ``autosave_interval`` s (60 here); after kill() only
      what was last saved survives - that is mosquitto's real behaviour.
    - ``max_queued_messages 100000``, ``max_queued_bytes 0`` (no limit).
    - anonymous allowed, client ids as sent (``use_username_as_clientid``, which the
      deployed config has, refuses clients without a user name: tests/test_security.py
      runs that config); ``extra_conf`` is appended verbatim to the config
      (after the listener line, so listener options apply to it). Mosquitto
      accepts a repeated global option and the later one wins, so
      ``extra_conf="autosave_interval 1"`` makes state survive kill() after
      ~1 s (checked in test_services).
    - readiness: a real MQTT 3.1.1 CONNECT gets a CONNACK.
    """

    name = "mosquitto"
    start_timeout_s = 15.0

    def __init__(
        self, workdir: str | os.PathLike[str], port: int | None = None, extra_conf: str = ""
    ):
        super().__init__(workdir, port)
        self.extra_conf = extra_conf
        self.conf_path = self.workdir / "mosquitto.conf"
        self.data_dir = self.workdir / "data"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(
            "user root\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "persistence_file mosquitto.db\n"
            "autosave_interval 60\n"
            "max_queued_messages 100000\n"
            "max_queued_bytes 0\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
            "per_listener_settings false\n"
            "allow_anonymous true\n"
            f"listener {self.port} {self.host}\n"
            f"{self.extra_conf}\n"
        )

    def _command(self) -> list[str]:
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf_path)]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.sendall(_MQTT_CONNECT_PROBE)
                ack = s.recv(4)
                if ack[:1] == b"\x20" and ack[3:4] == b"\x00":
                    s.sendall(b"\xe0\x00")  # DISCONNECT
                    return True
        except OSError:
            pass
        return False


# --------------------------------------------------------------------------
# InfluxDB 1.x


class InfluxDB1(_Daemon):
    """InfluxDB 1.x (``influxd``) with http on 127.0.0.1:port.

    meta/data/wal under workdir; rpc bound to another free loopback port;
    reporting, monitor store, udp/graphite/collectd/opentsdb all off.
    Readiness: ``GET /ping`` answers 204.

    ``query()`` returns flattened rows: for every statement, every series and
    every value row, one dict
    ``{"name": <measurement>, **<series tags>, <column>: <value>, ...}``
    e.g. ``{"name": "cpu", "host": "a", "time": 1700000000000000000, "v": 1.5}``.
    ``time`` is an int in ``epoch`` units (default ns); ``epoch=None`` gives
    RFC3339 strings. Tags only appear for GROUP BY tag queries (otherwise
    tags are plain columns). SHOW queries give rows like
    ``{"name": "databases", "name": ...}`` - the column wins over the series
    name when they collide. A statement error raises ``ServiceError``.
    """

    name = "influxdb"
    start_timeout_s = 30.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None):
        super().__init__(workdir, port)
        self.rpc_port = free_tcp_port()
        self.conf_path = self.workdir / "influxdb.conf"
        self.url = f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        for d in ("meta", "data", "wal"):
            (self.workdir / d).mkdir(exist_ok=True)
        self.conf_path.write_text(
            f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{self.workdir}/meta"
  logging-enabled = false

[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  max-body-size = 0

[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false

[continuous_queries]
  log-enabled = false
"""
        )

    def _command(self) -> list[str]:
        return [shutil.which("influxd") or "/usr/bin/influxd", "-config", str(self.conf_path)]

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/ping", (204,))

    # -- helpers (sync httpx)
    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def write(self, lines: str | Iterable[str], db: str, precision: str = "ns") -> None:
        """POST line protocol to ``/write?db=``; raises on a non-204 answer."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        r = httpx.post(
            f"{self.url}/write",
            params={"db": db, "precision": precision},
            content=body.encode(),
            timeout=30.0,
        )
        if r.status_code != 204:
            raise ServiceError(f"influx write {r.status_code}: {r.text}")

    def query_raw(
        self, influxql: str, db: str | None = None, epoch: str | None = "ns"
    ) -> dict[str, Any]:
        params = {"q": influxql}
        if db is not None:
            params["db"] = db
        if epoch is not None:
            params["epoch"] = epoch
        r = httpx.post(f"{self.url}/query", data=params, timeout=30.0)
        if r.status_code != 200:
            raise ServiceError(f"influx query {r.status_code}: {r.text}")
        body: dict[str, Any] = r.json()
        return body

    def query(
        self, influxql: str, db: str | None = None, epoch: str | None = "ns"
    ) -> list[dict[str, Any]]:
        body = self.query_raw(influxql, db, epoch)
        if "error" in body:
            raise ServiceError(f"influx query error: {body['error']}")
        rows: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise ServiceError(f"influx query error: {result['error']}")
            for series in result.get("series", []):
                base: dict[str, Any] = {"name": series.get("name")}
                base.update(series.get("tags") or {})
                cols = series.get("columns", [])
                for values in series.get("values", []):
                    row = dict(base)
                    row.update(zip(cols, values, strict=True))
                    rows.append(row)
        return rows


# --------------------------------------------------------------------------
# VictoriaMetrics


class VictoriaMetrics(_Daemon):
    """VictoriaMetrics single node on 127.0.0.1:port.

    ``-retentionPeriod=100y`` (points with old timestamps are kept),
    ``-search.latencyOffset=0s`` and ``-search.disableCache`` (no hidden
    recent points, no stale cached answers). Writes: ``/write`` (v1 line
    protocol), ``/api/v2/write`` (influxdb-client). Series name =
    ``{measurement}_{field}``.

    ``flush()`` calls ``/internal/force_flush`` so just-written points are
    searchable; ``export()`` flushes first, then returns one dict per series
    as ``/api/v1/export`` gives it:
    ``{"metric": {"__name__": ..., tag: value ...}, "values": [...],
    "timestamps": [ms, ...]}``.
    """

    name = "victoria-metrics"
    start_timeout_s = 30.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None):
        super().__init__(workdir, port)
        self.url = f"http://{self.host}:{self.port}"
        self.data_dir = self.workdir / "data"

    def _command(self) -> list[str]:
        return [
            shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics",
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/health", (200,))

    def flush(self) -> None:
        r = httpx.get(f"{self.url}/internal/force_flush", timeout=30.0)
        if r.status_code != 200:
            raise ServiceError(f"victoria force_flush {r.status_code}: {r.text}")

    def write(self, lines: str | Iterable[str], precision: str = "ns") -> None:
        """POST InfluxDB v1 line protocol to ``/write``."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        r = httpx.post(
            f"{self.url}/write",
            params={"precision": precision},
            content=body.encode(),
            timeout=30.0,
        )
        if r.status_code not in (200, 204):
            raise ServiceError(f"victoria write {r.status_code}: {r.text}")

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        self.flush()
        r = httpx.post(f"{self.url}/api/v1/export", data={"match[]": match}, timeout=30.0)
        if r.status_code != 200:
            raise ServiceError(f"victoria export {r.status_code}: {r.text}")
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]


# --------------------------------------------------------------------------
# net-snmp agent


class Snmpd(_Daemon):
    """net-snmp ``snmpd`` serving this machine's real MIB-II / IF-MIB.

    UDP 127.0.0.1:port only (``agentaddress`` in the config file). v2c
    ``rocommunity <community> 127.0.0.1`` and SNMPv3 user ``v3_user``
    (SHA auth, AES-128 privacy, ``rouser ... priv``). ``SNMP_PERSISTENT_DIR``
    (and ``persistentDir``) point at ``<workdir>/persist``, so engine id,
    boots counter and v3 user keys are stored there and nothing is written
    to /var/lib/snmp. ``MIBS=`` in its environment: no MIB files are read.
    Readiness: a v2c GET of sysUpTime.0 answers.
    """

    name = "snmpd"
    start_timeout_s = 20.0
    #: More SNMPv3 users, ``(user, auth protocol, auth key, priv protocol, priv key)``
    #: (no priv: authNoPriv, ``rouser ... auth``): every auth protocol, both security
    #: levels, and DES (which the agent leaves to pysnmp).
    V3_EXTRA_USERS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
        ("xanet-noauthpriv-sha256", "SHA-256", "authpass-sha256-1", None, None),
        ("xanet-md5-aes", "MD5", "authpass-md5-12", "AES", "privpass-md5-34"),
        ("xanet-sha224", "SHA-224", "authpass-sha224-1", None, None),
        ("xanet-sha384-aes", "SHA-384", "authpass-sha384-1", "AES", "privpass-sha384-2"),
        ("xanet-sha512-aes", "SHA-512", "authpass-sha512-1", "AES", "privpass-sha512-2"),
        ("xanet-sha-des", "SHA", "authpass-shades-1", "DES", "privpass-shades-2"),
    )

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        port: int | None = None,
        community: str = "xanet-test-ro",
        v3_user: str = "xanetv3",
        v3_auth_key: str = "authpass-fake-123",
        v3_priv_key: str = "privpass-fake-456",
    ):
        super().__init__(workdir, port, udp=True)
        self.community = community
        self.v3_user = v3_user
        self.v3_auth_key = v3_auth_key
        self.v3_priv_key = v3_priv_key
        self.conf_path = self.workdir / "snmpd.conf"
        self.persist_dir = self.workdir / "persist"

    @property
    def v3(self) -> tuple[str, str, str]:
        """``(user, auth_key, priv_key)`` for ``snmpget(..., v3=...)``."""
        return (self.v3_user, self.v3_auth_key, self.v3_priv_key)

    def _prepare(self) -> None:
        self.persist_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(
            f"[snmp] persistentDir {self.persist_dir}\n"
            f"agentaddress udp:{self.host}:{self.port}\n"
            f"rocommunity {self.community} {self.host}\n"
            f'createUser {self.v3_user} SHA "{self.v3_auth_key}" AES "{self.v3_priv_key}"\n'
            f"rouser {self.v3_user} priv\n"
            + "".join(
                f'createUser {user} {auth} "{auth_key}"'
                + (f' {priv} "{priv_key}"\n' if priv else "\n")
                + f"rouser {user} {'priv' if priv else 'auth'}\n"
                for user, auth, auth_key, priv, priv_key in self.V3_EXTRA_USERS
            )
            + "sysLocation xanet test harness\n"
            "sysContact root@localhost\n"
            "dontLogTCPWrappersConnects yes\n"
        )

    def _env(self) -> dict[str, str]:
        env = snmp_env()
        env["SNMP_PERSISTENT_DIR"] = str(self.persist_dir)
        env["SNMPCONFPATH"] = str(self.workdir)
        return env

    def _command(self) -> list[str]:
        return [
            shutil.which("snmpd") or "/usr/sbin/snmpd",
            "-f",
            "-C",
            "-c",
            str(self.conf_path),
            "-I",
            "-smux",  # SMUX binds the fixed 127.0.0.1:199: clashes between instances
            "-Lf",
            str(self.log_path),
            "-p",
            str(self.workdir / "snmpd.pid"),
        ]

    def _ready(self) -> bool:
        try:
            snmpget(
                self.port, OID_SYS_UPTIME, host=self.host, community=self.community, timeout_s=0.3
            )
            return True
        except ServiceError:
            return False


# --------------------------------------------------------------------------
# snmpsim


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
                (f"1.3.6.1.2.1.31.1.1.1.15.{x}", "66", str(i.speed_bps // 1_000_000)),
            ]

    def key(item: tuple[str, str, str]) -> tuple[int, ...]:
        return tuple(int(n) for n in item[0].split("."))

    p.write_text("".join(f"{o}|{t}|{v}\n" for o, t, v in sorted(rec, key=key)))
    return p


class SnmpSim(_Daemon):
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


# --------------------------------------------------------------------------
# Alertmanager and an SMTP sink


class Alertmanager(_Daemon):
    """prometheus-alertmanager on 127.0.0.1:port, no cluster gossip port.

    ``config_yaml`` is written to ``<workdir>/alertmanager.yml``; storage in
    ``<workdir>/data``. Readiness: ``GET /-/ready`` answers 200.
    ``alerts()`` returns ``GET /api/v2/alerts`` (a list of dicts).
    """

    name = "alertmanager"
    start_timeout_s = 30.0

    def __init__(self, workdir: str | os.PathLike[str], config_yaml: str, port: int | None = None):
        super().__init__(workdir, port)
        self.config_yaml = config_yaml
        self.url = f"http://{self.host}:{self.port}"
        self.conf_path = self.workdir / "alertmanager.yml"
        self.data_dir = self.workdir / "data"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(self.config_yaml)

    def _command(self) -> list[str]:
        return [
            shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager",
            f"--config.file={self.conf_path}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready", (200,))

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        r = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10.0)
        if r.status_code != 200:
            raise ServiceError(f"alertmanager POST {r.status_code}: {r.text}")

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v2/alerts", timeout=10.0)
        if r.status_code != 200:
            raise ServiceError(f"alertmanager GET {r.status_code}: {r.text}")
        result: list[dict[str, Any]] = r.json()
        return result


class SmtpSink(_Daemon):
    """aiosmtpd on 127.0.0.1:port saving every message into a Maildir.

    Uses aiosmtpd's own ``aiosmtpd.handlers.Mailbox`` handler
    (``python -m aiosmtpd -n -l HOST:PORT -c aiosmtpd.handlers.Mailbox DIR``).
    ``messages()`` returns the received messages (``email.message.Message``,
    oldest first). Readiness: the SMTP ``220`` greeting.
    """

    name = "smtp-sink"
    start_timeout_s = 20.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None):
        super().__init__(workdir, port)
        self.maildir = self.workdir / "maildir"

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"{self.host}:{self.port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(self.maildir),
        ]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.settimeout(2.0)
                ok = s.recv(512).startswith(b"220")
                if ok:
                    s.sendall(b"QUIT\r\n")
                return ok
        except OSError:
            return False

    def messages(self) -> list[email.message.Message]:
        files = [
            f
            for sub in ("new", "cur")
            if (self.maildir / sub).is_dir()
            for f in (self.maildir / sub).iterdir()
        ]
        files.sort(key=lambda f: (f.stat().st_mtime_ns, f.name))
        return [email.message_from_bytes(f.read_bytes()) for f in files]
