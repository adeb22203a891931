"""An agent's config against the inventory: which polls would count for nothing, and
which inventory devices nobody polls. Pure (the models in, problem lines out).

``xanet check-config agent.toml inventory.toml`` runs it for every agent file against
every inventory file of the agent's province (``[agent] province`` = the inventory's
province code) given, after each file passed its own checks. Each problem names the
file, the device and the reason:

* a device of the agent that the inventory does not know: its polls are counted as
  unmapped (``unmapped_device``) and give no availability;
* a device of a site the agent serves (the inventory's ``agent`` of the site, or a site
  the agent's config names and the inventory gives no agent) that the agent's config does
  not poll: its elements stay unknown (no data);
* a site of the agent's config that the inventory gives to another agent: the collector
  refuses its messages (``agent_mismatch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xanet.inventory import Inventory


@dataclass(frozen=True, slots=True)
class AgentDevice:
    """One ``[[devices]]`` entry of an agent config, with its effective site."""

    index: int
    id: str
    site: str


def cross_check(agent_file: str, agent_id: str, agent_site: str,
                devices: Sequence[AgentDevice], inventory_file: str,
                inventory: Inventory) -> list[str]:
    """Problems of one agent config against one inventory (see the module doc)."""
    problems: list[str] = []
    configured = {(d.site, d.id) for d in devices}
    config_sites = [("agent.site", agent_site)] + [
        (f"devices[{d.index}].site", d.site) for d in devices if d.site != agent_site]
    seen_sites: set[str] = set()
    for where, site in config_sites:
        if site in seen_sites:
            continue
        seen_sites.add(site)
        if not inventory.has_site(site):
            problems.append(f"{agent_file}: {where}: site {site!r} is not in {inventory_file}")
            continue
        owner = inventory.site(site).agent
        if owner is not None and owner != agent_id:
            problems.append(
                f"{agent_file}: {where}: {inventory_file} says agent {owner!r} polls site "
                f"{site!r}, not {agent_id!r}: the collector refuses this agent's messages "
                "for it (agent_mismatch)")
    for d in devices:
        if inventory.has_site(d.site) and not inventory.has_device(d.site, d.id):
            problems.append(
                f"{agent_file}: devices[{d.index}] ({d.id}, site {d.site}): not in "
                f"{inventory_file}: its polls count for nothing (unmapped); add it to the "
                "inventory or remove it from the agent")
    for i, served in enumerate(inventory.sites):
        if not (served.agent == agent_id or (served.agent is None and served.id in seen_sites)):
            continue
        for j, device in enumerate(served.devices):
            if (served.id, device.id) not in configured:
                problems.append(
                    f"{inventory_file}: sites[{i}].devices[{j}] ({served.id}/{device.id}): "
                    f"site {served.id} is polled by agent {agent_id!r} but {agent_file} has "
                    f"no device {device.id!r}: its elements will stay unknown (no data)")
    return problems
