"""What the core announces it understands, and what an agent may send it. Pure.

The collector publishes a :class:`Capabilities` message, retained, on
:data:`xanet.topics.CAPABILITIES` once it is subscribed. An agent that reads it sends its
backlog as compact batches (:mod:`xanet.compact`) within the announced bounds; an agent
that never saw it (an older core, an ACL without the line) sends JSON exactly as before.
Unknown keys are ignored, so a newer core may say more without confusing older agents.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xanet import compact

#: The encoding every core reads.
JSON = "json"


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = 1
    encodings: list[str] = Field(default_factory=lambda: [JSON], max_length=32)
    max_batch_bytes: int = Field(default=0, ge=0, description="a batch's payload, at most")
    max_batch_decompressed_bytes: int = Field(default=0, ge=0)
    max_batch_messages: int = Field(default=0, ge=0)
    max_batch_polls: int = Field(default=0, ge=0)

    @property
    def batches(self) -> bool:
        """Compact batches may be sent (announced, with bounds that leave room for one)."""
        return (compact.ENCODING in self.encodings and self.max_batch_bytes > 0
                and self.max_batch_decompressed_bytes > 0 and self.max_batch_messages > 0
                and self.max_batch_polls > 0)


def announce(limits: compact.Limits) -> Capabilities:
    """What a collector with these batch bounds says."""
    return Capabilities(encodings=[JSON, compact.ENCODING],
                        max_batch_bytes=limits.max_payload_bytes,
                        max_batch_decompressed_bytes=limits.max_decompressed_bytes,
                        max_batch_messages=limits.max_messages,
                        max_batch_polls=limits.max_polls)


def encode(caps: Capabilities) -> bytes:
    return caps.model_dump_json().encode()


def decode(payload: bytes) -> Capabilities | None:
    """The announcement, or None when it is not one (then: JSON only)."""
    try:
        return Capabilities.model_validate_json(payload)
    except (ValidationError, ValueError):
        return None
