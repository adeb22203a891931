"""agent.snmp.routing and the poller's choice: which backend polls a target, per its
``backend`` setting, its credentials and the poller's knobs - and the one log line per
device that says so."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from agent.credentials import SnmpV2c, SnmpV3
from agent.snmp import SnmpPoller, SnmpTarget
from agent.snmp.routing import BackendKind, BackendName, backend_for, describe

V2C = SnmpV2c("public")
V3_AES = SnmpV3("u", "authpass-1", "privpass-1", "SHA", "AES")
V3_NOPRIV = SnmpV3("u", "authpass-1", None, "SHA256")
V3_DES = SnmpV3("u", "authpass-1", "privpass-1", "MD5", "DES")
V3_AES256 = SnmpV3("u", "authpass-1", "privpass-1", "SHA512", "AES256")


def target(credentials: SnmpV2c | SnmpV3, backend: str = "auto") -> SnmpTarget:
    return SnmpTarget(device="hub-1/rtr-1", host="127.0.0.1", credentials=credentials,
                      backend=backend)  # type: ignore[arg-type]


# (credentials, target.backend, v2c knob, v3 knob) -> backend
ROUTES: list[tuple[SnmpV2c | SnmpV3, str, BackendKind, BackendKind, BackendName]] = [
    (V2C, "auto", "lean", "lean", "lean-v2c"),
    (V2C, "pysnmp", "lean", "lean", "pysnmp"),
    (V2C, "auto", "pysnmp", "lean", "pysnmp"),
    (V2C, "auto", "lean", "pysnmp", "lean-v2c"),
    (V3_AES, "auto", "lean", "lean", "lean-v3"),
    (V3_NOPRIV, "auto", "lean", "lean", "lean-v3"),
    (V3_AES, "pysnmp", "lean", "lean", "pysnmp"),
    (V3_AES, "auto", "lean", "pysnmp", "pysnmp"),
    (V3_AES, "auto", "pysnmp", "lean", "lean-v3"),
    (V3_DES, "auto", "lean", "lean", "pysnmp"),
    (V3_AES256, "auto", "lean", "lean", "pysnmp"),
]


@pytest.mark.parametrize(("credentials", "choice", "v2c", "v3", "want"), ROUTES)
def test_backend_for(credentials: SnmpV2c | SnmpV3, choice: str, v2c: BackendKind,
                     v3: BackendKind, want: BackendName) -> None:
    assert backend_for(target(credentials, choice), v2c, v3) == want


@pytest.mark.parametrize(
    ("credentials", "backend", "text"),
    [
        (V2C, "lean-v2c", "SNMP backend lean-v2c (v2c)"),
        (V3_AES, "lean-v3", "SNMP backend lean-v3 (v3 SHA/AES)"),
        (V3_NOPRIV, "lean-v3", "SNMP backend lean-v3 (v3 SHA256/noPriv)"),
        (V3_DES, "pysnmp", "SNMP backend pysnmp (v3 MD5/DES)"),
    ],
)
def test_describe_names_backend_and_protocols_never_secrets(
    credentials: SnmpV2c | SnmpV3, backend: BackendName, text: str
) -> None:
    shown = describe(target(credentials), backend)
    assert shown == text
    assert "public" not in shown and "authpass" not in shown and "privpass" not in shown


async def test_the_poller_routes_and_logs_the_choice_once_per_device(
    caplog: pytest.LogCaptureFixture,
) -> None:
    poller = SnmpPoller()
    try:
        with caplog.at_level(logging.INFO, logger="agent.snmp.poller"):
            lean = poller.backend(target(V2C))
            assert poller.backend(target(V2C)) is lean  # one backend for every v2c device
            other = dataclasses.replace(target(V2C), device="hub-1/rtr-2")
            assert poller.backend(other) is lean
            v3 = poller.backend(dataclasses.replace(target(V3_AES), device="hub-1/rtr-3"))
            assert v3 is not lean
            forced = poller.backend(dataclasses.replace(target(V2C, "pysnmp"),
                                                        device="hub-1/rtr-4"))
            assert forced is not lean and forced is not v3
            # The same device switched to pysnmp (a config reload): said again.
            assert poller.backend(target(V2C, "pysnmp")) is forced
        lines = [r.getMessage() for r in caplog.records if r.name == "agent.snmp.poller"]
        assert lines == [
            "device hub-1/rtr-1: SNMP backend lean-v2c (v2c)",
            "device hub-1/rtr-2: SNMP backend lean-v2c (v2c)",
            "device hub-1/rtr-3: SNMP backend lean-v3 (v3 SHA/AES)",
            "device hub-1/rtr-4: SNMP backend pysnmp (v2c)",
            "device hub-1/rtr-1: SNMP backend pysnmp (v2c)",
        ]
        assert all(r.levelno == logging.INFO for r in caplog.records
                   if r.name == "agent.snmp.poller")
    finally:
        poller.close()
