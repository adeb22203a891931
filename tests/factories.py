"""Builders of valid wire messages for tests."""

from __future__ import annotations

from datetime import UTC, datetime

from xanet import wire


def interface(index: int = 1, **kw: object) -> wire.InterfacePoll:
    base: dict[str, object] = dict(index=index, name=f"ge-0/0/{index}", oper=1, admin=1,
                                   speed_bps=1_000_000_000, hc=True, in_octets=1000 * index,
                                   out_octets=2000 * index)
    base.update(kw)
    return wire.InterfacePoll.model_validate(base)


def poll(device: str = "rtr1", ts: datetime | None = None, n_if: int = 2,
         **kw: object) -> wire.DevicePoll:
    base: dict[str, object] = dict(device=device, ts=ts or datetime.now(UTC), reachable=True,
                                   rtt_ms=3.5, uptime_cs=123456,
                                   interfaces=[interface(i) for i in range(1, n_if + 1)])
    base.update(kw)
    return wire.DevicePoll.model_validate(base)


def telemetry(seq: int = 0, site: str = "site-a", agent: str = "agent-a",
              polls: list[wire.DevicePoll] | None = None) -> wire.Telemetry:
    return wire.Telemetry(agent=agent, site=site, seq=seq, polls=polls or [poll()])


TOPIC = "xanet/v1/ha-giang/00688/site-a/telemetry"
STATUS_TOPIC = "xanet/v1/ha-giang/00688/site-a/status"
