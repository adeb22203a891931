"""net-snmp's snmpd as a real SNMP agent on a free loopback port, and its snmpget."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lab.base import HOST, Daemon, ServiceError

OID_SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


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


class Snmpd(Daemon):
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
