"""This agent process's instance id: tells two boxes running one agent id apart."""

from __future__ import annotations

import re
import secrets
import socket

from xanet.ids import IDENT_CHARS

_NOT_IDENT = re.compile(rf"[^{IDENT_CHARS}]+")


def instance_id(hostname: str | None = None, token: str | None = None) -> str:
    """``<host>-<8 hex digits>``: the host name (no DNS look-up; cut to 40 characters,
    characters outside the wire's identifier set replaced) and a random token per process,
    so a restart and a second box both show as a new instance. A valid ``wire.Ident``."""
    host = _NOT_IDENT.sub("-", hostname if hostname is not None else socket.gethostname())
    host = host.strip("-.:_")[:40] or "agent"
    return f"{host}-{token if token is not None else secrets.token_hex(4)}"
