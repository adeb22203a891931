"""Pushed configs, pure: the signed envelope (xanet/signedconfig.py), what the agent
decides of it (agent/remoteconfig.py), its state on disk (agent/configstore.py), key
rotation, and ``xanet keys`` / ``xanet config publish --out``."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from agent.bootstrap import STORED
from agent.config import AgentConfig
from agent.configstore import RemoteConfig
from agent.remoteconfig import (
    Applied,
    Running,
    Unchanged,
    decide,
    device_changes,
    parse_pushed,
)
from lab.fleet import to_toml
from xanet import wire
from xanet.config import ConfigError
from xanet.signedconfig import (
    MAX_PAYLOAD_BYTES,
    REASONS,
    Refusal,
    canonical,
    key_id,
    load_public_key,
    open_envelope,
    seal,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
TRUSTED = {key_id(KEY.public_key()): KEY.public_key()}
AGENT = "hg-a1"


def pushed(devices: list[dict[str, Any]] | None = None, agent: str = AGENT,
           **sections: dict[str, Any]) -> str:
    """A config the core pushes: identity, credentials reference, devices."""
    return to_toml({
        "agent": {"id": agent, "province": "ha-giang", "commune": "00688", "site": "hub"},
        "polling": {"interval_s": 60.0},
        "snmp": {"version": "2c", "community": {"env": "T_PUSH_COMMUNITY"}},
        **sections,
        "devices": devices if devices is not None else [{"id": "rtr-1", "host": "192.0.2.1"}],
    })


def bootstrap(tmp_path: Path, keys: list[Path] | None = None) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": AGENT, "province": "ha-giang", "commune": "00688", "site": "hub",
                  "status_interval_s": 10},
        "mqtt": {"host": "127.0.0.1", "port": 8883},
        "spool": {"path": str(tmp_path / "spool.sqlite3")},
        "remote_config": {"enabled": True, "public_keys": keys or [tmp_path / "core.pub"],
                          "state_dir": str(tmp_path / "state")},
    })


def no_check(cfg: AgentConfig) -> list[str]:
    return []


# -- the envelope -----------------------------------------------------------------------


@given(st.text(max_size=300), st.integers(1, 2**53), st.sampled_from(["a", "hg-a1", "x.y:z"]))
def test_sealed_opens_to_what_was_sealed(config: str, version: int, agent: str) -> None:
    env = open_envelope(seal(agent, version, config, NOW, KEY), TRUSTED, agent=agent,
                        applied=version)
    assert (env.agent, env.version, env.config) == (agent, version, config)
    assert env.key_id == key_id(KEY.public_key()) and env.issued == "2026-11-29T12:00:00Z"


def _tampered(payload: bytes, **changes: Any) -> bytes:
    raw = json.loads(payload)
    raw["envelope"].update(changes)
    return json.dumps(raw).encode()


def _forged_key_id() -> bytes:
    """Signed with another key, but naming the trusted key's id."""
    env = json.loads(seal(AGENT, 5, pushed(), NOW, KEY))["envelope"]
    sig = base64.b64encode(OTHER.sign(canonical(env))).decode()
    return json.dumps({"envelope": env, "sig": sig}).encode()


GOOD = seal(AGENT, 5, pushed(), NOW, KEY)


@pytest.mark.parametrize("payload, applied, reason", [
    (seal(AGENT, 5, pushed(), NOW, OTHER), None, "unknown_key"),
    (_forged_key_id(), None, "bad_signature"),
    (_tampered(GOOD, version=6), None, "bad_signature"),
    (_tampered(GOOD, config=pushed([])), None, "bad_signature"),
    (seal("hg-a2", 5, pushed(agent="hg-a2"), NOW, KEY), None, "wrong_agent"),
    (GOOD, 6, "old_version"),
    (b"{not json", None, "not_json"),
    (b"\xff\xfe", None, "not_json"),
    (b"[1, 2]", None, "malformed"),
    (json.dumps({"envelope": {}, "sig": ""}).encode(), None, "malformed"),
    (_tampered(GOOD, version="5"), None, "malformed"),
    (_tampered(GOOD, version=True), None, "malformed"),
    (_tampered(GOOD, v=2), None, "malformed"),
    (b" " * (MAX_PAYLOAD_BYTES + 1), None, "too_large"),
])
def test_refusals_have_their_reason(payload: bytes, applied: int | None, reason: str) -> None:
    with pytest.raises(Refusal) as caught:
        open_envelope(payload, TRUSTED, agent=AGENT, applied=applied)
    assert caught.value.reason == reason and reason in REASONS


def test_sealing_refuses_what_no_agent_could_take() -> None:
    for agent, version, text in [("a/b", 1, ""), (AGENT, 0, ""),
                                 (AGENT, 1, "x" * MAX_PAYLOAD_BYTES)]:
        with pytest.raises(ValueError):
            seal(agent, version, text, NOW, KEY)


# -- what the agent decides ---------------------------------------------------------------


def test_decide_applies_merges_and_ignores_the_same_again(tmp_path: Path) -> None:
    boot = bootstrap(tmp_path)
    out = decide(GOOD, bootstrap=boot, trusted=TRUSTED, running=None, check=no_check)
    assert isinstance(out, Applied) and out.envelope.version == 5
    cfg = out.config
    # The bootstrap's own sections win (its status interval, broker, spool, keys).
    assert cfg.agent == boot.agent and cfg.mqtt == boot.mqtt and cfg.spool == boot.spool
    assert cfg.remote_config == boot.remote_config
    assert [d.id for d in cfg.devices] == ["rtr-1"] and cfg.polling.interval_s == 60
    same = decide(GOOD, bootstrap=boot, trusted=TRUSTED, running=Running(5, pushed()),
                  check=no_check)
    assert same == Unchanged(5)
    with pytest.raises(Refusal, match="old_version"):
        decide(seal(AGENT, 5, pushed([]), NOW, KEY), bootstrap=boot, trusted=TRUSTED,
               running=Running(5, pushed()), check=no_check)


@pytest.mark.parametrize("text, reason, detail", [
    ("[agent\nid = 1", "invalid_config", "not valid TOML"),
    (pushed([]), "invalid_config", "devices: at least one"),
    (pushed([{"id": "r", "host": "192.0.2.1", "port": 99999}]), "invalid_config",
     "devices[0].port"),
    (pushed(remote_config={"enabled": False}), "invalid_config", "remote_config"),
    (pushed(mqtt={"host": "broker.elsewhere"}), "bootstrap_changed", "mqtt.host"),
    (pushed(spool={"path": "/tmp/other.sqlite3"}), "bootstrap_changed", "spool.path"),
    (pushed(agent="hg-a1").replace('site = "hub"', 'site = "other"'), "bootstrap_changed",
     "agent.site"),
])
def test_decide_refuses_a_config_it_cannot_run(tmp_path: Path, text: str, reason: str,
                                               detail: str) -> None:
    with pytest.raises(Refusal) as caught:
        decide(seal(AGENT, 7, text, NOW, KEY), bootstrap=bootstrap(tmp_path),
               trusted=TRUSTED, running=Running(5, pushed()), check=no_check)
    assert caught.value.reason == reason and detail in caught.value.detail, caught.value


def test_decide_repeating_the_bootstrap_unchanged_is_fine(tmp_path: Path) -> None:
    text = pushed(mqtt={"host": "127.0.0.1", "port": 8883})
    out = decide(seal(AGENT, 1, text, NOW, KEY), bootstrap=bootstrap(tmp_path),
                 trusted=TRUSTED, running=None, check=no_check)
    assert isinstance(out, Applied)


def test_decide_runs_the_machine_check_on_the_merged_config(tmp_path: Path) -> None:
    seen: list[AgentConfig] = []

    def check(cfg: AgentConfig) -> list[str]:
        seen.append(cfg)
        return ["snmp.community: environment variable T_PUSH_COMMUNITY is not set"]

    with pytest.raises(Refusal, match=r"invalid_config: snmp\.community"):
        decide(GOOD, bootstrap=bootstrap(tmp_path), trusted=TRUSTED, running=None,
               check=check)
    assert seen and seen[0].mqtt.port == 8883


def _cfg(tmp_path: Path, devices: list[dict[str, Any]], **sections: Any) -> AgentConfig:
    out = decide(seal(AGENT, 1, pushed(devices, **sections), NOW, KEY),
                 bootstrap=bootstrap(tmp_path), trusted=TRUSTED, running=None, check=no_check)
    assert isinstance(out, Applied)
    return out.config


def test_device_changes(tmp_path: Path) -> None:
    a, b, c = ({"id": n, "host": "192.0.2.1"} for n in "abc")
    old = _cfg(tmp_path, [a, b, {**c, "poll_interval_s": 60}])
    new = _cfg(tmp_path, [a, {**c, "poll_interval_s": 30}, {"id": "d", "host": "192.0.2.4"}])
    ch = device_changes(old, new)
    assert (ch.added, ch.removed, ch.changed, ch.kept) == (
        ("hub/d",), ("hub/b",), ("hub/c",), ("hub/a",))
    # A shared section changed: every common device restarts with fresh state.
    slower = _cfg(tmp_path, [a, b], polling={"interval_s": 120.0})
    ch = device_changes(_cfg(tmp_path, [a, b]), slower)
    assert ch.changed == ("hub/a", "hub/b") and not ch.kept
    assert device_changes(old, old).kept == ("hub/a", "hub/b", "hub/c")


def test_bootstrap_without_devices_needs_remote_config(tmp_path: Path) -> None:
    assert bootstrap(tmp_path).devices == []
    with pytest.raises(ValueError, match="devices: at least one"):
        AgentConfig.model_validate({**bootstrap(tmp_path).model_dump(exclude_unset=True),
                                    "remote_config": {"enabled": False}})
    with pytest.raises(ValueError, match="public_keys"):
        AgentConfig.model_validate({**bootstrap(tmp_path).model_dump(exclude_unset=True),
                                    "remote_config": {"enabled": True}})
    with pytest.raises(ConfigError, match="remote_config"):
        parse_pushed(pushed(remote_config={"enabled": True}), "t")


# -- the state on disk, and key rotation -------------------------------------------------


def _write_key(path: Path, key: Ed25519PrivateKey) -> Path:
    from cryptography.hazmat.primitives import serialization
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def take(remote: RemoteConfig, payload: bytes) -> bool:
    """What the agent does with a config message: receive, apply, commit."""
    applied = remote.receive(payload)
    if applied is not None:
        remote.commit(applied)
    return applied is not None


def test_last_good_is_stored_and_started_on_and_refusals_are_kept(tmp_path: Path) -> None:
    keyfile = _write_key(tmp_path / "core.pub", KEY)
    boot = bootstrap(tmp_path, [keyfile])
    remote = RemoteConfig(boot, check=no_check)
    assert remote.config is boot and remote.version is None
    assert (remote.note() or "").startswith("no pushed config yet")
    applied = remote.receive(GOOD)
    assert applied is not None and remote.version is None  # not before it is applied
    assert not (tmp_path / "state" / STORED).exists()
    remote.commit(applied)
    assert remote.version == 5 and remote.note() is None
    stored = tmp_path / "state" / STORED
    assert stored.read_bytes() == GOOD and stored.stat().st_mode & 0o077 == 0
    assert not list(stored.parent.glob(".*.tmp"))
    assert remote.receive(GOOD) is None and remote.refusal is None  # the same again
    assert remote.receive(seal(AGENT, 6, pushed(), NOW, OTHER)) is None
    assert remote.refusal is not None and remote.refusal.startswith("unknown_key: ")
    assert remote.note() == f"pushed config refused: {remote.refusal}"
    assert remote.version == 5 and stored.read_bytes() == GOOD  # still the last good
    many = pushed([{"id": f"r{i}", "host": "bad host!"} for i in range(100)])
    assert remote.receive(seal(AGENT, 6, many, NOW, KEY)) is None
    assert remote.refusal is not None and remote.refusal.startswith("invalid_config: ")
    wire.AgentHealth(config_refusal=remote.refusal)  # fits the status (256 characters)
    again = RemoteConfig(boot, check=no_check)  # a restart, offline: the stored one
    assert again.version == 5 and [d.id for d in again.config.devices] == ["rtr-1"]


def test_key_rotation(tmp_path: Path) -> None:
    """docs/remote-config.md, "Key rotation": new key to the agents, the core signs with
    it, the old key removed from the agents."""
    old_pub = _write_key(tmp_path / "old.pub", KEY)
    new_pub = _write_key(tmp_path / "new.pub", OTHER)
    remote = RemoteConfig(bootstrap(tmp_path, [old_pub]), check=no_check)
    assert take(remote, seal(AGENT, 1, pushed(), NOW, KEY))
    # 1. the agents trust both (their bootstrap file; they restart on the stored config)
    remote = RemoteConfig(bootstrap(tmp_path, [old_pub, new_pub]), check=no_check)
    assert remote.version == 1
    # 2. the core signs with the new key
    assert take(remote, seal(AGENT, 2, pushed(), NOW, OTHER))
    # 3. the old key removed: the stored config (new key) still starts; the old refused
    remote = RemoteConfig(bootstrap(tmp_path, [new_pub]), check=no_check)
    assert remote.version == 2
    assert remote.receive(seal(AGENT, 3, pushed(), NOW, KEY)) is None
    assert remote.refusal is not None and remote.refusal.startswith("unknown_key")
    # A stored config whose key is no longer trusted: the agent starts on its bootstrap.
    remote = RemoteConfig(bootstrap(tmp_path, [_write_key(tmp_path / "x.pub",
                                                          Ed25519PrivateKey.generate())]),
                          check=no_check)
    assert remote.version is None and remote.config.devices == []


# -- the core's command line -------------------------------------------------------------


def _xanet(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xanet.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_keys_and_publish_out(tmp_path: Path) -> None:
    r = _xanet("keys", "generate", "--out", tmp_path / "keys")
    assert r.returncode == 0, r.stderr
    key, pub = tmp_path / "keys" / "core-config.key", tmp_path / "keys" / "core-config.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    assert _xanet("keys", "generate", "--out", tmp_path / "keys").returncode == 2
    kid = _xanet("keys", "id", pub).stdout.strip()
    assert kid == _xanet("keys", "id", key).stdout.strip() and len(kid) == 16
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(pushed())
    bad.write_text(pushed([{"id": "r", "host": "not a host!"}]))
    state = tmp_path / "versions"
    base: list[str | Path] = ["config", "publish", "--agent", AGENT, "--key", key, "--state", state]
    r = _xanet(*base, "--config", bad, "--out", tmp_path / "m")
    assert r.returncode == 2 and "devices[0].host" in r.stderr and not (tmp_path / "m").exists()
    unknown = tmp_path / "unknown-profile.toml"
    unknown.write_text(pushed([{"id": "r", "host": "192.0.2.1", "profiles": ["no-such"]}]))
    r = _xanet(*base, "--config", unknown, "--out", tmp_path / "m")
    assert r.returncode == 2 and "unknown profile 'no-such'" in r.stderr, r.stderr
    r = _xanet(*base, "--config", good, "--out", tmp_path / "m", "--agent", "hg-a2")
    assert r.returncode == 2 and "agent.id" in r.stderr
    r = _xanet(*base, "--config", good, "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    trusted = {kid: load_public_key(pub)}  # the id names the public key the agent loads
    env = open_envelope((tmp_path / "m").read_bytes(), trusted, agent=AGENT, applied=None)
    assert env.version == 1 and env.config == pushed()
    state.mkdir()
    (state / f"{AGENT}.version").write_text("4\n")
    r = _xanet(*base, "--config", good, "--out", tmp_path / "m", "--version", "3")
    assert r.returncode == 2 and "not newer than 4" in r.stderr
    assert _xanet(*base, "--config", good, "--out", tmp_path / "m").returncode == 0
    assert json.loads((tmp_path / "m").read_bytes())["envelope"]["version"] == 5


def test_check_config_reads_the_public_keys_and_the_state_dir(tmp_path: Path) -> None:
    from xanet.cli import check_file

    boot = bootstrap(tmp_path, [tmp_path / "missing.pub", tmp_path / "not-a-key.pub"])
    (tmp_path / "not-a-key.pub").write_text("hello\n")
    (tmp_path / "state").write_text("a file where the directory should be\n")
    data = boot.model_dump(mode="json", exclude_unset=True)
    path = tmp_path / "agent.toml"
    path.write_text(to_toml(data))
    problems = check_file(path, secrets=False, files=True)
    assert any("remote_config.public_keys[0]:" in p and "cannot read" in p for p in problems)
    assert any("remote_config.public_keys[1]:" in p and "not a PEM public key" in p
               for p in problems)
    assert any("remote_config.state_dir:" in p for p in problems), problems
    _write_key(tmp_path / "missing.pub", KEY)
    (tmp_path / "not-a-key.pub").unlink()
    _write_key(tmp_path / "not-a-key.pub", OTHER)
    (tmp_path / "state").unlink()
    assert check_file(path, secrets=False, files=True) == []


# -- applying: all or nothing --------------------------------------------------------------


def test_apply_changes_nothing_when_it_cannot_and_keeps_unchanged_state(
        tmp_path: Path) -> None:
    """A profile file broken between the check and the apply: ``Agent.apply`` raises
    before changing anything. A good change keeps the unchanged device's rate tracker and
    gives the changed one a fresh one (its new interval)."""
    from agent.app import Agent
    from agent.snmp import RawPoll, SnmpTarget
    from xanet.config import ConfigError

    class Poller:
        async def poll(self, target: SnmpTarget) -> RawPoll:
            raise AssertionError("not polled here")

        def close(self) -> None:
            pass

    a, b = {"id": "a", "host": "192.0.2.1"}, {"id": "b", "host": "192.0.2.2"}
    _write_key(tmp_path / "core.pub", KEY)  # (no config stored: the agent starts on _cfg)
    agent = Agent(_cfg(tmp_path, [a, b]), poller=Poller())
    try:
        before = agent.cfg
        tracker_a, tracker_b = (agent._tracker(d) for d in before.devices)
        (tmp_path / "profiles").mkdir()
        (tmp_path / "profiles" / "broken.toml").write_text("not = [toml")
        broken = _cfg(tmp_path, [a, {**b, "profiles": ["ups-mib"]}],
                      profiles={"dir": str(tmp_path / "profiles")})
        with pytest.raises(ConfigError, match=r"broken\.toml"):
            agent.apply(broken)
        assert agent.cfg is before and set(agent.plans) == {"hub/a", "hub/b"}
        assert agent._trackers == {"hub/a": tracker_a, "hub/b": tracker_b}
        agent.apply(_cfg(tmp_path, [a, {**b, "poll_interval_s": 30}, {"id": "c",
                                                                      "host": "192.0.2.3"}]))
        assert agent._trackers["hub/a"] is tracker_a
        assert agent._trackers["hub/b"] is not tracker_b
        assert agent._trackers["hub/b"].policy.poll_interval_s == 30
        assert set(agent.plans) == {"hub/a", "hub/b", "hub/c"}
        agent.apply(_cfg(tmp_path, [a]))
        assert set(agent._trackers) == {"hub/a"} and set(agent.plans) == {"hub/a"}
        assert agent._trackers["hub/a"] is tracker_a
    finally:
        agent.spool.close()


def test_publish_from_the_inventory_is_applied_by_a_bootstrap_only_box(tmp_path: Path) -> None:
    """``--from-inventory``: the agent's config rendered from the inventory, signed; a box
    with only its bootstrap file (its own broker and spool) applies it, devices as the
    inventory says."""
    import tomllib

    from xanet.inventory.agentconfig import render_agent_config
    from xanet.inventory.load import load_inventory

    inventory_file = ROOT / "config" / "inventory.example.toml"
    agent = "agt-thuong-lam"
    keys = tmp_path / "keys"
    assert _xanet("keys", "generate", "--out", keys).returncode == 0
    r = _xanet("config", "publish", "--agent", agent, "--from-inventory", inventory_file,
               "--key", keys / "core-config.key", "--state", tmp_path / "versions",
               "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    rendered = tomllib.loads(render_agent_config(load_inventory(inventory_file), agent))
    box = AgentConfig.model_validate({
        "agent": rendered["agent"],
        "mqtt": {"host": "127.0.0.1", "port": 8883, "username": agent},
        "spool": {"path": str(tmp_path / "spool.sqlite3")},
        "remote_config": {"enabled": True, "public_keys": [keys / "core-config.pub"],
                          "state_dir": str(tmp_path / "state")},
    })
    trusted = {key_id(load_public_key(keys / "core-config.pub")):
               load_public_key(keys / "core-config.pub")}
    out = decide((tmp_path / "m").read_bytes(), bootstrap=box, trusted=trusted, running=None,
                 check=no_check)
    assert isinstance(out, Applied) and out.envelope.version == 1
    assert out.config.mqtt == box.mqtt and out.config.spool == box.spool
    assert [(d.id, d.host) for d in out.config.devices] == [
        (d["id"], d["host"]) for d in rendered["devices"]]
    assert "[mqtt]" not in out.envelope.config and "[spool]" not in out.envelope.config
