"""Agent configuration (TOML → pydantic). See ``config/agent.example.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from agent.bootstrap import RemoteConfigSection, remote_config_problems
from agent.credentials import (
    MAX_USER_CHARS,
    MIN_KEY_CHARS,
    AuthProtocol,
    BackendChoice,
    PrivProtocol,
    SecurityLevel,
    SnmpV2c,
    SnmpV3,
    v3_problems,
)
from xanet.config import Host, Problems, Secret, SecretError, Strict, check_secrets
from xanet.ids import CanonicalId, Ident
from xanet.mqtt import MqttConfig
from xanet.preflight import tls_problems, writable_file_problem
from xanet.wire import MAX_INTERFACES_PER_POLL

_BACKEND_DOC = ('"auto": the lean codec where it supports the credentials, else pysnmp; '
                '"pysnmp": always pysnmp')


class SnmpV2cConfig(Strict):
    version: Literal["2c"]
    community: Secret = Field(description="SNMP v2c community")
    backend: BackendChoice = Field(default="auto", description=_BACKEND_DOC)


class SnmpV3Config(Strict):
    version: Literal["3"]
    user: str = Field(description=f"SNMPv3 user (USM), 1 to {MAX_USER_CHARS} characters")
    security_level: SecurityLevel = Field(
        default="authPriv",
        description='"authPriv": authenticated and encrypted (needs priv_key); "authNoPriv": '
        "authenticated only (no priv_key, no priv_protocol). A file without the key is "
        "authPriv, as before the key existed",
    )
    auth_protocol: AuthProtocol = "SHA"
    auth_key: Secret = Field(
        description=f"SNMPv3 authentication key, at least {MIN_KEY_CHARS} characters"
    )
    priv_protocol: PrivProtocol | None = Field(default="AES", description="authPriv only")
    priv_key: Secret | None = Field(
        default=None,
        description=f"SNMPv3 privacy key, at least {MIN_KEY_CHARS} characters (authPriv only)",
    )
    backend: BackendChoice = Field(default="auto", description=_BACKEND_DOC)

    @model_validator(mode="before")
    @classmethod
    def _implied_level(cls, data: Any) -> Any:
        # Code (not TOML, which has no null) may spell authNoPriv as priv_protocol = None.
        if (isinstance(data, dict) and "security_level" not in data
                and "priv_protocol" in data and data["priv_protocol"] is None
                and data.get("priv_key") is None):
            return {**data, "security_level": "authNoPriv"}
        return data

    @model_validator(mode="after")
    def _level(self) -> SnmpV3Config:
        # The rules that need no secret; key lengths are judged once the keys are read
        # (credential_problems), by the same function.
        problems = [f"{key}: {reason}"
                    for key, reason in v3_problems(self.user, None, None, None)]
        if self.security_level == "authPriv":
            if self.priv_key is None:
                problems.append('priv_key: required for security_level = "authPriv" (the '
                                'default); write security_level = "authNoPriv" for '
                                "authentication without encryption")
            if self.priv_protocol is None:
                problems.append('priv_protocol: required for security_level = "authPriv"')
        else:
            given = [key for key in ("priv_key", "priv_protocol")
                     if getattr(self, key) is not None and key in self.model_fields_set]
            problems += [f'{key}: not used with security_level = "authNoPriv" (remove it, '
                         'or write security_level = "authPriv")' for key in given]
        if problems:
            raise Problems(problems)
        return self


def _snmp_tag(value: Any) -> str | None:
    """Which kind of ``snmp`` a table is: its ``version`` ("2c", "3"), or "off" for false."""
    if value is False:
        return "off"
    version = value.get("version") if isinstance(value, dict) else getattr(value, "version", None)
    return version if isinstance(version, str) else None


_V2C = Annotated[SnmpV2cConfig, Tag("2c")]
_V3 = Annotated[SnmpV3Config, Tag("3")]
#: An ``[snmp]`` table, told apart by its ``version`` (a key path never shows the tag).
SnmpCredentials = Annotated[
    _V2C | _V3,
    Discriminator(_snmp_tag, custom_error_type="snmp_version",
                  custom_error_message='a table with version = "2c" or version = "3"'),
]
#: A device's ``snmp``: its own table, or false for a ping-only device.
DeviceSnmp = Annotated[
    _V2C | _V3 | Annotated[Literal[False], Tag("off")],
    Discriminator(_snmp_tag, custom_error_type="snmp_version",
                  custom_error_message='a table with version = "2c" or version = "3", or '
                  "false (a ping-only device)"),
]


#: A profile's name (shipped, or from [profiles] dir), or "auto".
ProfileChoice = CanonicalId


class DeviceConfig(Strict):
    id: Ident = Field(description="device id, unique per site (the inventory's device id)")
    host: Host = Field(
        description="management address of the device: an IP address or a host name "
        "(resolved at each poll; check-config checks only its syntax)"
    )
    port: int = Field(default=161, ge=1, le=65535)
    snmp: DeviceSnmp | None = Field(
        default=None,
        description="default: [snmp]; false: a ping-only device (CPE, ONT, radio), "
        "reachable when it answers ICMP echo",
    )
    icmp: bool | None = Field(
        default=None,
        description="ping it with every poll (default: [icmp] enabled); false for hosts "
        "that filter ICMP",
    )
    max_interfaces: int | None = Field(
        default=None, ge=1, le=MAX_INTERFACES_PER_POLL,
        description="default: [polling] max_interfaces",
    )
    poll_interval_s: float | None = Field(default=None, ge=1, le=86400)
    timeout_s: float | None = Field(description="per SNMP request", default=None, gt=0, le=60)
    retries: int | None = Field(description="SNMP retries per request", default=None, ge=0, le=5)
    site: Ident | None = Field(default=None, description="default: the agent's site")
    commune: Ident | None = Field(default=None, description="default: the agent's commune")
    profiles: list[ProfileChoice] | None = Field(
        default=None,
        description='everything polled besides sysUpTime (docs/profiles.md): "if-mib" the '
        'interfaces, e.g. ["if-mib", "ups-mib"], or ["ups-mib"] for a UPS (no interface '
        'walk); "auto": the profiles matching its sysObjectID. Default: [profiles] default. '
        "Profiles other than if-mib are polled with the device's polls, each at its own "
        "interval_s",
    )


def _profile_list_problems(names: list[str], where: str) -> list[str]:
    seen: set[str] = set()
    problems = []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(f"{where}[{i}]: {name!r} is named twice")
        seen.add(name)
    return problems


class ProfilesConfig(Strict):
    """Device profiles (docs/profiles.md): where user profiles live, what devices poll."""

    dir: Path | None = Field(
        default=None,
        description="a directory of user profiles (*.toml), added to the shipped ones; "
        "a shipped name is replaced only by a file with override = true",
    )
    default: list[ProfileChoice] = Field(
        default=["if-mib"],
        description='profiles of every device that names none: its interfaces, or e.g. '
        '["if-mib", "auto"]',
    )


class PollingConfig(Strict):
    interval_s: float = Field(description="default poll interval", default=60.0, ge=1, le=86400)
    jitter: float = Field(
        default=0.1,
        ge=0,
        le=1.0,
        description="each device's phase offset spread, fraction of interval",
    )
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=5)
    max_repetitions: int = Field(description="GETBULK max-repetitions", default=25, ge=1, le=200)
    max_concurrent: int = Field(
        description="devices polled at the same time", default=64, ge=1, le=4096
    )
    max_loop_lag_s: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="event-loop lag above which fewer polls are admitted at a time, so the "
        "uplink keeps its share of the CPU (docs/delivery.md); 0 = off",
    )
    min_concurrent: int = Field(
        default=1, ge=1, le=4096, description="the fewest polls admitted at a time under load"
    )
    max_interfaces: int = Field(
        default=MAX_INTERFACES_PER_POLL, ge=1, le=MAX_INTERFACES_PER_POLL,
        description="interface rows kept per device poll; rows beyond are discarded and "
        "counted (docs/snmp.md, Bounds)",
    )
    max_walk_bytes: int = Field(
        default=4 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024,
        description="what one device's interface walk may hold (estimated bytes); beyond, "
        "the poll fails with cause limit so one device cannot exhaust the agent's memory",
    )

    @model_validator(mode="after")
    def _concurrency(self) -> PollingConfig:
        if self.min_concurrent > self.max_concurrent:
            raise ValueError("min_concurrent must be <= max_concurrent")
        return self


class IcmpConfig(Strict):
    """The ICMP echo witness sent with every poll (docs/snmp.md, "ICMP witness")."""

    enabled: bool = Field(
        default=True, description="ping every device with each poll (a device's icmp overrides)"
    )
    count: int = Field(default=2, ge=1, le=5, description="echo requests per poll")
    interval_s: float = Field(default=0.2, ge=0, le=5, description="between echo requests")
    timeout_s: float = Field(default=1.0, gt=0, le=10, description="wait for each echo reply")


class RatesConfig(Strict):
    max_gap_factor: float = Field(
        description="no rate across a gap longer than this many poll intervals", default=3.0, ge=1.0
    )
    speed_tolerance: float = Field(
        description="a rate above interface speed x this is discarded and counted",
        default=1.1,
        ge=1.0,
    )
    counter32_readings: bool = Field(
        default=True,
        description="read the counters of Counter32-only ports too fast for the poll interval "
        "(a second wrap possible: gigabit at 60 s) between polls, so they get a rate "
        "(docs/counters.md)",
    )
    counter32_max_readings: int = Field(
        default=5, ge=1, le=20,
        description="such readings between two polls of a device, at most (each: one GET of "
        "sysUpTime, one per 24 ports)",
    )
    counter32_min_interval_s: float = Field(
        default=5.0, ge=1.0, description="such readings never closer than this")


class AgentMqttConfig(MqttConfig):
    """The agent's ``[mqtt]``: the shared connection settings plus what only agents use."""

    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description='MQTT version. "3.1.1" only for brokers without v5: the broker then '
        "acknowledges a publish its ACL refuses like a delivered one (docs/delivery.md)",
    )
    will_delay_s: int = Field(
        default=5, ge=0, le=3600,
        description="MQTT v5 Will Delay: the offline Last Will waits this long, so a quick "
        "reconnect or a session takeover fires no false offline (v5 only)",
    )


class BatchConfig(Strict):
    max_polls: int = Field(
        default=1, ge=1, le=1000, description="device polls per telemetry message"
    )
    linger_s: float = Field(default=0.2, ge=0, le=60)
    max_payload_bytes: int = Field(
        default=256 * 1024, ge=4096, le=16 * 1024 * 1024,
        description="largest telemetry payload: batches (and one huge poll, by interfaces) "
        "are split to fit this and the broker's Maximum Packet Size. Keep it at or below "
        "the collector's ingest.max_payload_bytes",
    )
    compact: bool = Field(
        default=True,
        description="send the backlog as compact batches (zstd, docs/data.md) when the core "
        "announces them on xanet/v1/core/capabilities; false, or an older core: JSON only",
    )
    backlog_batch_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024,
        description="largest compact batch of backlog (also bounded by the core's announced "
        "maximum and the broker's Maximum Packet Size); live polls stay JSON",
    )


class SpoolConfig(Strict):
    path: Path = Field(
        default=Path("/var/lib/xanet/agent-spool.sqlite3"), description="SQLite file of the outbox"
    )
    max_messages: int = Field(
        description="when full, the oldest messages are dropped and counted", default=200_000, ge=10
    )
    max_age_s: float = Field(
        description="older messages are dropped and counted", default=30 * 86400, gt=0
    )
    replay_rate_per_s: float = Field(
        default=50.0, gt=0, description="throttle for backlog after a reconnect, in messages/s"
    )
    replay_budget_bytes_per_s: Annotated[float, Field(gt=0)] | Literal["auto", "off"] = Field(
        default="auto",
        description='the backlog\'s bandwidth budget in bytes/s (both this and '
        'replay_rate_per_s apply); "auto": measured from PUBACK throughput; "off": messages/s '
        "only. Live polls are never paced; the backlog goes in the capacity they leave "
        "(docs/delivery.md)",
    )
    fsync: Literal["always", "batch", "off"] = Field(
        default="batch",
        description="always: survives power cuts; batch: survives crashes; off: tests only",
    )


class AgentSection(Strict):
    id: Ident = Field(
        description="unique agent id (MQTT client id xanet-agent-{id}; the inventory's "
        "site agent)"
    )
    province: Ident = Field(description="province topic level")
    commune: Ident = Field(description="commune code of the agent's site")
    site: Ident = Field(description="the site this agent sits at")
    status_interval_s: float = Field(
        description="how often the retained status (self-telemetry) is refreshed",
        default=60.0,
        ge=5,
    )


class AgentConfig(Strict):
    agent: AgentSection
    mqtt: AgentMqttConfig = AgentMqttConfig()
    polling: PollingConfig = PollingConfig()
    icmp: IcmpConfig = IcmpConfig()
    rates: RatesConfig = RatesConfig()
    batch: BatchConfig = BatchConfig()
    spool: SpoolConfig = SpoolConfig()
    profiles: ProfilesConfig = ProfilesConfig()
    remote_config: RemoteConfigSection = RemoteConfigSection()
    snmp: SnmpCredentials | None = None
    devices: list[DeviceConfig] = Field(
        default_factory=list,
        description="at least one, unless [remote_config] enabled (the core pushes them)")

    @model_validator(mode="after")
    def _devices(self) -> AgentConfig:
        seen: set[tuple[str, str]] = set()
        problems: list[str] = []
        if not self.devices and not self.remote_config.enabled:
            problems.append("devices: at least one [[devices]] (or [remote_config] enabled: "
                            "the core pushes them)")
        for i, dev in enumerate(self.devices):
            # Device ids are unique per site, as in the inventory (rtr-1 at every hub).
            key = (dev.site or self.agent.site, dev.id)
            if key in seen:
                problems.append(f"devices[{i}].id: duplicate device {dev.id!r} at site {key[0]!r}")
            seen.add(key)
            if dev.snmp is None and self.snmp is None:
                problems.append(f"devices[{i}].snmp: no credentials here and no [snmp] default "
                                "(snmp = false makes it a ping-only device)")
            if dev.snmp is False and not self.pings(dev):
                problems.append(f"devices[{i}]: a ping-only device (snmp = false) needs ICMP, "
                                "but icmp is off for it")
            if dev.profiles:
                problems += _profile_list_problems(dev.profiles, f"devices[{i}].profiles")
                if dev.snmp is False:
                    problems.append(f"devices[{i}].profiles: a ping-only device (snmp = false) "
                                    "has no profiles to poll")
        problems += _profile_list_problems(self.profiles.default, "profiles.default")
        if problems:
            raise Problems(problems)
        return self

    def profiles_of(self, dev: DeviceConfig) -> list[str]:
        """The profile names ``dev`` polls: its own ``profiles``, else ``[profiles] default``
        (none for a ping-only device)."""
        if dev.snmp is False:
            return []
        return list(self.profiles.default if dev.profiles is None else dev.profiles)

    def pings(self, dev: DeviceConfig) -> bool:
        """Whether ``dev`` gets the ICMP witness: its own ``icmp``, else ``[icmp] enabled``."""
        return self.icmp.enabled if dev.icmp is None else dev.icmp


def credentials_from(creds: SnmpV2cConfig | SnmpV3Config,
                     environ: dict[str, str] | None = None) -> SnmpV2c | SnmpV3:
    """The credential object of a ``[snmp]`` table, its secrets read now. Raises
    :class:`~xanet.config.SecretError` or ``ValueError`` (a rule of
    :mod:`agent.credentials` broken: :func:`check_agent` reports it first)."""
    if isinstance(creds, SnmpV2cConfig):
        return SnmpV2c(community=creds.community.reveal(environ))
    priv = creds.security_level == "authPriv"
    return SnmpV3(
        user=creds.user,
        auth_key=creds.auth_key.reveal(environ),
        priv_key=creds.priv_key.reveal(environ) if priv and creds.priv_key else None,
        auth_protocol=creds.auth_protocol,
        priv_protocol=creds.priv_protocol if priv else None,
    )


def _key(secret: Secret | None, environ: dict[str, str] | None) -> str | None:
    """The key, or None when it is absent or cannot be read (check_secrets says why)."""
    if secret is None:
        return None
    try:
        return secret.reveal(environ)
    except SecretError:
        return None


def credential_problems(cfg: AgentConfig, environ: dict[str, str] | None = None) -> list[str]:
    """What the SNMPv3 keys break of :func:`agent.credentials.v3_problems`, once read."""
    tables: list[tuple[str, SnmpV2cConfig | SnmpV3Config | Literal[False] | None]] = [
        ("snmp", cfg.snmp), *((f"devices[{i}].snmp", d.snmp) for i, d in enumerate(cfg.devices))]
    problems: list[str] = []
    for where, creds in tables:
        if not isinstance(creds, SnmpV3Config):
            continue
        priv = creds.security_level == "authPriv"
        auth_key = _key(creds.auth_key, environ)
        priv_key = _key(creds.priv_key, environ) if priv else None
        for key, reason in v3_problems(creds.user, auth_key, priv_key,
                                       creds.priv_protocol if priv else None):
            secret = getattr(creds, key, None)
            source = f", from {secret.describe()}" if isinstance(secret, Secret) else ""
            problems.append(f"{where}.{key}: {reason}{source}")
    return problems


def profile_problems(cfg: AgentConfig) -> list[str]:
    """The profile catalog's problems (``profiles.dir: file: key.path: reason``) and every
    name a device or the default gives that the catalog does not hold."""
    chosen = {*cfg.profiles.default, *(n for dev in cfg.devices for n in dev.profiles or [])}
    if cfg.profiles.dir is None and chosen <= {"if-mib"}:
        return []  # only the shipped if-mib (tests/test_ifmib.py): no catalog to read
    from agent.profiles.load import catalog_problems
    from agent.profiles.select import unknown_names

    catalog, problems = catalog_problems(cfg.profiles.dir)
    problems = [f"profiles.dir: {problem}" for problem in problems]
    known = ", ".join(sorted(catalog))
    named = [("profiles.default", cfg.profiles.default)]
    named += [(f"devices[{i}].profiles", dev.profiles or []) for i, dev in enumerate(cfg.devices)]
    for where, names in named:
        for name in unknown_names(names, catalog):
            problems.append(f"{where}[{names.index(name)}]: unknown profile {name!r} "
                            f"(known: {known}, or \"auto\")")
    return problems


def check_agent(cfg: AgentConfig, environ: dict[str, str] | None = None, *,
                secrets: bool = True, files: bool = True) -> list[str]:
    """Every problem the agent would meet at start on this machine (``key.path: reason``):
    secrets that cannot be read, SNMPv3 keys too short, TLS files missing or not PEM, a
    spool it cannot create, profiles that cannot be read or are not there.
    ``xanet check-config`` and ``xanet agent`` both run it."""
    problems: list[str] = []
    if secrets:
        problems += check_secrets(cfg, environ)
        problems += credential_problems(cfg, environ)
    if files:
        problems += tls_problems(cfg.mqtt)
        spool = writable_file_problem(cfg.spool.path)
        if spool is not None:
            problems.append(f"spool.path: {spool}")
        problems += profile_problems(cfg)
        problems += remote_config_problems(cfg.remote_config)
    return problems
