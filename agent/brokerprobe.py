"""The technician's one test message to the broker: connected with the agent's credentials
and TLS, QoS 1, not retained, on the site's test topic; the CONNACK's and PUBACK's reason
codes and what failed (the MQTT edge of ``xanet agent test``, :mod:`agent.fieldtest`).

The client is set up as :mod:`agent.uplink` sets up the agent's (``xanet.mqtt``'s
``connect_kwargs``, the protocol, clean start) but without a Last Will: the test must not
leave an ``offline`` status behind. The PUBACK's reason code comes through
:class:`agent.acks.BrokerAnswers`. The topic (:func:`xanet.topics.probe_topic`) is one no
collector subscribes to, so the core's liveness, availability and duplicate-agent checks
never see the message.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
from datetime import UTC, datetime

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from agent.acks import BrokerAnswers, Refused
from agent.config import AgentConfig
from agent.diagnosis import ConnectFailure
from agent.fieldreport import BrokerResult
from xanet import topics
from xanet.mqtt import connect_kwargs


def probe_message(cfg: AgentConfig, ts: datetime) -> bytes:
    """What the test message says: who sent it and when; nobody parses it."""
    a = cfg.agent
    return json.dumps({"v": 1, "kind": "test", "agent": a.id, "site": a.site,
                       "ts": ts.isoformat().replace("+00:00", "Z"),
                       "note": "xanet agent test: not telemetry, not a status"}).encode()


def connect_failure(exc: BaseException) -> ConnectFailure:
    """Which way a connection failed before its CONNACK (aiomqtt wraps the OS's error in
    an ``MqttError`` with its text; the cause is kept when there is one)."""
    seen = f"{exc} {exc.__cause__ or ''}".lower()
    if isinstance(exc.__cause__, ssl.SSLError) or "certificate" in seen or "ssl" in seen:
        return "tls"
    if "refused" in seen:
        return "refused"
    if "timed out" in seen or isinstance(exc, TimeoutError):
        return "timeout"
    if "name or service" in seen or "nodename" in seen or "temporary failure in name" in seen:
        return "resolve"
    if "closed" in seen or "reset" in seen or "lost" in seen or "eof" in seen:
        return "closed"
    return "other"


async def probe_broker(cfg: AgentConfig) -> BrokerResult:
    """Connect with the agent's credentials and TLS, publish the test message, report the
    CONNACK's and the PUBACK's reason codes."""
    m, a = cfg.mqtt, cfg.agent
    topic = topics.probe_topic(a.province, a.commune, a.site)
    v5 = m.protocol == "5"
    result = BrokerResult(host=m.host, port=m.port, tls=m.tls, user=m.username or
                          "(anonymous)", protocol=m.protocol, topic=topic)
    options: dict[str, object] = (
        {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": True} if v5 else
        {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": True})
    notes = () if v5 else ("MQTT 3.1.1: the broker acknowledges a refused publish like an "
                           "accepted one, so 'accepted' proves the connection only",)
    try:
        client = aiomqtt.Client(**connect_kwargs(m, f"xanet-agent-{a.id}"),
                                **options,  # type: ignore[arg-type]
                                timeout=m.publish_timeout_s)
    except (OSError, ValueError) as exc:  # the TLS files (check-config has seen them)
        return dataclasses.replace(result, failure="tls", error=str(exc))
    answers = BrokerAnswers(client)
    try:
        async with client:
            try:
                code = await answers.publish(topic, probe_message(cfg, datetime.now(UTC)),
                                             qos=1, retain=False,
                                             timeout_s=m.publish_timeout_s)
            except Refused as exc:
                return dataclasses.replace(result, connack=0, puback=exc.code,
                                           error=str(exc), notes=notes)
            except aiomqtt.MqttError as exc:
                return dataclasses.replace(result, connack=0, error=str(exc), notes=notes)
            return dataclasses.replace(result, connack=0, puback=code, notes=notes)
    except MqttConnectError as exc:  # a CONNACK with a failure reason code
        rc = exc.rc
        code = rc if isinstance(rc, int) else int(getattr(rc, "value", 128))
        return dataclasses.replace(result, connack=code, error=str(exc), notes=notes)
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        return dataclasses.replace(result, failure=connect_failure(exc), error=str(exc))
