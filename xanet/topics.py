"""MQTT topic names: ``xanet/v1/{province}/{commune}/{site}/{telemetry|status|batch}``, and
each agent's pushed config ``xanet/v1/config/{agent}``. Pure.

``.../batch`` carries compact batches of telemetry (:mod:`xanet.compact`), sent only to a
core that announced them on :data:`CAPABILITIES`, ``xanet/v1/core/capabilities`` (retained,
written by the collector, read by agents: :mod:`xanet.capabilities`); it has four levels,
so no site filter matches it.

A site's third topic, ``.../test``, carries only the technician's test message
(``xanet agent test``, :func:`probe_topic`): it is not a :data:`KINDS` kind, so no
collector subscribes to it and :func:`parse` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xanet.ids import IDENT_RULE, is_ident

ROOT = "xanet"
VERSION = "v1"
Kind = Literal["telemetry", "status", "batch"]
KINDS: tuple[Kind, ...] = ("telemetry", "status", "batch")
#: The core's retained capability message (what it understands: :mod:`xanet.capabilities`).
CAPABILITIES = f"{ROOT}/{VERSION}/core/capabilities"
#: The last level of a site's test topic (not a data kind: see the module's doc).
TEST = "test"

CONFIG = "config"


class TopicError(ValueError):
    """A topic that is not a xanet v1 topic, or a level that is not a valid identifier."""


@dataclass(frozen=True, slots=True)
class SiteTopic:
    province: str
    commune: str
    site: str
    kind: Kind

    def __str__(self) -> str:
        return build(self.province, self.commune, self.site, self.kind)


def _check_level(name: str, value: str) -> None:
    if not is_ident(value):
        raise TopicError(f"{name} {value!r} is not usable in a topic: {IDENT_RULE}")


def build(province: str, commune: str, site: str, kind: Kind) -> str:
    for name, value in (("province", province), ("commune", commune), ("site", site)):
        _check_level(name, value)
    if kind not in KINDS:
        raise TopicError(f"unknown topic kind {kind!r}")
    return f"{ROOT}/{VERSION}/{province}/{commune}/{site}/{kind}"


def probe_topic(province: str, commune: str, site: str) -> str:
    """The site's test topic, ``xanet/v1/{province}/{commune}/{site}/test``."""
    for name, value in (("province", province), ("commune", commune), ("site", site)):
        _check_level(name, value)
    return f"{ROOT}/{VERSION}/{province}/{commune}/{site}/{TEST}"


def parse(topic: str) -> SiteTopic:
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != ROOT:
        raise TopicError(f"{topic!r} is not a {ROOT}/{VERSION}/province/commune/site/kind topic")
    if parts[1] != VERSION:
        raise TopicError(f"{topic!r}: unsupported topic version {parts[1]!r}")
    kind = parts[5]
    if kind not in KINDS:
        raise TopicError(f"{topic!r}: unknown kind {kind!r}")
    province, commune, site = parts[2], parts[3], parts[4]
    for name, value in (("province", province), ("commune", commune), ("site", site)):
        _check_level(name, value)
    return SiteTopic(province, commune, site, kind)


def subscription(kind: Kind, province: str = "+", commune: str = "+") -> str:
    """Wildcard filter for every site of a province (or of all provinces), or of one
    commune of it."""
    return f"{ROOT}/{VERSION}/{province}/{commune}/+/{kind}"


def config_topic(agent: str) -> str:
    """The retained topic of ``agent``'s signed config (the broker's ACL lets the agent
    read only its own: ``pattern read xanet/v1/config/%u``)."""
    _check_level("agent", agent)
    return f"{ROOT}/{VERSION}/{CONFIG}/{agent}"
