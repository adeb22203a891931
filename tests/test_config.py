from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import AgentConfig
from collector.config import CollectorConfig
from xanet.cli import check_file, main
from xanet.config import ConfigError, Secret, SecretError, load_model

ROOT = Path(__file__).resolve().parent.parent
GOOD_AGENT = """
[agent]
id = "a1"
province = "hg"
commune = "00688"
site = "s1"
[snmp]
version = "2c"
community = { env = "T_COMMUNITY" }
[[devices]]
id = "d1"
host = "127.0.0.1"
"""


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_agent(tmp_path: Path) -> None:
    cfg = load_model(write(tmp_path, GOOD_AGENT), AgentConfig)
    assert cfg.devices[0].port == 161 and cfg.polling.interval_s == 60


def test_every_problem_reported_with_file_and_key(tmp_path: Path) -> None:
    bad = GOOD_AGENT.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nport = 70000\ncolour = 1')
    bad = bad.replace('[agent]', '[agent]\nintervall = 5').replace('site = "s1"', 'site = "a/b"')
    with pytest.raises(ConfigError) as info:
        load_model(write(tmp_path, bad), AgentConfig)
    text = str(info.value)
    for needle in ("devices[0].port", "devices[0].colour: unknown key", "agent.intervall",
                   "agent.site"):
        assert needle in text
    assert all(line.startswith(str(tmp_path / "agent.toml")) for line in text.splitlines())
    assert len(info.value.problems) == 4


def test_inline_secret_refused(tmp_path: Path) -> None:
    bad = GOOD_AGENT.replace('community = { env = "T_COMMUNITY" }', 'community = "public"')
    with pytest.raises(ConfigError, match="snmp"):
        load_model(write(tmp_path, bad), AgentConfig)


def test_toml_syntax_error_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.toml: not valid TOML.*line"):
        load_model(write(tmp_path, "[agent\n"), AgentConfig)


def test_secret_sources(tmp_path: Path) -> None:
    assert Secret(env="X").reveal({"X": "v"}) == "v"
    with pytest.raises(SecretError, match="X is not set"):
        Secret(env="X").reveal({})
    f = tmp_path / "s"
    f.write_text("fake-secret\n")
    f.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        Secret(file=f).reveal()
    f.chmod(0o600)
    assert Secret(file=f).reveal() == "fake-secret"
    with pytest.raises(ValueError):
        Secret()


def test_v3_needs_priv_key(tmp_path: Path) -> None:
    text = GOOD_AGENT.replace('version = "2c"\ncommunity = { env = "T_COMMUNITY" }',
                              'version = "3"\nuser = "u"\nauth_key = { env = "K" }')
    # the message names the key and the way out (authNoPriv)
    with pytest.raises(ConfigError, match=r"snmp\.priv_key: required for security_level = "
                       r'"authPriv" \(the default\); write security_level = "authNoPriv"'):
        load_model(write(tmp_path, text), AgentConfig)


def test_collector_v2_needs_token(tmp_path: Path) -> None:
    p = write(tmp_path, '[influx]\napi = "v2"\norg = "o"\nbucket = "b"\n', "c.toml")
    with pytest.raises(ConfigError, match="needs token"):
        load_model(p, CollectorConfig)


def test_check_config_examples() -> None:
    for name in ("agent.example.toml", "collector.example.toml", "inventory.example.toml",
                 "agent.bootstrap.example.toml"):
        assert check_file(ROOT / "config" / name, secrets=False) == []


def test_check_config_reads_the_secrets_the_examples_point_at(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XANET_SNMP_AUTH_KEY", "XANET_SNMP_PRIV_KEY", "XANET_SNMP_COMMUNITY"):
        monkeypatch.setenv(var, "fake-value")
    monkeypatch.delenv("XANET_MQTT_PASSWORD", raising=False)
    # files=False: the examples' TLS files exist only on a deployed box (tested apart)
    problems = check_file(ROOT / "config" / "agent.example.toml", files=False)
    assert len(problems) == 1 and "mqtt.password: secret file /etc/xanet/mqtt.password" in (
        problems[0])
    (problem,) = check_file(ROOT / "config" / "collector.example.toml", files=False)
    assert "mqtt.password: environment variable XANET_MQTT_PASSWORD is not set" in problem


def test_check_config_cli_reports_all_files(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, GOOD_AGENT.replace("[[devices]]", "[[devices]]\nbogus = 1"), "a.toml")
    b = write(tmp_path, "[influx]\napi = \"v3\"\n", "b.toml")
    c = write(tmp_path, "hello = 1\n", "c.toml")
    assert main(["check-config", "--no-secrets", str(a), str(b), str(c)]) == 1
    err = capsys.readouterr().err
    assert "a.toml: devices[0].bogus: unknown key" in err
    assert "b.toml: influx.api" in err
    assert "c.toml: cannot tell what this file is" in err


def test_device_ids_are_unique_per_site(tmp_path: Path) -> None:
    two_sites = GOOD_AGENT + '[[devices]]\nid = "d1"\nhost = "127.0.0.1"\nsite = "s2"\n'
    cfg = load_model(write(tmp_path, two_sites), AgentConfig)
    assert [(d.site, d.id) for d in cfg.devices] == [(None, "d1"), ("s2", "d1")]
    same_site = GOOD_AGENT + '[[devices]]\nid = "d1"\nhost = "127.0.0.2"\n'
    with pytest.raises(ConfigError, match="duplicate device 'd1' at site 's1'"):
        load_model(write(tmp_path, same_site), AgentConfig)


def test_reference_names_the_device_id_rightly() -> None:
    from xanet.configdoc import render

    text = render()
    devices = text.split("[[devices]]", 1)[1]
    assert "device id, unique per site" in devices.split("\n### ", 1)[0]
    assert "unique agent id" not in devices.split("\n### ", 1)[0]
    assert "security_level" in text and "authNoPriv" in text


def test_agent_cross_problems_one_line_each_with_key_paths(tmp_path: Path) -> None:
    text = GOOD_AGENT.replace('[snmp]\nversion = "2c"\ncommunity = { env = "T_COMMUNITY" }\n', "")
    text += '[[devices]]\nid = "d1"\nhost = "127.0.0.2"\n'
    with pytest.raises(ConfigError) as info:
        load_model(write(tmp_path, text), AgentConfig)
    assert info.value.problems == [
        "devices[0].snmp: no credentials here and no [snmp] default (snmp = false makes it a "
        "ping-only device)",
        "devices[1].id: duplicate device 'd1' at site 's1'",
        "devices[1].snmp: no credentials here and no [snmp] default (snmp = false makes it a "
        "ping-only device)",
    ]


def test_key_paths_are_what_the_file_says(tmp_path: Path) -> None:
    """No union tag (``snmp.3.``) nor pydantic member name in a key path; one problem per
    mistake (a table is not also reported as 'not false')."""
    text = GOOD_AGENT.replace('[[devices]]\nid = "d1"\nhost = "127.0.0.1"\n', "") + (
        '[[devices]]\nid = "d1"\nhost = "127.0.0.1"\n'
        'snmp = { version = "3", user = "u", auth_key = { env = "A" }, bogus = 1 }\n'
        '[[devices]]\nid = "d2"\nhost = "127.0.0.1"\nsnmp = { version = "4" }\n'
        '[[devices]]\nid = "d3"\nhost = "127.0.0.1"\nsnmp = true\n'
        '[[devices]]\nid = "d4"\nhost = "127.0.0.1"\nsnmp = false\n')
    with pytest.raises(ConfigError) as info:
        load_model(write(tmp_path, text), AgentConfig)
    assert info.value.problems == [
        "devices[0].snmp.bogus: unknown key (typo, or not valid here)",
        'devices[1].snmp: a table with version = "2c" or version = "3", or false (a ping-only '
        "device)",
        'devices[2].snmp: a table with version = "2c" or version = "3", or false (a ping-only '
        "device) (got True)",
    ]
