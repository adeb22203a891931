"""``xanet check-config agent.toml inventory.toml``: the agent's devices against the
inventory, both directions; and the collector naming the devices it cannot map."""

from __future__ import annotations

import logging
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.facts import FactMapper
from collector.unmapped import UnmappedLog
from tests.factories import inv_device, inv_site, inventory_toml, poll, telemetry
from xanet.cli import main
from xanet.inventory import parse_inventory

INVENTORY = inventory_toml(
    inv_site("hub-a", agent="agt-a",
             devices=[inv_device("rtr-1", "fibre"), inv_device("olt-1", "broadband")]),
    inv_site("bts-1", role="bts", parent="hub-a", technologies=["4g"], agent="agt-a",
             devices=[inv_device("enb-1", "mobile_4g")]),
    inv_site("hub-b", role="other", agent="agt-b", devices=[inv_device("sw-1", "broadband")]),
)

AGENT = """
[agent]
id = "agt-a"
province = "08"
commune = "02266"
site = "hub-a"
[snmp]
version = "2c"
community = { env = "T_COMMUNITY" }
[[devices]]
id = "rtr-1"
host = "127.0.0.1"
[[devices]]
id = "rtr-9"
host = "127.0.0.2"
[[devices]]
id = "sw-1"
host = "127.0.0.3"
site = "hub-b"
"""


def test_cross_check_reports_both_directions(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    agent = tmp_path / "agent.toml"
    agent.write_text(AGENT)
    inv = tmp_path / "inventory.toml"
    inv.write_text(INVENTORY)
    assert main(["check-config", "--no-secrets", str(agent), str(inv)]) == 1
    out = capsys.readouterr()
    assert f"{agent}: ok" in out.out and f"{inv}: ok" in out.out  # each file alone is fine
    problems = sorted(out.err.strip().splitlines())
    assert problems == sorted([
        # in the agent, not in the inventory
        f"{agent}: devices[1] (rtr-9, site hub-a): not in {inv}: its polls count for "
        "nothing (unmapped); add it to the inventory or remove it from the agent",
        # the inventory gives hub-b to another agent
        f"{agent}: devices[2].site: {inv} says agent 'agt-b' polls site 'hub-b', not "
        "'agt-a': the collector refuses this agent's messages for it (agent_mismatch)",
        # in the inventory for this agent's sites, not in the agent
        f"{inv}: sites[0].devices[1] (hub-a/olt-1): site hub-a is polled by agent 'agt-a' "
        f"but {agent} has no device 'olt-1': its elements will stay unknown (no data)",
        f"{inv}: sites[1].devices[0] (bts-1/enb-1): site bts-1 is polled by agent 'agt-a' "
        f"but {agent} has no device 'enb-1': its elements will stay unknown (no data)",
    ])


def test_cross_check_passes_when_they_agree(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    agent = tmp_path / "agent.toml"
    agent.write_text(AGENT.split("[[devices]]")[0] + "".join(
        f'[[devices]]\nid = "{d}"\nhost = "127.0.0.1"\n{extra}\n'
        for d, extra in (("rtr-1", ""), ("olt-1", ""), ("enb-1", 'site = "bts-1"'))))
    inv = tmp_path / "inventory.toml"
    inv.write_text(INVENTORY)
    assert main(["check-config", "--no-secrets", str(agent), str(inv)]) == 0
    assert capsys.readouterr().err == ""
    # only files of one kind: nothing to cross-check
    assert main(["check-config", "--no-secrets", str(agent)]) == 0


def test_a_bootstrap_file_is_not_cross_checked_for_devices(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A box whose devices the core pushes (docs/remote-config.md) has none in its file:
    the inventory's devices are not "missing" from it (the pushed config, rendered from the
    inventory, carries them)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
    )

    pub = tmp_path / "core.pub"
    pub.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    agent = tmp_path / "bootstrap.toml"
    agent.write_text(AGENT.split("[snmp]")[0] + f"""
[remote_config]
enabled = true
public_keys = ["{pub}"]
state_dir = "{tmp_path / 'state'}"
[spool]
path = "{tmp_path / 'spool.sqlite3'}"
""")
    inv = tmp_path / "inventory.toml"
    inv.write_text(INVENTORY)
    assert main(["check-config", "--no-secrets", str(agent), str(inv)]) == 0, \
        capsys.readouterr().err
    assert capsys.readouterr().err == ""


def test_collector_names_unmapped_devices_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    inventory = parse_inventory(tomllib.loads(INVENTORY))
    mapper = FactMapper(inventory)
    log = UnmappedLog(every_s=600.0)
    ts = datetime(2026, 11, 29, tzinfo=UTC)
    msg = telemetry(agent="agt-a", site="hub-a", polls=[poll("rtr-1", ts=ts, n_if=0),
                                                         poll("rtr-9", ts=ts, n_if=0)])
    caplog.set_level(logging.WARNING, "xanet.collector.unmapped")
    for now in (0.0, 10.0, 599.0, 601.0):
        mapper.map_telemetry(msg)
        log.check(msg, mapper.counts.unmapped_devices, now)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # at 0 s and 601 s: once per device per 10 minutes
    assert warnings[0].startswith("device rtr-9 at site hub-a (agent agt-a) is not in the "
                                  "inventory: 1 poll(s)")
    assert "4 poll(s)" in warnings[1]
    assert mapper.counts.unmapped_devices == {("hub-a", "rtr-9"): 4}
    lines = log.lines(mapper.counts.unmapped_devices, "c1", 1000)
    assert lines == ["unmapped_device,collector=c1,device=rtr-9,site=hub-a polls=4i 1000"]
    assert log.lines(mapper.counts.unmapped_devices, "c1", 2000) == []  # unchanged


def test_examples_checked_together_and_an_agent_of_another_province_is_skipped(
        capsys: pytest.CaptureFixture[str]) -> None:
    """README's command: the example agent (province ha-giang) is not checked against
    the example inventory (province 08); the example inventory alone is fine."""
    root = Path(__file__).resolve().parent.parent / "config"
    assert main(["check-config", "--no-secrets", str(root / "agent.example.toml"),
                 str(root / "collector.example.toml"),
                 str(root / "inventory.example.toml")]) == 0
    assert capsys.readouterr().err == ""
