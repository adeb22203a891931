"""MQTT connection settings shared by agent and collector, and the backoff rule.

No MQTT library is imported here: the programs build their aiomqtt clients
from :func:`connect_kwargs`.
"""

from __future__ import annotations

import random
import ssl
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from xanet.config import Host, Secret, Strict


class MqttConfig(Strict):
    host: Host = Field(
        default="127.0.0.1",
        description="broker address: an IP address or a host name (the server certificate "
        "must name it with tls)",
    )
    port: int = Field(description="1883 plain, 8883 TLS", default=1883, ge=1, le=65535)
    client_id: str | None = Field(default=None, description="default: derived from the agent id")
    username: str | None = Field(
        default=None, description="per-agent user name (see docs/security.md)"
    )
    password: Secret | None = Field(default=None, description="MQTT password")
    keepalive_s: int = Field(
        description="the broker publishes the Last Will ~1.5 x this after silence",
        default=30,
        ge=5,
        le=3600,
    )
    tls: bool = Field(
        default=False, description="TLS with server certificate and host name verified"
    )
    ca_file: Path | None = Field(default=None, description="CA bundle; default: system store")
    cert_file: Path | None = Field(default=None, description="client certificate (optional)")
    key_file: Path | None = Field(default=None, description="client key (with cert_file)")
    reconnect_min_s: float = Field(
        description="first reconnect delay (capped, jittered exponential backoff)",
        default=1.0,
        gt=0,
    )
    reconnect_max_s: float = Field(description="longest reconnect delay", default=60.0, gt=0)
    max_inflight: int = Field(default=8, ge=1, le=10, description="publishes awaiting PUBACK")
    publish_timeout_s: float = Field(
        description="a publish not acknowledged by then forces a reconnect", default=30.0, gt=0
    )

    @model_validator(mode="after")
    def _coherent(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file/cert_file given but tls = false")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self


def tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    """A verifying TLS context (server certificate and host name checked)."""
    if not cfg.tls:
        return None
    ctx = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.cert_file and cfg.key_file:
        ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    return ctx


def connect_kwargs(cfg: MqttConfig, client_id: str) -> dict[str, Any]:
    """Keyword arguments for ``aiomqtt.Client`` (secrets read now)."""
    return {
        "hostname": cfg.host,
        "port": cfg.port,
        "identifier": cfg.client_id or client_id,
        "username": cfg.username,
        "password": cfg.password.reveal() if cfg.password else None,
        "keepalive": cfg.keepalive_s,
        "tls_context": tls_context(cfg),
    }


def backoff_s(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter: uniform in [min, min·2^attempt ∧ max]."""
    ceiling = min(max_s, min_s * 2 ** min(attempt, 30))
    return rng.uniform(min_s, ceiling)
