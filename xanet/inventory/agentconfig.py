"""An agent's config rendered from the inventory: its devices, intervals, profiles and
credentials as the inventory says them. Pure (the inventory in, TOML text out).

``render_agent_config(inventory, agent_id)`` is what ``xanet inventory agent-config``
prints and what the core signs and publishes to the agent. The same inputs give the same
text, byte for byte. What the text holds:

* ``[agent]``: the agent's id, the province, and the site its box sits at (its
  ``[[agents]]`` entry, else the first site it polls) with that site's commune;
* ``[mqtt]``, ``[polling]``, ``[icmp]``, ``[rates]``, ``[batch]``, ``[spool]``,
  ``[profiles]``: the inventory's ``[agent_defaults]`` tables as written there, then the
  ``broker`` and ``sections`` arguments over them; ``mqtt.username`` defaults to the
  agent id (what ``deploy/mosquitto/issue-agent-credentials.sh`` issues);
* one ``[[devices]]`` per device with an ``address`` of every site the agent polls (file
  order): ``host``, ``port``, ``site``/``commune`` when not the agent's, ``poll_interval_s``,
  ``profiles``, and ``snmp``: the device's credentials table (or ``[agent_defaults]
  credentials``) with each secret as where the site box reads it, or ``false`` for a
  ping-only device. Devices without an address are listed in the header, not polled.

The text is checked by the agent's own model before it is returned: a config this
function returns is one ``xanet check-config`` accepts (secrets and files aside, which
only the site box has).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import tomli_w

from xanet.config import ConfigError, Secret, parse_model
from xanet.inventory.index import Inventory
from xanet.inventory.model import AGENT_SECTIONS, Credentials, Device, Site


def render_agent_config(inventory: Inventory, agent_id: str, *, source: str = "inventory",
                        generated_at: datetime | None = None, broker: str | None = None,
                        sections: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The TOML text of ``agent_id``'s config (see the module doc).

    ``source`` names the inventory in the header, ``generated_at`` (if given) says when;
    ``broker`` (``host`` or ``host:port``) sets ``[mqtt]`` host and port; ``sections``
    (``{"spool": {"path": ...}}``) are set over ``[agent_defaults]``. Raises
    :class:`~xanet.config.ConfigError` (source ``agent-config AGENT``) when the agent is
    unknown, polls no device with an address, or the result is not a valid agent config.
    """
    where = f"agent-config {agent_id}"
    sites = inventory.sites_of_agent(agent_id)
    if agent_id not in inventory.agent_ids():
        raise ConfigError(where, [f"agent {agent_id!r}: not in {source} (no [[agents]] "
                                  "entry, no site names it)"])
    home = _home_site(inventory, agent_id, sites)
    polled = [(s, d) for s in sites for d in s.devices if d.address is not None]
    skipped = [f"{s.id}/{d.id}" for s in sites for d in s.devices if d.address is None]
    if not polled:
        raise ConfigError(where, [f"agent {agent_id!r}: no device with an address in "
                                  f"{source} (sites: {', '.join(s.id for s in sites)})"])
    data: dict[str, Any] = {"agent": {"id": agent_id, "province": inventory.province.code,
                                      "commune": home.commune, "site": home.id}}
    data.update(_sections(inventory, agent_id, broker, sections or {}))
    data["devices"] = [_device(inventory, home, s, d) for s, d in polled]
    text = _header(inventory, agent_id, home, source, generated_at, len(polled), skipped)
    text += tomli_w.dumps(data)
    _check(text, where)
    return text


def _home_site(inventory: Inventory, agent_id: str, sites: list[Site]) -> Site:
    try:
        return inventory.site(inventory.agent(agent_id).site)
    except KeyError:
        return sites[0]  # named by a site only: it sits at the first site it polls


def _sections(inventory: Inventory, agent_id: str, broker: str | None,
              sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    defaults = inventory.agent_defaults
    out: dict[str, dict[str, Any]] = {}
    for name in AGENT_SECTIONS:
        table = {**getattr(defaults, name), **sections.get(name, {})}
        if table:
            out[name] = table
    mqtt = out.setdefault("mqtt", {})
    if broker is not None:
        host, _, port = broker.rpartition(":") if broker.count(":") == 1 else (broker, "", "")
        mqtt["host"] = host
        if port:
            mqtt["port"] = int(port) if port.isdigit() else port
    mqtt.setdefault("username", agent_id)
    return {k: v for k, v in out.items() if v}


def _device(inventory: Inventory, home: Site, site: Site, device: Device) -> dict[str, Any]:
    out: dict[str, Any] = {"id": device.id, "host": device.address}
    if device.port is not None:
        out["port"] = device.port
    if site.id != home.id:
        out["site"] = site.id
    if site.commune != home.commune:
        out["commune"] = site.commune
    if device.interval_s is not None:
        out["poll_interval_s"] = device.interval_s
    if device.profiles is not None:
        out["profiles"] = list(device.profiles)
    if device.monitor == "ping":
        out["snmp"] = False
        return out
    ref = device.credentials or inventory.agent_defaults.credentials
    if ref is not None and ref in inventory.credentials:
        out["snmp"] = snmp_table(ref, inventory.credentials[ref],
                                 str(inventory.agent_defaults.secrets_dir))
    return out


def snmp_table(name: str, creds: Credentials, secrets_dir: str) -> dict[str, Any]:
    """The agent's ``snmp`` table of credentials ``name``: its keys as written, each
    absent secret read from ``{secrets_dir}/{name}.{key}`` on the site box."""

    def secret(key: str, given: Secret | None) -> dict[str, str]:
        if given is None:
            return {"file": f"{secrets_dir.rstrip('/')}/{name}.{key}"}
        return {"env": given.env} if given.env is not None else {"file": str(given.file)}

    if creds.version == "2c":
        return {"version": "2c", "community": secret("community", creds.community)}
    out: dict[str, Any] = {"version": "3", "user": creds.user}
    for key in ("security_level", "auth_protocol", "priv_protocol"):
        if getattr(creds, key) is not None:
            out[key] = getattr(creds, key)
    out["auth_key"] = secret("auth_key", creds.auth_key)
    if creds.security_level != "authNoPriv":
        out["priv_key"] = secret("priv_key", creds.priv_key)
    return out


def _header(inventory: Inventory, agent_id: str, home: Site, source: str,
            generated_at: datetime | None, polled: int, skipped: list[str]) -> str:
    when = f" at {generated_at.isoformat(timespec='seconds')}" if generated_at else ""
    lines = [
        f"# GENERATED by `xanet inventory agent-config {agent_id}` from {source}{when}.",
        "# Do not edit: change the inventory and render again (docs/inventory.md).",
        f"# Agent {agent_id} at site {home.id} (commune {home.commune}, province "
        f"{inventory.province.code}): {polled} devices.",
    ]
    if skipped:
        lines.append(f"# Not polled (no address in the inventory): {', '.join(skipped)}")
    return "\n".join(lines) + "\n\n"


def _check(text: str, where: str) -> None:
    import tomllib

    from agent.config import AgentConfig

    parse_model(tomllib.loads(text), AgentConfig, where)


def agent_defaults_problems(inventory: Inventory) -> list[str]:
    """What the agent's model refuses of ``[agent_defaults]``'s tables (``xanet
    check-config`` on an inventory): one config is rendered, for the first agent that polls
    a device, and its problems in those tables are given with their inventory key path."""
    agent_id = next((s.agent for s in inventory.sites if s.agent is not None
                     and any(d.address is not None for d in s.devices)), None)
    if agent_id is None:
        return []
    try:
        render_agent_config(inventory, agent_id)
    except ConfigError as exc:
        return [f"agent_defaults.{p}" if p.split(".")[0].split(":")[0] in AGENT_SECTIONS
                else f"agent_defaults (rendering agent {agent_id}): {p}" for p in exc.problems]
    return []
