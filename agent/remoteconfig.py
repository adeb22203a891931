"""Whether a pushed config is applied, and which devices it changes. Pure.

:func:`decide` takes the signed payload (:mod:`xanet.signedconfig`), the bootstrap config,
the trusted keys, the config running and ``check`` (what ``xanet check-config`` checks on
this machine: secrets, files; the edge's callable) and returns :class:`Applied` or
:class:`Unchanged`, or raises :class:`~xanet.signedconfig.Refusal` with its short reason.
The agent then runs :func:`device_changes` to know which device loops to start, stop or
restart; every other device keeps its schedule and rate state.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.bootstrap import BOOTSTRAP_SECTIONS
from agent.config import AgentConfig, DeviceConfig
from xanet.config import ConfigError, parse_model
from xanet.signedconfig import Envelope, Refusal, open_envelope

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: Sections whose change re-plans every device (its credentials, timing, witnesses,
#: rates or profiles may depend on them): such devices restart with fresh state.
SHARED_SECTIONS = ("polling", "snmp", "icmp", "rates", "profiles")
_DETAIL_CHARS = 200


@dataclass(frozen=True, slots=True)
class Running:
    """The pushed config in force: its version and TOML text."""

    version: int
    text: str


@dataclass(frozen=True, slots=True)
class Applied:
    """A newer config to run: the merged config, its envelope and the signed payload."""

    config: AgentConfig
    envelope: Envelope
    payload: bytes


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The config running, again (a retained message delivered at each connection)."""

    version: int


def _short(problems: list[str]) -> str:
    text = "; ".join(problems)
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS - 1] + "…"


def parse_pushed(text: str, source: str) -> tuple[dict[str, Any], AgentConfig]:
    """The pushed TOML as a table and as a config on its own (what the core checks before
    signing: the text of an agent config, no machine checks). :class:`ConfigError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    if "remote_config" in raw:
        raise ConfigError(source, ["remote_config: only the box's own file says where its "
                                   "config comes from"])
    return raw, parse_model(raw, AgentConfig, source)


def bootstrap_changes(bootstrap: AgentConfig, pushed: Mapping[str, Any]) -> list[str]:
    """The bootstrap keys ``pushed`` gives another value (``section.key``)."""
    changed = []
    for name in BOOTSTRAP_SECTIONS:
        given = pushed.get(name)
        if not isinstance(given, dict):
            continue
        mine = getattr(bootstrap, name)
        try:
            theirs = type(mine).model_validate({**mine.model_dump(exclude_unset=True), **given})
        except ValueError:
            changed += [f"{name}.{key}" for key in sorted(given)]
            continue
        before, after = mine.model_dump(), theirs.model_dump()
        changed += [f"{name}.{key}" for key in sorted(after) if after[key] != before[key]]
    return changed


def merge(bootstrap: AgentConfig, pushed: Mapping[str, Any], source: str) -> AgentConfig:
    """The config to run: ``pushed`` with the bootstrap's own sections."""
    raw = {k: v for k, v in pushed.items() if k not in BOOTSTRAP_SECTIONS}
    for name in BOOTSTRAP_SECTIONS:
        raw[name] = getattr(bootstrap, name).model_dump(exclude_unset=True)
    return parse_model(raw, AgentConfig, source)


def decide(payload: bytes, *, bootstrap: AgentConfig, trusted: Mapping[str, Ed25519PublicKey],
           running: Running | None,
           check: Callable[[AgentConfig], list[str]]) -> Applied | Unchanged:
    """Apply, ignore (the same version again) or refuse (:class:`Refusal`) ``payload``."""
    env = open_envelope(payload, trusted, agent=bootstrap.agent.id,
                        applied=None if running is None else running.version)
    if running is not None and env.version == running.version:
        if env.config == running.text:
            return Unchanged(env.version)
        raise Refusal("old_version", f"version {env.version} again, with another config")
    source = f"pushed config v{env.version}"
    try:
        raw, _ = parse_pushed(env.config, source)
    except ConfigError as exc:
        raise Refusal("invalid_config", _short(exc.problems)) from exc
    changed = bootstrap_changes(bootstrap, raw)
    if changed:
        raise Refusal("bootstrap_changed", _short(changed))
    try:
        merged = merge(bootstrap, raw, source)
    except ConfigError as exc:
        raise Refusal("invalid_config", _short(exc.problems)) from exc
    problems = check(merged)
    if problems:
        raise Refusal("invalid_config", _short(problems))
    return Applied(merged, env, payload)


def device_key(cfg: AgentConfig, dev: DeviceConfig) -> str:
    """``site/device`` (the same key as :func:`agent.app.device_key`)."""
    return f"{dev.site or cfg.agent.site}/{dev.id}"


@dataclass(frozen=True, slots=True)
class DeviceChanges:
    """Device keys of a config change: loops to start, stop, restart; the rest kept."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    kept: tuple[str, ...]


def device_changes(old: AgentConfig, new: AgentConfig) -> DeviceChanges:
    """Which devices a change from ``old`` to ``new`` adds, removes, changes (its own table
    or a shared section differs: restarted with fresh state) and keeps as they run."""
    before = {device_key(old, d): d for d in old.devices}
    after = {device_key(new, d): d for d in new.devices}
    shared = any(getattr(old, s) != getattr(new, s) for s in SHARED_SECTIONS)
    common = [k for k in after if k in before]
    changed = [k for k in common if shared or before[k] != after[k]]
    return DeviceChanges(
        added=tuple(k for k in after if k not in before),
        removed=tuple(k for k in before if k not in after),
        changed=tuple(changed),
        kept=tuple(k for k in common if k not in changed),
    )
