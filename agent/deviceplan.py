"""How each device is polled, from the agent's config: its key, SNMP target, rate rules, plan.

What the poll loop (:mod:`agent.app`), a pushed config's live apply (:meth:`Agent.apply`)
and the technician's test (:mod:`agent.fieldtest`) build for a device, the same way: the
SNMP target with its credentials (secrets read from env or files here), whether its
interfaces are walked (:mod:`agent.pollplan`), the ICMP witness, the name look-up bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import AgentConfig, DeviceConfig, credentials_from
from agent.pollplan import polls_interfaces
from agent.rates import RatePolicy
from agent.snmp import SnmpTarget
from xanet.config import SecretError


def device_key(agent_cfg: AgentConfig, dev: DeviceConfig) -> str:
    """``site/device``: unique within an agent (device ids are unique per site)."""
    return f"{dev.site or agent_cfg.agent.site}/{dev.id}"


def snmp_target(agent_cfg: AgentConfig, dev: DeviceConfig) -> SnmpTarget:
    """The device's SNMP target; raises ``ValueError``/``SecretError`` when its credentials
    cannot be used (the device then fails every poll with cause ``config``)."""
    creds_cfg = dev.snmp if dev.snmp is not None else agent_cfg.snmp
    assert creds_cfg is not None and creds_cfg is not False  # AgentConfig validation
    creds = credentials_from(creds_cfg)
    poll = agent_cfg.polling
    return SnmpTarget(
        device=device_key(agent_cfg, dev),
        host=dev.host,
        port=dev.port,
        credentials=creds,
        timeout_s=dev.timeout_s or poll.timeout_s,
        retries=dev.retries if dev.retries is not None else poll.retries,
        max_repetitions=poll.max_repetitions,
        max_rows=dev.max_interfaces or poll.max_interfaces,
        max_walk_bytes=poll.max_walk_bytes,
        backend=creds_cfg.backend,
        interfaces=polls_interfaces(agent_cfg, dev),
    )


def rate_policy(agent_cfg: AgentConfig, dev: DeviceConfig) -> RatePolicy:
    """The rules of ``dev``'s interface rates (and its profile counters')."""
    return RatePolicy(poll_interval_s=dev.poll_interval_s or agent_cfg.polling.interval_s,
                      max_gap_factor=agent_cfg.rates.max_gap_factor,
                      speed_tolerance=agent_cfg.rates.speed_tolerance)


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """How one device is polled: its SNMP target (None: ping-only, or unusable config)."""

    host: str
    target: SnmpTarget | None
    ping: bool
    config_error: str | None = None  # why the SNMP target cannot be built
    #: the bound on the name look-up: the SNMP exchange's own worst case
    resolve_timeout_s: float = 2.0


def device_plan(agent_cfg: AgentConfig, dev: DeviceConfig) -> DevicePlan:
    pings = agent_cfg.pings(dev)
    poll = agent_cfg.polling
    retries = dev.retries if dev.retries is not None else poll.retries
    timeout_s = (dev.timeout_s or poll.timeout_s) * (retries + 1)
    if dev.snmp is False:
        return DevicePlan(dev.host, None, pings, resolve_timeout_s=timeout_s)
    try:
        target = snmp_target(agent_cfg, dev)
    except (ValueError, SecretError) as exc:
        return DevicePlan(dev.host, None, pings, config_error=str(exc),
                          resolve_timeout_s=timeout_s)
    return DevicePlan(dev.host, target, pings, resolve_timeout_s=timeout_s)
