"""Interface polling is the ``if-mib`` profile (issue 17): one definition of the columns,
the ``engine`` key and its rules, what a device's profile list selects (``if-mib`` the
interfaces; a UPS with ``["ups-mib"]`` is not interface-walked), check-config's account
of it, and a real poll of each kind through snmpsim. The byte-identical wire output is
tests/test_ifmib_golden.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lab
from agent.app import Agent
from agent.config import AgentConfig
from agent.deviceplan import snmp_target
from agent.pollplan import poll_summary, polls_interfaces
from agent.profiles.load import catalog_problems, load_catalog, shipped_profile
from agent.profiles.model import Profile
from agent.profiles.select import select_profiles
from agent.snmp import SnmpPoller, SnmpTarget, SnmpV2c, oids
from agent.snmp.poller import shipped_interface_columns
from agent.snmp.table import ENGINE, engine_problems, interface_columns
from lab import SnmpSim
from tests.test_config import GOOD_AGENT
from xanet.cli import main
from xanet.config import ConfigError, load_model, parse_model

IF_MIB = shipped_profile("if-mib")

#: The interface poll before it ran on the profile (29c706b, agent/snmp/table.py COLUMNS):
#: the warning name and OID of every column, in walk order.
HAND_WRITTEN = [
    ("ifDescr", oids.IF_DESCR), ("ifSpeed", oids.IF_SPEED),
    ("ifAdminStatus", oids.IF_ADMIN_STATUS), ("ifOperStatus", oids.IF_OPER_STATUS),
    ("ifInOctets", oids.IF_IN_OCTETS), ("ifOutOctets", oids.IF_OUT_OCTETS),
    ("ifName", oids.IF_NAME), ("ifHCInOctets", oids.IF_HC_IN_OCTETS),
    ("ifHCOutOctets", oids.IF_HC_OUT_OCTETS), ("ifHighSpeed", oids.IF_HIGH_SPEED),
    ("ifCounterDiscontinuityTime", oids.IF_COUNTER_DISCONTINUITY_TIME),
    ("ifAlias", oids.IF_ALIAS),
]


# ------------------------------------------------------- one definition, the engine key

def test_the_engine_walks_the_profiles_columns_as_the_hand_written_path_did() -> None:
    columns = shipped_interface_columns()
    assert [(c.name, c.oid) for c in columns.walked] == HAND_WRITTEN
    (table,) = IF_MIB.tables
    assert [c.oid_tuple for c in table.columns] == [c.oid for c in columns.walked]
    assert [m.oid_tuple for m in IF_MIB.scalars] == [oids.SYS_UPTIME]
    assert IF_MIB.engine == "interfaces" and engine_problems(IF_MIB) == []
    assert shipped_interface_columns() is columns  # read once per process
    assert SnmpPoller().interfaces is columns


def if_mib_data(**changes: Any) -> dict[str, Any]:
    data = IF_MIB.model_dump(exclude_defaults=True)
    data.update(changes)
    return data


def test_engine_key_rules() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(if_mib_data(engine="generic"), Profile, "x.toml")
    assert info.value.problems == [
        "engine: \"interfaces\" is the if-mib profile's engine, and if-mib runs on no other "
        "(got 'generic')"]
    with pytest.raises(ConfigError) as info:
        parse_model(if_mib_data(name="my-if"), Profile, "x.toml")
    assert info.value.problems[0].startswith('engine: "interfaces" is the if-mib')
    plain = parse_model({"name": "ups", "description": "d", "scalars": [
        {"name": "a", "oid": "1.3.6.1.2.1.33.1.2.1.0", "kind": "gauge"}]}, Profile, "x.toml")
    assert plain.engine == "generic"


def test_a_profile_that_does_not_fit_the_engine_is_refused_with_its_key() -> None:
    data = if_mib_data()
    columns = data["tables"][0]["columns"]
    columns[1]["kind"] = "counter"  # speed
    columns[9]["scale"] = 1000  # high_speed
    del columns[-1]  # alias
    columns.append({"name": "mtu", "oid": "1.3.6.1.2.1.2.2.1.4", "kind": "gauge"})
    data["scalars"][0]["oid"] = "1.3.6.1.2.1.1.5.0"
    profile = parse_model(data, Profile, "x.toml")
    assert engine_problems(profile) == [
        "tables[0].columns[1].kind: 'speed' is a gauge to the interface engine (got 'counter')",
        "tables[0].columns[9].scale: 'high_speed' is scaled by 1e+06 in the interface engine "
        "(got 1000)",
        f"tables[0].columns[11].name: the interface engine reads no column 'mtu' (it reads "
        f"{', '.join(ENGINE)})",
        "tables[0].columns: the interface engine needs a column 'alias'",
        "scalars[0].oid: the interface engine reads sysUpTime (1.3.6.1.2.1.1.3.0) and no "
        "other scalar",
    ]
    with pytest.raises(ValueError, match="profile 'if-mib': tables"):
        interface_columns(profile)


def test_a_user_file_cannot_replace_if_mib(tmp_path: Path) -> None:
    text = (Path(__file__).parent.parent / "agent/profiles/shipped/if-mib.toml").read_text()
    line = '\nengine = "interfaces"\n'
    for variant in (text.replace(line, line + "override = true\n"),
                    text.replace(line, "\noverride = true\n")):
        (tmp_path / "if.toml").write_text(variant)
        catalog, problems = catalog_problems(tmp_path)
        assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'if.toml'}: ")
        assert catalog["if-mib"] == IF_MIB
    assert problems == [f"{tmp_path / 'if.toml'}: engine: \"interfaces\" is the if-mib "
                        "profile's engine, and if-mib runs on no other (got 'generic')"]
    (tmp_path / "if.toml").write_text(text.replace(line, line + "override = true\n"))
    assert catalog_problems(tmp_path)[1] == [
        f"{tmp_path / 'if.toml'}: name: 'if-mib' is the interface engine's definition and "
        "cannot be replaced; poll more IF-MIB objects in a profile of another name"]


def test_auto_never_selects_if_mib() -> None:
    catalog = load_catalog()
    chosen = select_profiles(["auto"], catalog, (1, 3, 6, 1, 4, 1, 25461, 2, 3, 7))
    assert [p.name for p in chosen] == ["paloalto-pan-common"]
    assert not IF_MIB.sys_object_ids


# ------------------------------------------------------------------ selection semantics

DEVICES = """
[[devices]]
id = "ups-1"
host = "127.0.0.2"
profiles = ["ups-mib"]
[[devices]]
id = "fw-1"
host = "127.0.0.3"
profiles = ["if-mib", "auto"]
icmp = false
[[devices]]
id = "cpe-1"
host = "127.0.0.4"
snmp = false
[[devices]]
id = "bare"
host = "127.0.0.5"
profiles = ["auto"]
"""


def agent_cfg(tmp_path: Path, text: str = GOOD_AGENT + DEVICES) -> AgentConfig:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return load_model(path, AgentConfig)


def test_the_profile_list_names_everything_polled(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_COMMUNITY", "public")
    cfg = agent_cfg(tmp_path)
    assert cfg.profiles.default == ["if-mib"]  # every existing config polls what it did
    assert [polls_interfaces(cfg, d) for d in cfg.devices] == [True, False, True, False,
                                                                False]
    snmp = [d for d in cfg.devices if d.snmp is not False]
    assert [snmp_target(cfg, d).interfaces for d in snmp] == [True, False, True, False]
    assert poll_summary(cfg) == [
        "1 device (d1) polls sysUpTime, interfaces (if-mib); ICMP echo",
        "1 device (ups-1) polls sysUpTime, ups-mib; ICMP echo",
        "1 device (fw-1) polls sysUpTime, interfaces (if-mib), profiles by sysObjectID (auto)",
        "1 device (cpe-1) polls ICMP echo only (snmp = false)",
        "1 device (bare) polls sysUpTime, profiles by sysObjectID (auto); ICMP echo",
    ]
    cfg = agent_cfg(tmp_path, GOOD_AGENT + '[profiles]\ndefault = ["ups-mib"]\n')
    assert not polls_interfaces(cfg, cfg.devices[0])


def test_check_config_says_what_each_device_polls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD_AGENT + "".join(f'[[devices]]\nid = "r{i}"\nhost = "10.0.0.{i}"\n'
                                         for i in range(6)) + DEVICES)
    assert main(["check-config", "--no-secrets", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: ok",
        f"{path}: 7 devices (d1, r0, r1, r2, ...) poll sysUpTime, interfaces (if-mib); "
        "ICMP echo",
        f"{path}: 1 device (ups-1) polls sysUpTime, ups-mib; ICMP echo",
        f"{path}: 1 device (fw-1) polls sysUpTime, interfaces (if-mib), profiles by "
        "sysObjectID (auto)",
        f"{path}: 1 device (cpe-1) polls ICMP echo only (snmp = false)",
        f"{path}: 1 device (bare) polls sysUpTime, profiles by sysObjectID (auto); ICMP echo",
    ]
    # a ping-only device naming if-mib is an error, with its key, as any profile is
    path.write_text(GOOD_AGENT + '[[devices]]\nid = "cpe"\nhost = "10.0.0.9"\nsnmp = false\n'
                    'profiles = ["if-mib"]\n')
    assert main(["check-config", "--no-secrets", str(path)]) == 1
    assert ("devices[1].profiles: a ping-only device (snmp = false) has no profiles to poll"
            in capsys.readouterr().err)


# --------------------------------------------------------------- real polls, snmpsim

@pytest.mark.integration
async def test_a_ups_is_not_interface_walked(
    make_snmpsim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EAST iStars UPS and the vyatta router on one snmpsim: the router (default
    profiles) gets its 24 interfaces, the UPS (``["ups-mib"]``) one GET of sysUpTime."""
    sim: SnmpSim = make_snmpsim({
        "ups": lab.SNMPSIM_DATA_DIR / "UPS/eastpower-istars-swv053.snmprec.bz2",
        "rtr": lab.RECORDING_IFX})
    monkeypatch.setenv("T_COMMUNITY", "rtr")
    monkeypatch.setenv("T_UPS", "ups")
    cfg = agent_cfg(tmp_path, GOOD_AGENT.replace('"127.0.0.1"', f'"127.0.0.1"\nport = '
                                                 f"{sim.port}") + f"""
[[devices]]
id = "ups-1"
host = "127.0.0.1"
port = {sim.port}
icmp = false
profiles = ["ups-mib"]
snmp = {{ version = "2c", community = {{ env = "T_UPS" }} }}
[spool]
path = "{tmp_path / 'spool.sqlite3'}"
fsync = "off"
[icmp]
enabled = false
""")
    exchanges: list[tuple[str, tuple[int, ...]]] = []
    agent = Agent(cfg)
    poller = agent.poller
    assert isinstance(poller, SnmpPoller)
    real = poller.backend

    def counting(target: SnmpTarget) -> Any:
        backend = real(target)
        exchange = backend.exchange

        async def spy(t: SnmpTarget, request: Any, *rest: Any) -> Any:
            exchanges.append((t.device, request[0]))
            return await exchange(t, request, *rest)

        class Spy:
            def __getattr__(self, name: str) -> Any:
                return spy if name == "exchange" else getattr(backend, name)
        return Spy()

    monkeypatch.setattr(poller, "backend", counting)
    try:
        router, ups = [await agent.poll_device(d) for d in cfg.devices]
    finally:
        poller.close()
        agent.spool.close()
    assert router.reachable and len(router.interfaces) == 24
    assert ups.reachable and ups.interfaces == [] and ups.uptime_cs
    ups_exchanges = [oid for device, oid in exchanges if device.endswith("/" + ups.device)]
    router_exchanges = [oid for device, oid in exchanges if device.endswith("/" + router.device)]
    # sysUpTime, then its ups-mib profile (polled with the device's poll): no interface walk
    assert ups_exchanges[0] == oids.SYS_UPTIME
    if_mib = ((1, 3, 6, 1, 2, 1, 2, 2), (1, 3, 6, 1, 2, 1, 31, 1, 1))
    assert not [oid for oid in ups_exchanges if oid[:8] in if_mib or oid[:9] in if_mib]
    assert all(oid[:7] == (1, 3, 6, 1, 2, 1, 33) for oid in ups_exchanges[1:])  # UPS-MIB
    assert len(router_exchanges) > 2  # the router's uptime GET and its walk
    assert any(oid[:8] == if_mib[0] for oid in router_exchanges)


def test_snmp_target_default_walks_interfaces() -> None:
    assert SnmpTarget(device="d", host="h", credentials=SnmpV2c("c")).interfaces
