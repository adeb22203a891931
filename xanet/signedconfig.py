"""Whether a pushed agent config is the core's, for this agent, and newer: the signed envelope.
Pure (the key files are read at the edge, at the bottom).

The core signs each agent's config with an Ed25519 key only it holds; the agent trusts
one or more public keys (several during a rotation, docs/remote-config.md). The MQTT
payload is JSON::

    {"envelope": {"v": 1, "agent": "hg-a1", "version": 7, "issued": "2026-…Z",
                  "key_id": "3f2a…", "config": "<the agent config's TOML text>"},
     "sig": "<base64 Ed25519 signature over canonical(envelope)>"}

``canonical`` is the envelope as JSON with sorted keys, no spaces, UTF-8: what the core
signed is exactly what the agent verifies, whatever JSON library carried it. ``key_id``
names the public key (the first 16 hex digits of SHA-256 of its raw 32 bytes) so an agent
that trusts several keys knows which one to use.

:func:`open_envelope` refuses with :class:`Refusal`, whose ``reason`` is a short key
(:data:`REASONS`) the agent reports in its status. Computation only: no files, sockets or
clocks (key files are read by :func:`load_private_key` / :func:`load_public_key`, the edge).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from xanet.ids import is_ident

if TYPE_CHECKING:  # cryptography is imported where it is used: an agent without pushed
    # configs does not load it (tests/test_agent_imports.py)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ENVELOPE_VERSION: Final = 1
#: The largest signed payload an agent accepts (the config of a site with hundreds of
#: devices is a few tens of KiB).
MAX_PAYLOAD_BYTES: Final = 512 * 1024

Reason = Literal["too_large", "not_json", "malformed", "unknown_key", "bad_signature",
                 "wrong_agent", "old_version", "invalid_config", "bootstrap_changed"]
#: Why a pushed config is refused, with what it means (docs/remote-config.md).
REASONS: Final[dict[str, str]] = {
    "too_large": f"the payload is larger than {MAX_PAYLOAD_BYTES} bytes",
    "not_json": "the payload is not JSON",
    "malformed": "the JSON is not a signed config envelope (keys, types)",
    "unknown_key": "signed by a key this agent does not trust (remote_config.public_keys)",
    "bad_signature": "the signature does not match the envelope (altered, or another key)",
    "wrong_agent": "the config is another agent's",
    "old_version": "not newer than the config this agent runs",
    "invalid_config": "the config is not one this agent can run (check-config's reasons)",
    "bootstrap_changed": "the config changes what only the box's own file may say "
                         "([agent] identity, [mqtt], [spool], [remote_config])",
}


class Refusal(ValueError):
    """A pushed config refused: ``reason`` (a key of :data:`REASONS`) and a detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the core signs: one agent's config, its version, when and with which key."""

    agent: str
    version: int
    issued: str  # ISO 8601 UTC, informative (the agent orders by version, not by clock)
    key_id: str
    config: str  # the agent config's TOML text

    def as_dict(self) -> dict[str, Any]:
        return {"v": ENVELOPE_VERSION, "agent": self.agent, "version": self.version,
                "issued": self.issued, "key_id": self.key_id, "config": self.config}


def canonical(envelope: Mapping[str, Any]) -> bytes:
    """The bytes signed and verified: sorted keys, no spaces, UTF-8."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def key_id(public: Ed25519PublicKey) -> str:
    """A public key's name: the first 16 hex digits of SHA-256 of its raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def seal(agent: str, version: int, config: str, issued: datetime,
         private: Ed25519PrivateKey) -> bytes:
    """The signed payload of ``config`` for ``agent`` at ``version``."""
    if not is_ident(agent):
        raise ValueError(f"agent id {agent!r} is not an ident")
    if version < 1:
        raise ValueError(f"version {version} must be at least 1")
    stamp = issued.isoformat().replace("+00:00", "Z")
    env = Envelope(agent, version, stamp, key_id(private.public_key()), config).as_dict()
    sig = base64.b64encode(private.sign(canonical(env))).decode()
    payload = json.dumps({"envelope": env, "sig": sig}, ensure_ascii=False).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"signed config of {len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    return payload


def _envelope(raw: Any) -> tuple[dict[str, Any], bytes]:
    """The envelope and the signature of a decoded payload, or ``malformed``."""
    if not isinstance(raw, dict) or set(raw) != {"envelope", "sig"}:
        raise Refusal("malformed", "expected an object with exactly 'envelope' and 'sig'")
    env, sig = raw["envelope"], raw["sig"]
    if not isinstance(env, dict) or not isinstance(sig, str):
        raise Refusal("malformed", "'envelope' must be an object, 'sig' a string")
    fields = {"v": int, "agent": str, "version": int, "issued": str, "key_id": str,
              "config": str}
    if set(env) != set(fields):
        raise Refusal("malformed", f"envelope keys must be {sorted(fields)}, got {sorted(env)}")
    for name, kind in fields.items():
        if not isinstance(env[name], kind) or isinstance(env[name], bool):
            raise Refusal("malformed", f"envelope.{name} must be a {kind.__name__}")
    if env["v"] != ENVELOPE_VERSION:
        raise Refusal("malformed", f"envelope.v={env['v']}, this agent reads v={ENVELOPE_VERSION}")
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refusal("malformed", f"sig is not base64: {exc}") from exc
    return env, signature


def open_envelope(payload: bytes, trusted: Mapping[str, Ed25519PublicKey], *, agent: str,
                  applied: int | None) -> Envelope:
    """The envelope of ``payload`` if it is signed by a ``trusted`` key (by key id), for
    ``agent``, and newer than ``applied`` (the version running; None: none yet). Else
    :class:`Refusal`. The checks run in this order, so a forged payload is never judged by
    what it claims: size, JSON, shape, key, signature, agent, version."""
    from cryptography.exceptions import InvalidSignature

    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Refusal("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise Refusal("not_json", str(exc)[:120]) from exc
    env, signature = _envelope(raw)
    public = trusted.get(env["key_id"])
    if public is None:
        raise Refusal("unknown_key", f"key {env['key_id']} is not among the trusted "
                      f"{', '.join(sorted(trusted)) or '(none)'}")
    try:
        public.verify(signature, canonical(env))
    except InvalidSignature as exc:
        raise Refusal("bad_signature", f"not signed by key {env['key_id']}") from exc
    if env["agent"] != agent:
        raise Refusal("wrong_agent", f"config of agent {env['agent']!r}, this is {agent!r}")
    if applied is not None and env["version"] < applied:
        raise Refusal("old_version", f"version {env['version']} < {applied}, the one running")
    return Envelope(env["agent"], env["version"], env["issued"], env["key_id"], env["config"])


# -- key files (the edge) ---------------------------------------------------------------


class KeyFileError(ValueError):
    """A key file that cannot be read or is not an Ed25519 key of the expected kind."""


def generate() -> tuple[bytes, bytes]:
    """A new key pair as PEM: (private PKCS#8, unencrypted; public SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
            private.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


def trusted_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """The public keys of ``paths`` by key id (:class:`KeyFileError` for a bad file)."""
    keys = [load_public_key(p) for p in paths]
    return {key_id(k): k for k in keys}
