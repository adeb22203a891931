"""The country's load generator (lab/countryload.py) publishes what the collector accepts:
every message through a real broker, then through the collector's admission, guards,
sequence tracker and inventory mapping with the partition's inventory (lab/country.py).
The rate and the K-collector run are bench/country.py's (its smoke run is in
tests/test_bench_smoke.py)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.app import Collector
from collector.config import CollectorConfig
from lab import Mosquitto
from lab.country import country, partition_inventory
from lab.countryload import Generator
from xanet.inventory import load_inventory

pytestmark = pytest.mark.integration

PROVINCES = ["08", "79"]
DEVICES = 1811  # the template's 1,810 devices and one extra BTS


class ListWriter:
    """The sink's port, keeping the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    async def close(self) -> None:
        return None


def test_generated_messages_are_accepted(make_mosquitto: Callable[..., Mosquitto],
                                         tmp_path: Path) -> None:
    broker = make_mosquitto()  # its own: the statuses are retained
    received = tmp_path / "received"
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-v",
         "-t", "xanet/v1/#", "-W", "20"], stdout=received.open("wb"))
    time.sleep(0.5)  # subscribed
    gen = Generator(country(PROVINCES, DEVICES), "127.0.0.1", broker.port, interval_s=10.0,
                    connections=2)
    report = gen.run(lambda: False, seconds=3.0)
    time.sleep(0.5)
    sub.terminate()
    sub.wait(10)
    messages = [ln.split(b" ", 1) for ln in received.read_bytes().splitlines() if ln]
    published = sum(report["published"].values())
    # 2 x 1,812 polls / 10 s + 2 x 396 statuses / 10 s + 2 probes/s, for 3 s
    assert 1200 < published < 1500, report
    assert report["acked"] == published and report["unacked"] == 0
    assert report["late_max_s"] < 0.5 and report["shortfall"] < 20  # kept its schedule
    assert len(messages) == published

    inv_path = tmp_path / "inventory.toml"
    inv_path.write_text(partition_inventory(PROVINCES, DEVICES, "part-1"))
    inventory = load_inventory(inv_path)
    cfg = CollectorConfig.model_validate({
        "collector": {"id": "countryload-test"},
        "partition": {"provinces": PROVINCES},
        "ingest": {"dead_letter_dir": str(tmp_path / "dead-letter")},
        "inventory": {"path": str(inv_path)}})
    writer = ListWriter()
    collector = Collector(cfg, writer=writer, inventory=inventory)

    async def feed() -> None:
        for topic, payload in messages:
            await collector.handle(topic.decode(), payload)

    asyncio.run(feed())
    stats = collector.stats()
    assert stats["received"] == published
    assert stats["rejected"] == 0, collector.rejected
    assert stats["accepted"] == published
    assert stats["polls"] == report["published"]["telemetry"] + report["published"]["probe"]
    assert stats["polls_unmapped"] == 0 and stats["interfaces_missing"] == 0
    assert stats["duplicates"] == 0 and stats["seq_gaps"] == 0
    assert stats.get("facts_accepted", 0) > 0  # the availability engine took them
    assert not +collector.guard.counts  # no duplicate agent, clock skew or series flood
