"""What an agent process loads: nothing of the collector, its HTTP stack, the inventory or
pysnmp for v2c devices (the agent runs on small boxes; RSS goal in BENCHMARKS.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_config import GOOD_AGENT

ROOT = Path(__file__).resolve().parent.parent

CONFIG = GOOD_AGENT  # a minimal v2c agent


# `xanet agent --config FILE` up to the point where the event loop would start.
PROBE = """
import sys
import xanet.cli as cli
cli.run_until_signalled = lambda main: None
assert cli.main(["agent", "--config", sys.argv[1]]) == 0
import aiomqtt, agent.app
print(" ".join(sorted(sys.modules)))
"""


def test_xanet_agent_loads_no_collector_http_inventory_or_pysnmp(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG)
    out = subprocess.run([sys.executable, "-c", PROBE, str(config)], capture_output=True,
                         text=True, check=True, cwd=ROOT,
                         env={**os.environ, "T_COMMUNITY": "public"}).stdout.split()
    loaded = {name.split(".")[0] for name in out} | set(out)
    assert {"agent.app", "agent.config", "aiomqtt"} <= loaded
    for unwanted in ("collector", "httpx", "httpcore", "influxdb_client", "xanet.inventory",
                     "pysnmp", "pyasn1", "agent.snmp.lean_v3", "agent.snmp.usm", "cryptography"):
        assert unwanted not in loaded, f"`xanet agent` imports {unwanted}"
