"""Every credential, TLS, spool and host mistake is caught by ``xanet check-config`` with
file, key and reason, and ``xanet agent`` / ``xanet collector`` started with it exit with
the same message and no traceback (issue 16: one config model, validated once)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config import AgentConfig, credentials_from
from agent.credentials import MIN_KEY_CHARS, SnmpV3
from xanet.cli import check_file, main
from xanet.config import ConfigError, host_problem, load_model
from xanet.preflight import pem_file_problem, writable_file_problem

ROOT = Path(__file__).resolve().parent.parent

AGENT = """
[agent]
id = "a1"
province = "hg"
commune = "00688"
site = "s1"
[mqtt]
host = "127.0.0.1"
{mqtt}
[spool]
path = "{spool}"
[snmp]
{snmp}
[[devices]]
id = "d1"
host = "{device_host}"
"""
V2C = 'version = "2c"\ncommunity = { env = "T_PF_COMMUNITY" }'
V3 = 'version = "3"\nuser = "u"\nauth_key = { env = "T_PF_AUTH" }\npriv_key = { env = "T_PF_PRIV" }'
ENV = {"T_PF_COMMUNITY": "public-ish", "T_PF_AUTH": "auth-key-1", "T_PF_PRIV": "priv-key-1"}


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@dataclass(frozen=True)
class Pem:
    ca: Path
    cert: Path
    key: Path
    other_key: Path
    encrypted_key: Path


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Pem:
    d = tmp_path_factory.mktemp("pem")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.crt",
             "-days", "2", "-subj", "/CN=test-ca")
    _openssl("req", "-new", *ec, "-keyout", d / "agent.key", "-out", d / "agent.csr",
             "-subj", "/CN=agent")
    _openssl("x509", "-req", "-in", d / "agent.csr", "-CA", d / "ca.crt", "-CAkey",
             d / "ca.key", "-CAcreateserial", "-out", d / "agent.crt", "-days", "2")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", d / "other.key")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-aes256", "-pass", "pass:secret-pass", "-out", d / "encrypted.key")
    return Pem(d / "ca.crt", d / "agent.crt", d / "agent.key", d / "other.key",
               d / "encrypted.key")


def agent_text(tmp_path: Path, *, mqtt: str = "", snmp: str = V2C,
               spool: Path | None = None, device_host: str = "127.0.0.1") -> str:
    return AGENT.format(mqtt=mqtt, snmp=snmp, spool=spool or tmp_path / "spool" / "s.sqlite3",
                        device_host=device_host)


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return dict(ENV)


def tls(pem: Pem, **files: Path | str) -> str:
    paths = {"ca_file": pem.ca, **files}
    return "tls = true\n" + "".join(f'{k} = "{v}"\n' for k, v in paths.items())


# -- SNMPv3: security level and key rules ----------------------------------------------------


def test_security_level_default_is_authpriv_and_old_files_read_so(tmp_path: Path,
                                                                   env: dict[str, str]) -> None:
    cfg = load_model(write(tmp_path, agent_text(tmp_path, snmp=V3)), AgentConfig)
    assert cfg.snmp is not None and cfg.snmp.version == "3"
    assert cfg.snmp.security_level == "authPriv"
    creds = credentials_from(cfg.snmp)
    assert isinstance(creds, SnmpV3)
    assert (creds.priv_key, creds.priv_protocol, creds.security_level) == (
        "priv-key-1", "AES", "authPriv")


def test_auth_no_priv_is_expressible_in_toml(tmp_path: Path, env: dict[str, str]) -> None:
    text = ('version = "3"\nuser = "u"\nsecurity_level = "authNoPriv"\n'
            'auth_key = { env = "T_PF_AUTH" }')
    cfg = load_model(write(tmp_path, agent_text(tmp_path, snmp=text)), AgentConfig)
    assert cfg.snmp is not None and cfg.snmp.version == "3"
    creds = credentials_from(cfg.snmp)
    assert isinstance(creds, SnmpV3)
    assert (creds.priv_key, creds.priv_protocol, creds.security_level) == (
        None, None, "authNoPriv")
    assert check_file(write(tmp_path, agent_text(tmp_path, snmp=text))) == []


@pytest.mark.parametrize("extra,key", [('priv_key = { env = "T_PF_PRIV" }', "priv_key"),
                                       ('priv_protocol = "AES256"', "priv_protocol")])
def test_auth_no_priv_refuses_priv_settings(tmp_path: Path, extra: str, key: str) -> None:
    text = f'version = "3"\nuser = "u"\nsecurity_level = "authNoPriv"\n' \
           f'auth_key = {{ env = "T_PF_AUTH" }}\n{extra}'
    with pytest.raises(ConfigError, match=rf'snmp\.{key}: not used with security_level = '
                       '"authNoPriv"'):
        load_model(write(tmp_path, agent_text(tmp_path, snmp=text)), AgentConfig)


def test_user_length_is_the_credentials_rule(tmp_path: Path) -> None:
    text = V3.replace('user = "u"', f'user = "{"u" * 33}"')
    with pytest.raises(ConfigError, match=r"snmp\.user: SNMPv3 user name has 1 to 32"):
        load_model(write(tmp_path, agent_text(tmp_path, snmp=text)), AgentConfig)
    with pytest.raises(ValueError, match="1 to 32"):
        SnmpV3("u" * 33, "auth-key-1", None, priv_protocol=None)


@pytest.mark.parametrize("var,key", [("T_PF_AUTH", "auth_key"), ("T_PF_PRIV", "priv_key")])
def test_short_key_from_env_is_a_check_config_error(tmp_path: Path, env: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    var: str, key: str) -> None:
    short = "x" * (MIN_KEY_CHARS - 3)
    monkeypatch.setenv(var, short)
    path = write(tmp_path, agent_text(tmp_path, snmp=V3))
    (problem,) = check_file(path)
    assert problem == (f"{path}: snmp.{key}: SNMPv3 user 'u': {key.split('_')[0]} key shorter "
                       f"than {MIN_KEY_CHARS} characters (5), from environment variable {var}")
    # the credential object refuses the same key with the same words
    cfg = load_model(path, AgentConfig)
    assert cfg.snmp is not None and cfg.snmp is not False
    with pytest.raises(ValueError, match=f"{key.split('_')[0]} key shorter than {MIN_KEY_CHARS}"):
        credentials_from(cfg.snmp)


def test_short_key_from_a_file_per_device(tmp_path: Path, env: dict[str, str]) -> None:
    secret = tmp_path / "auth"
    secret.write_text("12345\n")
    secret.chmod(0o600)
    text = agent_text(tmp_path) + (
        f'snmp = {{ version = "3", user = "v", security_level = "authNoPriv", '
        f'auth_key = {{ file = "{secret}" }} }}\n')
    (problem,) = check_file(write(tmp_path, text))
    assert "devices[0].snmp.auth_key: SNMPv3 user 'v': auth key shorter than 8" in problem
    assert f"from file {secret}" in problem


def test_unreadable_secret_is_one_clear_problem(tmp_path: Path, env: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_PF_AUTH")
    path = write(tmp_path, agent_text(tmp_path, snmp=V3))
    assert check_file(path) == [
        f"{path}: snmp.auth_key: environment variable T_PF_AUTH is not set (or empty)"]


# -- host names: syntax only, never a look-up -------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "fe80::1%eth0", "mosquitto",
                                  "mqtt.tq.example.vn", "mqtt.tq.example.vn.", "a" * 63,
                                  "rtr-1.hub-02269"])
def test_valid_hosts(host: str) -> None:
    assert host_problem(host) is None


@pytest.mark.parametrize("host", ["", "a b", "under_score.vn", "-lead.vn", "trail-.vn",
                                  "a..b", "300.1.1.1", "1.2.3", "http://x", "a" * 64,
                                  "x." * 127 + "x", "host:1883"])
def test_invalid_hosts(host: str) -> None:
    assert host_problem(host) is not None


@given(st.ip_addresses())
def test_every_ip_literal_is_a_host(address: object) -> None:
    assert host_problem(str(address)) is None


@given(st.text(min_size=1, max_size=80))
def test_a_host_is_never_more_than_its_grammar(text: str) -> None:
    if host_problem(text) is None:  # an IP literal, or labels of [A-Za-z0-9-] and '.'
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:%")
        assert set(text) <= allowed or "%" in text  # an IPv6 zone id may hold more


def test_bad_hosts_are_config_errors(tmp_path: Path) -> None:
    text = agent_text(tmp_path, device_host="rtr_1.site").replace(
        'host = "127.0.0.1"', 'host = "broker..vn"', 1)
    with pytest.raises(ConfigError) as info:
        load_model(write(tmp_path, text), AgentConfig)
    assert [p.split(":")[0] for p in info.value.problems] == ["mqtt.host", "devices[0].host"]
    assert all("(got '" in p for p in info.value.problems)


# -- TLS files ---------------------------------------------------------------------------------


def test_good_tls_files_pass(tmp_path: Path, env: dict[str, str], pem: Pem) -> None:
    mqtt = tls(pem, cert_file=pem.cert, key_file=pem.key)
    assert check_file(write(tmp_path, agent_text(tmp_path, mqtt=mqtt))) == []


def test_pem_checks(tmp_path: Path, pem: Pem) -> None:
    assert pem_file_problem(pem.ca, "ca") is None
    assert pem_file_problem(pem.cert, "cert") is None
    assert pem_file_problem(pem.key, "key") is None
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                       "-----END CERTIFICATE-----\n")
    assert "not a usable PEM CA bundle" in str(pem_file_problem(garbage, "ca"))
    assert "not a PEM private key" in str(pem_file_problem(pem.cert, "key"))
    assert "not a PEM certificate" in str(pem_file_problem(pem.key, "cert"))
    assert "encrypted private key" in str(pem_file_problem(pem.encrypted_key, "key"))
    assert "cannot read: No such file" in str(pem_file_problem(tmp_path / "absent", "ca"))


def test_every_tls_problem_at_once(tmp_path: Path, env: dict[str, str], pem: Pem) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    mqtt = tls(pem, ca_file=tmp_path / "absent-ca.crt", cert_file=not_pem, key_file=pem.cert)
    path = write(tmp_path, agent_text(tmp_path, mqtt=mqtt))
    problems = check_file(path)
    assert [p.removeprefix(f"{path}: ").split(":")[0] for p in problems] == [
        "mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file"]
    assert "absent-ca.crt: cannot read: No such file or directory" in problems[0]
    assert "not a PEM certificate" in problems[1]
    assert "not a PEM private key" in problems[2]
    # the text alone (--no-secrets) does not look at this machine
    assert check_file(path, secrets=False) == []


def test_key_that_does_not_match_the_certificate(tmp_path: Path, env: dict[str, str],
                                                 pem: Pem) -> None:
    mqtt = tls(pem, cert_file=pem.cert, key_file=pem.other_key)
    (problem,) = check_file(write(tmp_path, agent_text(tmp_path, mqtt=mqtt)))
    assert "mqtt.key_file:" in problem and "does the key match the certificate?" in problem


# -- the spool ---------------------------------------------------------------------------------


def test_spool_that_can_be_created(tmp_path: Path) -> None:
    assert writable_file_problem(tmp_path / "a" / "b" / "spool.sqlite3") is None
    assert not (tmp_path / "a").exists()  # nothing created


def test_spool_under_a_file(tmp_path: Path, env: dict[str, str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    path = write(tmp_path, agent_text(tmp_path, spool=blocker / "spool.sqlite3"))
    (problem,) = check_file(path)
    assert problem == f"{path}: spool.path: {blocker}/spool.sqlite3: {blocker} is not a directory"
    (problem,) = check_file(write(tmp_path, agent_text(tmp_path, spool=tmp_path)))
    assert "spool.path:" in problem and "is a directory, not a file" in problem


@pytest.mark.skipif(os.getuid() == 0, reason="root may write anywhere")
def test_spool_in_a_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert "not writable by this user" in str(writable_file_problem(ro / "x" / "s.sqlite3"))


# -- the programs refuse the same, with the same message and no traceback ---------------------


def run(kind: str, config: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xanet.cli", kind, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **environ})


def _mistakes(tmp_path: Path, pem: Pem) -> dict[str, tuple[str, dict[str, str], str]]:
    """name -> (agent config text, environment, the reason the message must name)."""
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    auth_file = tmp_path / "auth"
    auth_file.write_text("12345\n")
    auth_file.chmod(0o600)
    short_file_snmp = V3.replace('{ env = "T_PF_AUTH" }', f'{{ file = "{auth_file}" }}')
    return {
        "short auth key (env)": (agent_text(tmp_path, snmp=V3), {"T_PF_AUTH": "12345"},
                                 "snmp.auth_key: SNMPv3 user 'u': auth key shorter than 8"),
        "short priv key (env)": (agent_text(tmp_path, snmp=V3), {"T_PF_PRIV": "1234567"},
                                 "snmp.priv_key: SNMPv3 user 'u': priv key shorter than 8"),
        "short auth key (file)": (agent_text(tmp_path, snmp=short_file_snmp), {},
                                  f"snmp.auth_key: SNMPv3 user 'u': auth key shorter than 8 "
                                  f"characters (5), from file {auth_file}"),
        "unset secret": (agent_text(tmp_path, snmp=V3), {"T_PF_AUTH": ""},
                         "snmp.auth_key: environment variable T_PF_AUTH is not set"),
        "missing ca": (agent_text(tmp_path, mqtt=tls(pem, ca_file=tmp_path / "no-ca.crt")), {},
                       f"mqtt.ca_file: {tmp_path}/no-ca.crt: cannot read: No such file"),
        "ca not pem": (agent_text(tmp_path, mqtt=tls(pem, ca_file=not_pem)), {},
                       f"mqtt.ca_file: {not_pem}: not a PEM CA certificate"),
        "cert not pem": (agent_text(tmp_path, mqtt=tls(pem, cert_file=not_pem,
                                                      key_file=pem.key)), {},
                         f"mqtt.cert_file: {not_pem}: not a PEM certificate"),
        "key not pem": (agent_text(tmp_path, mqtt=tls(pem, cert_file=pem.cert,
                                                     key_file=pem.ca)), {},
                        f"mqtt.key_file: {pem.ca}: not a PEM private key"),
        "missing key": (agent_text(tmp_path, mqtt=tls(pem, cert_file=pem.cert,
                                                     key_file=tmp_path / "no.key")), {},
                        f"mqtt.key_file: {tmp_path}/no.key: cannot read"),
        "spool cannot be created": (agent_text(tmp_path, spool=blocker / "s.sqlite3"), {},
                                    f"spool.path: {blocker}/s.sqlite3: {blocker} is not a "
                                    "directory"),
        "bad broker host": (agent_text(tmp_path).replace('host = "127.0.0.1"',
                                                         'host = "broker_1..vn"', 1), {},
                            "mqtt.host: not an IP address or a host name"),
        "bad device host": (agent_text(tmp_path, device_host="300.1.2.3"), {},
                            "devices[0].host: not a valid IPv4 address"),
    }


MISTAKES = ["short auth key (env)", "short priv key (env)", "short auth key (file)",
            "unset secret", "missing ca", "ca not pem", "cert not pem", "key not pem",
            "missing key", "spool cannot be created", "bad broker host", "bad device host"]


@pytest.mark.parametrize("mistake", MISTAKES)
def test_agent_start_refuses_what_check_config_reports(tmp_path: Path, pem: Pem,
                                                       mistake: str,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    text, environ, reason = _mistakes(tmp_path, pem)[mistake]
    config = write(tmp_path, text)
    environ = {**ENV, **environ}
    started = run("agent", config, environ)
    assert started.returncode == 2, started.stderr
    assert "Traceback" not in started.stderr
    assert f"{config}: {reason}" in started.stderr
    # check-config says the same, line for line
    checked = subprocess.run([sys.executable, "-m", "xanet.cli", "check-config", str(config)],
                             capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env={**os.environ, **environ})
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert checked.stderr.splitlines() == started.stderr.splitlines()


def test_collector_start_refuses_bad_tls_files(tmp_path: Path, pem: Pem) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    config = write(tmp_path, f'[collector]\nid = "c1"\n[mqtt]\ntls = true\n'
                   f'ca_file = "{not_pem}"\ncert_file = "{pem.cert}"\n'
                   f'key_file = "{tmp_path / "gone.key"}"\n', "collector.toml")
    started = run("collector", config, {})
    assert started.returncode == 2, started.stderr
    assert "Traceback" not in started.stderr
    assert started.stderr.splitlines() == [
        f"{config}: mqtt.ca_file: {not_pem}: not a PEM CA certificate (no BEGIN CERTIFICATE "
        "block)",
        f"{config}: mqtt.key_file: {tmp_path}/gone.key: cannot read: No such file or directory",
    ]
    assert main(["check-config", str(config)]) == 1


def test_collector_start_refuses_a_bad_inventory_without_traceback(tmp_path: Path) -> None:
    inventory = write(tmp_path, '[province]\ncode = "08"\nname = "X"\n[[communes]]\n'
                      'code = "A"\nname = "x"\n', "inventory.toml")
    config = write(tmp_path, f'[collector]\nid = "c1"\n[mqtt]\nport = 1\n'
                   f'[influx]\nurl = "http://127.0.0.1:1"\n'
                   f'[inventory]\npath = "{inventory}"\n', "collector.toml")
    started = run("collector", config, {})
    assert started.returncode == 2, started.stderr
    assert "Traceback" not in started.stderr
    assert f"{inventory}: communes[0].code: not a valid id" in started.stderr
