"""``xanet keys`` and ``xanet config publish``: the core signs an agent's config, publishes it.

    xanet keys generate --out DIR [--name core-config]   a new Ed25519 key pair
    xanet keys id FILE                                   a key's id (private or public)
    xanet config publish --agent ID --config FILE --key core-config.key
                         (--mqtt publisher.toml | --out FILE) [--version N] [--state DIR]

``publish`` checks the config as the agent will before signing (the text of an agent
config for this agent: :func:`agent.remoteconfig.parse_pushed`, ``check-config
--no-secrets``), so the core never publishes a config an agent refuses for its text;
what only the box can judge (its secret and TLS files) the agent reports in its status.
The version is ``--version`` or the last one published for the agent + 1 (kept in
``--state``). The message is published retained, QoS 1, on ``xanet/v1/config/{agent}``,
then read back from the broker to confirm it holds it. docs/remote-config.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xanet import topics
from xanet.config import ConfigError, Strict, load_model
from xanet.mqtt import MqttConfig
from xanet.signedconfig import KeyFileError, generate, key_id, load_private_key, load_public_key

DEFAULT_STATE = Path("/var/lib/xanet/config-versions")
READ_BACK_S = 10.0


class PublisherFile(Strict):
    """``--mqtt FILE``: its ``[mqtt]`` table, the broker and the publisher's user."""

    mqtt: MqttConfig


def _cmd_generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    private, public = out / f"{args.name}.key", out / f"{args.name}.pub"
    for path in (private, public):
        if path.exists():
            print(f"xanet keys: {path} exists: refusing to overwrite a key", file=sys.stderr)
            return 2
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    priv_pem, pub_pem = generate()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(priv_pem)
    public.write_bytes(pub_pem)
    print(f"key {key_id(load_public_key(public))}: private {private} (keep it on the core "
          f"only), public {public} (for every agent's remote_config.public_keys)")
    return 0


def _cmd_id(args: argparse.Namespace) -> int:
    try:
        public = load_public_key(args.file)
    except KeyFileError:
        try:
            public = load_private_key(args.file).public_key()
        except KeyFileError as exc:
            print(f"xanet keys: {exc}", file=sys.stderr)
            return 2
    print(key_id(public))
    return 0


def config_text(args: argparse.Namespace) -> tuple[str, str]:
    """The config to push and where it came from: ``--config FILE``, or rendered from
    ``--from-inventory FILE`` (:func:`inventory_config_text`)."""
    if args.from_inventory is not None:
        return inventory_config_text(args.from_inventory, args.agent)
    path: Path = args.config
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from exc


def inventory_config_text(path: Path, agent: str) -> tuple[str, str]:
    """``agent``'s config rendered from the inventory at ``path``
    (:func:`xanet.inventory.agentconfig.render_agent_config`), without the sections only
    the box's bootstrap file sets (``[mqtt]``, ``[spool]``: the box keeps its own; pushing
    the inventory's defaults would be refused as ``bootstrap_changed`` wherever they
    differ). ``[agent]`` stays: the inventory says which site the agent serves."""
    import tomllib

    import tomli_w

    from xanet.inventory.agentconfig import render_agent_config
    from xanet.inventory.load import load_inventory

    source = f"{path} (agent {agent})"
    rendered = render_agent_config(load_inventory(path), agent, source=path.name)
    header = "".join(line + "\n" for line in rendered.splitlines() if line.startswith("#"))
    raw = {k: v for k, v in tomllib.loads(rendered).items() if k not in ("mqtt", "spool")}
    return header + tomli_w.dumps(raw), source


def checked(text: str, source: str, agent: str) -> None:
    """What the agent will check of the text (:class:`ConfigError` lists every problem)."""
    from agent.config import check_agent, profile_problems
    from agent.remoteconfig import parse_pushed

    _, cfg = parse_pushed(text, source)
    problems = check_agent(cfg, secrets=False, files=False)
    if cfg.profiles.dir is None:  # the shipped catalog only: the same on every box
        problems += profile_problems(cfg)
    if cfg.agent.id != agent:
        problems.insert(0, f"agent.id: {cfg.agent.id!r}, but this is --agent {agent!r}")
    if problems:
        raise ConfigError(source, problems)


def _last_version(state: Path, agent: str) -> int:
    try:
        return int((state / f"{agent}.version").read_text().strip())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        raise ConfigError(state / f"{agent}.version", [f"unreadable version: {exc}"]) from exc


async def publish(mqtt: MqttConfig, topic: str, payload: bytes, client_id: str) -> None:
    """Publish retained, QoS 1, and read it back (TimeoutError if the broker does not
    hold it: the publisher's ACL)."""
    import aiomqtt

    from xanet.mqtt import connect_kwargs

    kwargs: dict[str, Any] = connect_kwargs(mqtt, client_id)
    async with aiomqtt.Client(**kwargs, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(topic, payload, qos=1, retain=True)
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(READ_BACK_S):
            async for message in client.messages:
                if message.payload == payload:
                    return


def _cmd_publish(args: argparse.Namespace) -> int:
    from xanet.signedconfig import seal

    agent: str = args.agent
    text, source = config_text(args)
    checked(text, source, agent)
    try:
        key = load_private_key(args.key)
    except KeyFileError as exc:
        print(f"xanet config publish: {exc}", file=sys.stderr)
        return 2
    last = _last_version(args.state, agent)
    version = args.version if args.version is not None else last + 1
    if version <= last:
        print(f"xanet config publish: version {version} is not newer than {last}, the last "
              f"published for {agent} (the agent would refuse it: old_version)", file=sys.stderr)
        return 2
    try:
        payload = seal(agent, version, text, datetime.now(UTC), key)
    except ValueError as exc:  # too large for an agent to take
        print(f"xanet config publish: {exc}", file=sys.stderr)
        return 2
    topic = topics.config_topic(agent)
    if args.out is not None:
        args.out.write_bytes(payload)
        print(f"{agent}: version {version} signed with key {key_id(key.public_key())}, "
              f"written to {args.out} (not published)")
        return 0
    mqtt = load_model(args.mqtt, PublisherFile).mqtt
    try:
        asyncio.run(publish(mqtt, topic, payload, f"xanet-config-{os.getpid()}"))
    except TimeoutError:
        print(f"xanet config publish: the broker does not give back what was published on "
              f"{topic}: check the publisher's ACL (topic readwrite xanet/v1/config/#)",
              file=sys.stderr)
        return 1
    except Exception as exc:  # aiomqtt.MqttError and TLS errors: a message, not a traceback
        print(f"xanet config publish: {mqtt.host}:{mqtt.port}: {exc}", file=sys.stderr)
        return 1
    args.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    (args.state / f"{agent}.version").write_text(f"{version}\n")
    print(f"{agent}: version {version} signed with key {key_id(key.public_key())}, "
          f"published retained on {topic}")
    return 0


def add_parsers(sub: Any) -> None:
    """``xanet keys`` and ``xanet config`` (called by :func:`xanet.cli.build_parser`)."""
    keys = sub.add_parser("keys", help="the core's Ed25519 keys for signed agent configs")
    ksub = keys.add_subparsers(dest="action", required=True)
    g = ksub.add_parser("generate", help="a new key pair (private 0600, public)")
    g.add_argument("--out", type=Path, required=True, help="directory for NAME.key, NAME.pub")
    g.add_argument("--name", default="core-config")
    g.set_defaults(func=_cmd_generate)
    i = ksub.add_parser("id", help="a key's id, as envelopes and the agent's log name it")
    i.add_argument("file", type=Path)
    i.set_defaults(func=_cmd_id)
    cfg = sub.add_parser("config", help="agent configs pushed by the core")
    csub = cfg.add_subparsers(dest="action", required=True)
    p = csub.add_parser("publish", help="sign an agent's config and publish it, retained")
    p.add_argument("--agent", required=True, help="the agent id (its MQTT user)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, help="the agent's config (TOML)")
    src.add_argument("--from-inventory", type=Path, metavar="INVENTORY",
                     help="render the agent's config from this inventory (docs/inventory.md, "
                     "'Agent configs'): its devices, intervals, profiles, credentials "
                     "references; [mqtt] and [spool] stay the box's own")
    p.add_argument("--key", type=Path, required=True, help="the core's private key")
    p.add_argument("--version", type=int, help="default: the last published + 1")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE,
                   help="where the last version per agent is kept")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--mqtt", type=Path, help="TOML with an [mqtt] table: the broker and "
                      "the publisher's user (xanet-config)")
    dest.add_argument("--out", type=Path, help="write the signed message here instead")
    p.set_defaults(func=_cmd_publish)
