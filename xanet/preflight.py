"""What a config needs of this machine before a program starts: TLS files, writable paths.

``xanet check-config`` and the start of ``xanet agent`` / ``xanet collector`` run the same
checks (:func:`xanet.config.load_checked`), so a mistake that would crash a program at
start is reported before, as ``key.path: reason``, all at once:

* TLS files (``ca_file``, ``cert_file``, ``key_file``) exist, can be read by this user
  and are PEM: the CA bundle is loaded by :mod:`ssl` as the program will load it, the key
  is an unencrypted PEM private key that matches the certificate;
* a file the program writes (the agent's spool) can be created or opened for writing:
  its directory exists and is writable, or can be created under a writable ancestor.

No network traffic and no DNS look-up: a host name is only checked for its syntax
(:data:`xanet.config.Host`).
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path

from xanet.mqtt import MqttConfig

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def _read(path: Path) -> tuple[bytes | None, str | None]:
    try:
        return path.read_bytes(), None
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}"


def _pem_labels(data: bytes) -> list[str]:
    return [m.group(1).decode("ascii") for m in _PEM.finditer(data)]


def pem_file_problem(path: Path, kind: str) -> str | None:
    """Why ``path`` is not a readable PEM file of ``kind`` (``ca``, ``cert``, ``key``)."""
    data, problem = _read(path)
    if data is None:
        return problem
    labels = _pem_labels(data)
    if kind == "ca":
        if "CERTIFICATE" not in labels:
            return f"{path}: not a PEM CA certificate (no BEGIN CERTIFICATE block)"
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(path))
        except (ssl.SSLError, ValueError) as exc:
            return f"{path}: not a usable PEM CA bundle: {exc}"
    elif kind == "cert":
        if "CERTIFICATE" not in labels:
            return f"{path}: not a PEM certificate (no BEGIN CERTIFICATE block)"
    else:
        keys = [label for label in labels if label.endswith("PRIVATE KEY")]
        if not keys:
            return f"{path}: not a PEM private key (no BEGIN ... PRIVATE KEY block)"
        if keys[0] == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data:
            return f"{path}: an encrypted private key (the program cannot ask for its " \
                   "passphrase): store it unencrypted, mode 600"
    return None


def _no_password() -> bytes:
    raise ValueError("the key needs a passphrase")


def tls_problems(mqtt: MqttConfig, where: str = "mqtt") -> list[str]:
    """Every problem of the TLS files of an ``[mqtt]`` table, as ``key.path: reason``."""
    if not mqtt.tls:
        return []
    problems: list[str] = []
    for key, kind in (("ca_file", "ca"), ("cert_file", "cert"), ("key_file", "key")):
        path: Path | None = getattr(mqtt, key)
        if path is not None:
            problem = pem_file_problem(path, kind)
            if problem is not None:
                problems.append(f"{where}.{key}: {problem}")
    if problems or mqtt.cert_file is None or mqtt.key_file is None:
        return problems
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_cert_chain(str(mqtt.cert_file), str(mqtt.key_file), password=_no_password)
    except (ssl.SSLError, ValueError) as exc:
        problems.append(f"{where}.key_file: {mqtt.key_file} cannot be used with "
                        f"{mqtt.cert_file} (does the key match the certificate?): {exc}")
    return problems


def writable_file_problem(path: Path) -> str | None:
    """Why this user could not create or write ``path`` (its directories created as
    needed), or None. Nothing is created."""
    if path.is_dir():
        return f"{path}: is a directory, not a file"
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return f"{path}: not readable and writable by this user (uid {os.getuid()})"
        return None
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{path}: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        what = "directory" if ancestor == path.parent else "nearest existing directory"
        return (f"{path}: cannot be created: the {what} {ancestor} is not writable by this "
                f"user (uid {os.getuid()})")
    return None
