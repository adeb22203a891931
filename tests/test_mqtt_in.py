"""collector.mqtt_in without a broker: the drain on a clean stop waits on an Event (no
polling) until what was handled is acknowledged, bounded by its timeout. The broker side
(manual acks, the bounded inbox, reconnects) is in tests/test_inbox.py,
tests/test_reconnect.py and tests/test_delivery.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from collector.acks import AckQueue
from collector.config import CollectorConfig
from collector.mqtt_in import MqttIn


def _mqtt_in(tmp_path: Path) -> MqttIn:
    cfg = CollectorConfig.model_validate({"ingest": {"dead_letter_dir": str(tmp_path)}})
    return MqttIn(cfg, AckQueue())


def test_drain_returns_as_soon_as_the_last_message_is_settled(tmp_path: Path) -> None:
    async def scenario() -> tuple[float, int, int]:
        mqtt = _mqtt_in(tmp_path)
        tickets = [mqtt.received(mid, 1) for mid in (1, 2)]
        flushes = []
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, mqtt.settle, tickets[1])  # out of order: nothing acked yet
        loop.call_later(0.10, mqtt.settle, tickets[0])  # now both
        t0 = time.monotonic()
        await mqtt.drain(lambda: flushes.append(1), timeout_s=5.0)
        return time.monotonic() - t0, mqtt.acks.unacked, len(flushes)

    waited, unacked, flushes = asyncio.run(scenario())
    assert unacked == 0 and flushes == 1
    assert 0.09 <= waited < 1.0  # woken by the last settle, not by the timeout


def test_drain_gives_up_at_its_timeout(tmp_path: Path) -> None:
    async def scenario() -> tuple[float, int]:
        mqtt = _mqtt_in(tmp_path)
        mqtt.received(1, 1)
        t0 = time.monotonic()
        await mqtt.drain(lambda: None, timeout_s=0.2)
        return time.monotonic() - t0, mqtt.acks.unacked

    waited, unacked = asyncio.run(scenario())
    assert unacked == 1 and 0.2 <= waited < 1.0


def test_drain_with_nothing_unacknowledged_does_not_wait(tmp_path: Path) -> None:
    async def scenario() -> float:
        mqtt = _mqtt_in(tmp_path)
        t0 = time.monotonic()
        await mqtt.drain(lambda: None, timeout_s=5.0)
        return time.monotonic() - t0

    assert asyncio.run(scenario()) < 0.1
