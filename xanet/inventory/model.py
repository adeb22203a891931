"""The inventory's tables as models: province, communes, sites, devices and elements.

What each TOML table may hold and what an element means (a device or one of its
interfaces, counted for one service). Pure; the cross-references between tables are
checked in :mod:`xanet.inventory.consistency`, the lookups in :mod:`xanet.inventory.index`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from xanet.config import Host, Secret
from xanet.ids import CANONICAL_ID_PATTERN, CanonicalId, is_canonical
from xanet.snmpnames import AuthProtocol, PrivProtocol, SecurityLevel

#: The inventory's ids are canonical ids (:mod:`xanet.ids`): lowercase letters, digits and
#: inner '-', 1..64 characters, usable verbatim as an MQTT topic level (no '/', '+', '#'),
#: an InfluxDB tag value and an Alertmanager label.
TOPIC_SAFE_ID_PATTERN = CANONICAL_ID_PATTERN
Id = CanonicalId
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
InterfaceName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def is_topic_safe(value: str) -> bool:
    """True if ``value`` is a valid inventory id (safe as an MQTT topic level)."""
    return is_canonical(value)


class Service(StrEnum):
    """What a commune is measured for."""

    FIBRE = "fibre"
    BROADBAND = "broadband"
    MOBILE_2G = "mobile_2g"
    MOBILE_3G = "mobile_3g"
    MOBILE_4G = "mobile_4g"


SERVICE_LABELS_VI: Mapping[Service, str] = {
    Service.FIBRE: "cáp quang",
    Service.BROADBAND: "băng rộng",
    Service.MOBILE_2G: "di động 2G",
    Service.MOBILE_3G: "di động 3G",
    Service.MOBILE_4G: "di động 4G",
}


class Technology(StrEnum):
    """Radio technology of a BTS site."""

    G2 = "2g"
    G3 = "3g"
    G4 = "4g"


TECHNOLOGY_SERVICE: Mapping[Technology, Service] = {
    Technology.G2: Service.MOBILE_2G,
    Technology.G3: Service.MOBILE_3G,
    Technology.G4: Service.MOBILE_4G,
}

SiteRole = Literal["hub", "bts", "other"]


def element_key(site: str, device: str, interface: str | None = None) -> str:
    """Stable identity of a monitored thing: ``site/device`` or ``site/device/ifname``.

    Site and device ids never contain '/', so ``key.split("/", 2)`` recovers the parts even
    when the ifName has slashes (``ge-0/0/0``). Several elements (one per service) may
    share a key: the key names what is observed, the service what it counts for.
    """
    return f"{site}/{device}" if interface is None else f"{site}/{device}/{interface}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _inject(data: Any, field: str, values: Mapping[str, Any]) -> Any:
    """Copy ``data`` with each dict in ``data[field]`` given ``values`` (set by nesting).

    A nested table may repeat such a key (a dumped inventory validates again); a value
    that differs from its enclosing table is reported by the inventory's cross-check.
    """
    if not isinstance(data, dict):
        return data
    children = data.get(field)
    if not isinstance(children, list):
        return data
    given = {k: v for k, v in values.items() if isinstance(v, str)}
    out = [{**given, **child} if isinstance(child, dict) else child for child in children]
    return {**data, field: out}


class Province(_Model):
    code: Id
    name: Name


class District(_Model):
    """Pre-2025 district (huyện). Optional: since July 2025 communes sit under the province."""

    code: Id
    name: Name


class Commune(_Model):
    code: Id
    name: Name
    district: Id | None = None


class Element(_Model):
    """A monitored thing: a device (``interface`` absent: reachability) or one of its
    interfaces, counted for one service. ``site`` and ``device`` come from the tables the
    element is nested in.

    An interface is found in a poll by its name (ifName, else ifDescr: what the agent
    sends as ``name``), or, when ``ifindex`` is given, by that ifIndex - then ``interface``
    only names the element (its key). A name that repeats in one poll (no ifXTable and
    ifDescr twice) matches no row: the element is unknown (``interface_ambiguous``),
    never an arbitrary row's state (collector/facts.py).
    """

    site: str  # from the enclosing tables (validated there)
    device: str
    service: Service
    interface: InterfaceName | None = None
    ifindex: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _ifindex_names_an_interface(self) -> Element:
        if self.ifindex is not None and self.interface is None:
            raise ValueError("ifindex needs interface (the element's name)")
        return self

    @property
    def key(self) -> str:
        return element_key(self.site, self.device, self.interface)


Monitor = Literal["snmp", "ping"]
SnmpVersion = Literal["2c", "3"]
#: A device profile's name as an agent's ``devices[].profiles`` takes it (or "auto").
ProfileName = CanonicalId


class Device(_Model):
    """Equipment at a site. ``host`` is a label only. ``monitor``: ``snmp`` (polled; ICMP
    echo is a second witness) or ``ping`` (no SNMP - CPE, ONT, radio: the ICMP echo is the
    only witness, so its elements are the device itself, never an interface).

    What an agent needs to poll it (all optional; a device with an ``address`` is polled
    by its site's ``agent``, whose config :mod:`xanet.inventory.agentconfig` renders):
    ``address`` and ``port``, ``snmp_version`` (checked against the credentials),
    ``credentials`` (the name of a ``[credentials.NAME]`` table: never a secret),
    ``profiles`` and ``interval_s``.
    """

    id: Id
    site: str  # from the enclosing site (validated there)
    host: Name | None = None
    monitor: Monitor = "snmp"
    address: Host | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    snmp_version: SnmpVersion | None = None
    credentials: Id | None = None
    profiles: tuple[ProfileName, ...] | None = None
    interval_s: float | None = Field(default=None, ge=1, le=86400)
    elements: tuple[Element, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return _inject(data, "elements", {"site": data.get("site"), "device": data.get("id")})


class Site(_Model):
    """A place with equipment: a commune hub, a BTS, or something else (e.g. a repeater).

    ``parent`` is the site whose uplink this site hangs behind; ``technologies`` only for
    BTS; ``agent`` is the id of the agent that polls this site's devices; ``operator`` the
    operators whose service the site carries (a shared site lists each, and counts for
    each in per-operator reports; a single name is accepted as a one-item list).
    """

    id: Id
    commune: Id
    role: SiteRole
    name: Name | None = None
    parent: Id | None = None
    technologies: frozenset[Technology] = frozenset()
    agent: Id | None = None
    operator: tuple[Name, ...] = ()
    devices: tuple[Device, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("operator"), str):
            data = {**data, "operator": [data["operator"]]}
        return _inject(data, "devices", {"site": data.get("id")})


class Agent(_Model):
    """A site agent: ``id`` (what sites' ``agent`` names) and the ``site`` its box sits at
    (its topic's site and commune)."""

    id: Id
    site: Id
    name: Name | None = None


class Credentials(_Model):
    """``[credentials.NAME]``: how the devices that name it are polled, never a secret.

    The agent's ``[snmp]`` table without the secrets' values: each secret is where the
    site box reads it (``{ env = "VAR" }`` or ``{ file = "/path" }``); an absent one is
    read from ``{agent_defaults.secrets_dir}/{NAME}.{key}`` (a file on the site box).
    """

    version: SnmpVersion
    user: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    security_level: SecurityLevel | None = None
    auth_protocol: AuthProtocol | None = None
    priv_protocol: PrivProtocol | None = None
    community: Secret | None = None
    auth_key: Secret | None = None
    priv_key: Secret | None = None

    @model_validator(mode="after")
    def _version_keys(self) -> Credentials:
        v3_keys = ("user", "security_level", "auth_protocol", "priv_protocol", "auth_key",
                   "priv_key")
        if self.version == "2c":
            wrong = [k for k in v3_keys if getattr(self, k) is not None]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: SNMPv3 keys in a version \"2c\" table")
        else:
            if self.community is not None:
                raise ValueError('community: a version "2c" key in a version "3" table')
            if self.user is None:
                raise ValueError('user: required for version "3"')
            if self.security_level == "authNoPriv" and (
                    self.priv_key is not None or self.priv_protocol is not None):
                raise ValueError('priv_key/priv_protocol: not used with security_level = '
                                 '"authNoPriv"')
        return self


#: The agent config sections ``[agent_defaults]`` may carry, copied into every rendered
#: agent config (checked there, by the agent's own model).
AGENT_SECTIONS: tuple[str, ...] = ("mqtt", "polling", "icmp", "rates", "batch", "spool",
                                   "profiles")


class AgentDefaults(_Model):
    """``[agent_defaults]``: what every rendered agent config gets that is the same on every
    site box (broker, TLS files, spool, where SNMP secrets are read)."""

    credentials: Id | None = Field(
        default=None, description="credentials of devices that name none")
    secrets_dir: Path = Field(
        default=Path("/etc/xanet/snmp"),
        description="where a credentials table's absent secrets are read on the site box")
    mqtt: dict[str, Any] = Field(default_factory=dict)
    polling: dict[str, Any] = Field(default_factory=dict)
    icmp: dict[str, Any] = Field(default_factory=dict)
    rates: dict[str, Any] = Field(default_factory=dict)
    batch: dict[str, Any] = Field(default_factory=dict)
    spool: dict[str, Any] = Field(default_factory=dict)
    profiles: dict[str, Any] = Field(default_factory=dict)
