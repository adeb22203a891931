"""What only the box's own config file says: ``[remote_config]``, the sections no push changes.
Pure, but for :func:`remote_config_problems` (check-config's look at the files it names).

A site box starts from a *bootstrap* file: its identity (``[agent]``), the broker and its
credentials (``[mqtt]``), the spool, and ``[remote_config]`` (the core's public keys,
where the last good config is kept). The core pushes the rest (devices, credentials
references, polling, profiles...; docs/remote-config.md). A pushed config may leave the
bootstrap sections out or repeat them unchanged; one that changes them is refused
(``bootstrap_changed``): a config that moved the box to another broker, identity or spool
could cut it off for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field, model_validator

from xanet.config import Strict
from xanet.preflight import writable_file_problem

#: Where ``state_dir`` keeps the last good pushed config (the signed message).
STORED = "config.signed.json"
#: The top-level tables of an agent config that only the bootstrap file sets.
BOOTSTRAP_SECTIONS: Final = ("agent", "mqtt", "spool", "remote_config")


class RemoteConfigSection(Strict):
    """Configuration pushed by the core, signed (docs/remote-config.md)."""

    enabled: bool = Field(
        default=False,
        description="take this agent's config from its retained, signed config topic "
        "(xanet/v1/config/{agent id}); then this file may list no device",
    )
    public_keys: list[Path] = Field(
        default_factory=list,
        description="the core's Ed25519 public keys (PEM) a pushed config may be signed "
        "with; two during a key rotation",
    )
    state_dir: Path = Field(
        default=Path("/var/lib/xanet/remote-config"),
        description="where the last good pushed config is kept (the agent starts on it "
        "when the broker cannot be reached)",
    )

    @model_validator(mode="after")
    def _keys(self) -> RemoteConfigSection:
        if self.enabled and not self.public_keys:
            raise ValueError("enabled = true needs public_keys (the core's public key files)")
        return self


def remote_config_problems(rc: RemoteConfigSection) -> list[str]:
    """``xanet check-config``: the core's public keys are Ed25519 keys this user can read,
    the state directory can be written."""
    if not rc.enabled:
        return []
    from xanet.signedconfig import KeyFileError, load_public_key

    problems = []
    for i, path in enumerate(rc.public_keys):
        try:
            load_public_key(path)
        except KeyFileError as exc:
            problems.append(f"remote_config.public_keys[{i}]: {exc}")
    state = writable_file_problem(rc.state_dir / STORED)
    if state is not None:
        problems.append(f"remote_config.state_dir: {state}")
    return problems
