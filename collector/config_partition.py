"""Which sites a collector owns in a partitioned core, and how it keeps their state for a
successor: the ``[partition]`` and ``[state]`` sections of the collector's configuration
(docs/deploy-core.md, "Two collectors per partition"; docs/delivery.md, "Failover")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from xanet.config import Secret, Strict
from xanet.ids import IDENT_RULE, Ident, is_ident


class PartitionSection(Strict):
    """The share of the sites this collector owns, and the lease that makes it the only
    owner (docs/deploy-core.md, "Two collectors per partition")."""

    id: Ident | None = Field(
        default=None,
        description="partition id: the collector owns the partition only while it holds "
        "its lease (xanet/v1/core/lease/{id}) and reads it through the partition's shared "
        "MQTT session; unset: not partitioned, one collector as before",
    )
    provinces: list[str] = Field(
        default_factory=list,
        description="the provinces read (one subscription each); empty: [collector] province",
    )
    communes: list[str] = Field(
        default_factory=list,
        description="only these communes of the one province in provinces (for the "
        "largest provinces, split in several partitions)",
    )
    keepalive_s: int = Field(
        default=30, ge=1, le=3600,
        description="MQTT keepalive of the lease and data connections: the broker clears "
        "the lease ~1.5 x this after the owner died; a standby takes over then",
    )
    username: str | None = Field(
        default=None,
        description="MQTT user of the partition's data session, shared by its collectors "
        "(the shipped broker uses it as the client id); needed when [mqtt] has a user; "
        "without users the session's client id is xanet-collector-part-{id}",
    )
    password: Secret | None = Field(default=None, description="that user's password")

    @model_validator(mode="after")
    def _coherent(self) -> PartitionSection:
        for name, values in (("provinces", self.provinces), ("communes", self.communes)):
            bad = [v for v in values if not is_ident(v)]
            if bad:
                raise ValueError(f"{name}: {', '.join(map(repr, bad))} not usable in a "
                                 f"topic: {IDENT_RULE}")
            dup = sorted({v for v in values if values.count(v) > 1})
            if dup:
                raise ValueError(f"{name}: {', '.join(dup)} given twice")
        if self.communes and len(self.provinces) != 1:
            raise ValueError(f"communes need exactly one province in provinces "
                             f"(given {len(self.provinces)})")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self

    def scopes(self, province: str) -> list[tuple[str, str]]:
        """(province, commune) pairs subscribed: ``province`` (``[collector] province``)
        when no provinces are given; commune ``+`` for a whole province."""
        if not self.provinces:
            return [(province, "+")]
        if self.communes:
            return [(self.provinces[0], c) for c in self.communes]
        return [(p, "+") for p in self.provinces]


class StateConfig(Strict):
    """The checkpoint a new owner restores before it subscribes (docs/delivery.md)."""

    checkpoint: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="write the partition's checkpoint to InfluxDB and restore it at start: "
        "auto = on when [partition] id is set; on needs influx api v1 or an InfluxDB 2.x "
        "(string fields; VictoriaMetrics cannot store them)",
    )
    checkpoint_interval_s: float = Field(
        default=10.0, ge=1, le=3600,
        description="how often the checkpoint is written (and at each outage opened or "
        "closed)",
    )
    restore_timeout_s: float = Field(
        default=10.0, gt=0, le=300,
        description="how long the start waits for InfluxDB to answer the restore; past "
        "it the collector starts as without a checkpoint",
    )
    max_checkpoint_bytes: int = Field(
        default=16 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024,
        description="a checkpoint larger than this (encoded) is neither written nor read",
    )
