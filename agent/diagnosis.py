"""What a failure seen by ``xanet agent test`` likely means on site, in plain words (pure).

One function per witness: an SNMP poll's cause (:data:`xanet.wire.PollCause`, decided by
the agent's error tree, :mod:`agent.errors`), the ICMP echo, the broker's CONNACK and
PUBACK reason codes (MQTT v5; :mod:`agent.acks` hands the PUBACK's back), and a connection
to the broker that never got as far as a CONNACK. Each returns the likely causes, the most
likely first, naming the config key or the device setting to check. Nothing here sends a
packet; the technician tool (:mod:`agent.fieldtest`) asks and prints.
"""

from __future__ import annotations

from typing import Literal

from xanet.wire import PingResult, PollCause

#: How a connection to the broker failed before any CONNACK came back (the edge tells
#: them apart from the library's errors): the port refused the TCP connection; nothing
#: answered in time; TLS refused the broker's certificate (or the broker ours); the
#: broker's name does not resolve; the broker closed the connection; anything else.
ConnectFailure = Literal["refused", "timeout", "tls", "resolve", "closed", "other"]

#: MQTT v5 reason codes (OASIS MQTT 5.0, 2.4) a broker sends in CONNACK, PUBACK or
#: DISCONNECT, by number.
REASON_NAMES: dict[int, str] = {
    0: "Success", 16: "No matching subscribers", 128: "Unspecified error",
    129: "Malformed Packet", 130: "Protocol Error", 131: "Implementation specific error",
    132: "Unsupported Protocol Version", 133: "Client Identifier not valid",
    134: "Bad User Name or Password", 135: "Not authorized", 136: "Server unavailable",
    137: "Server busy", 138: "Banned", 140: "Bad authentication method",
    142: "Session taken over", 144: "Topic Name invalid", 147: "Receive Maximum exceeded",
    149: "Packet too large", 151: "Quota exceeded", 153: "Payload format invalid",
    154: "Retain not supported", 155: "QoS not supported", 156: "Use another server",
    157: "Server moved", 159: "Connection rate exceeded",
}


def reason_name(code: int) -> str:
    """``135 (Not authorized)``: a reason code as the log and the output show it."""
    return f"{code} ({REASON_NAMES.get(code, 'unknown reason code')})"


_AUTH_CAUSES = (
    "wrong authentication key (snmp.auth_key) or protocol (snmp.auth_protocol: SHA, "
    "SHA-256, MD5 ... must be the device's)",
    "unknown user name (snmp.user): not configured on the device, or spelled differently",
    "security level differs from the device's (snmp.security_level authPriv vs authNoPriv)",
    "the device's clock/engine boots changed and it keeps refusing the time window: "
    "restart its SNMP agent",
)
#: An SNMPv3 USM report named in an ``auth`` failure's text, and the likely cause (of
#: :func:`poll_causes`'s list) it puts first.
USM_REPORTS: dict[str, int] = {"WrongDigests": 0, "UnknownUserNames": 1,
                               "UnsupportedSecLevels": 2, "NotInTimeWindows": 3}


def poll_causes(cause: PollCause, *, version: str, host: str, port: int,
                ping: PingResult | None = None, error: str = "") -> tuple[str, ...]:
    """Why an SNMP poll of ``host:port`` (SNMP ``version`` "2c" or "3") failed with
    ``cause``; ``ping``: the ICMP echo taken with it, when the device has it; ``error``:
    the failure's text (the USM report an ``auth`` failure names comes first)."""
    where = f"{host}:{port}"
    if cause == "timeout":
        answered = ping is not None and ping.received > 0
        lost = ping is not None and ping.received == 0
        causes = [
            f"the device answers ICMP echo but not SNMP on {where}: SNMP is off, listens "
            "on another port, or drops this agent's address" if answered else
            f"nothing answers at {host}: wrong address in the config (host), the device is "
            "off or unreachable from this box (cable, VLAN, route, firewall)" if lost else
            f"wrong address or port in the config (host = {host!r}, port = {port}), or the "
            "device is off or unreachable from this box (cable, VLAN, route, firewall)",
        ]
        if version == "2c":
            causes.append("wrong community: an SNMP v2c device stays silent on a community "
                          "it does not know (snmp.community)")
        else:
            causes.append("wrong privacy key or protocol (snmp.priv_key, priv_protocol): "
                          "the device cannot decrypt the request and stays silent")
        causes += [
            "the device's SNMP access list (ACL, trusted hosts) does not include this box's "
            "address",
            "SNMP agent on the device not enabled or not bound to this interface",
            "a firewall between this box and the device drops UDP port "
            f"{port}" + ("" if answered else "; or the timeout is too short for the link "
                         "(polling.timeout_s, retries)"),
        ]
        return tuple(causes)
    if cause == "auth":
        causes = list(_AUTH_CAUSES)
        first = next((i for name, i in USM_REPORTS.items() if name in error), 0)
        return (causes.pop(first), *causes)
    if cause == "access":
        return ("the community's or user's view on the device does not include the system "
                "group or the IF-MIB interface tables: widen the view (e.g. 'view all "
                "included .1')",
                "a read-only access list on the device that excludes these objects")
    if cause == "resolve":
        return (f"the host name {host!r} does not resolve on this box: check /etc/hosts or "
                "the DNS server (resolv.conf), or put the IP address in host",)
    if cause == "config":
        return ("this box cannot use the configured credentials: a secret file unreadable "
                "or missing, a key too short, a cipher the installed libraries lack "
                "(run 'xanet check-config' on this box)",
                "an address family this box cannot use (IPv6 disabled)")
    if cause == "limit":
        return ("the device's answer exceeded a per-device bound (polling.max_interfaces, "
                "max_walk_bytes, or the device's max_interfaces): raise it if the device "
                "really has that many interfaces",)
    return ("the device answered with an error or a malformed response: its SNMP agent "
            "is faulty, or an SNMP proxy/NAT in between alters packets",
            "another SNMP agent answers on this address (a second device with the same IP)")


def ping_causes(ping: PingResult | None, error: str | None) -> tuple[str, ...]:
    """Why the ICMP echo failed: no reply (``ping.received == 0``), or not sendable at
    all (``error``: the agent's :class:`agent.ping.PingError` text)."""
    if error is not None or ping is None:
        return ("this box cannot send ICMP echo: the agent needs CAP_NET_RAW, or its group in "
                "net.ipv4.ping_group_range (docs/install-agent.md)",)
    return ("the device or a firewall on the path drops ICMP echo (many do on purpose): "
            "then set icmp = false for the device",
            "the device is off or unreachable from this box")


def connect_causes(failure: ConnectFailure, *, host: str, port: int,
                   tls: bool) -> tuple[str, ...]:
    """Why no CONNACK came from the broker at ``host:port``."""
    where = f"{host}:{port}"
    if failure == "refused":
        return (f"nothing listens on {where}: wrong mqtt.port ({'8883' if tls else '1883'} "
                "is usual), or the broker is stopped",
                "a firewall on the way rejects the connection")
    if failure == "timeout":
        return (f"no route to {where}: the site's uplink is down, or a firewall drops the "
                "connection",
                f"wrong broker address (mqtt.host = {host!r})")
    if failure == "tls":
        return ("the broker's certificate is not signed by mqtt.ca_file (wrong CA file), or "
                f"does not name {host!r} (use the host name the certificate was made for)",
                "this box's clock is wrong, so the certificate looks expired or not yet valid "
                "(check the time: timedatectl)",
                "a client certificate the broker requires or refuses (mqtt.cert_file, "
                "key_file)")
    if failure == "resolve":
        return (f"the broker's name {host!r} does not resolve on this box: DNS or "
                "/etc/hosts",)
    if failure == "closed":
        return ("the broker closed the connection: TLS expected but mqtt.tls = false (or the "
                "other way round), or the broker refuses this client",)
    return ("see the error above; check mqtt.host, port and tls",)


def connack_causes(code: int, *, user: str) -> tuple[str, ...]:
    """Why the broker refused the connection with CONNACK reason ``code``."""
    if code in (134, 135, 4, 5, 140):
        # (Mosquitto 2 answers a wrong password with 135 "Not authorized" over v5)
        return (f"wrong password for MQTT user {user} (mqtt.password: the file's content "
                "must be the one issue-agent-credentials.sh wrote)",
                f"user {user} is not in the broker's password file, or the broker was not "
                "reloaded after it was issued (kill -HUP mosquitto)",
                "no mqtt.username: the broker refuses anonymous clients")
    if code == 138:
        return (f"the broker has banned user {user} or this box's address",)
    if code in (133, 2):
        return ("the broker refuses the client id: mqtt.client_id or mqtt.username",)
    if code in (132, 1):
        return ('the broker does not speak this MQTT version: set mqtt.protocol = "3.1.1" '
                "for a broker without v5",)
    if code in (136, 137, 159, 3):
        return ("the broker is overloaded or starting: try again in a minute",)
    return (f"the broker refused the connection ({reason_name(code)}): its log says why",)


def puback_causes(code: int, *, topic: str, user: str) -> tuple[str, ...]:
    """Why the broker refused the test message on ``topic`` with PUBACK reason ``code``."""
    if code == 135:
        return (f"the broker's ACL does not let user {user} write {topic}: the credentials "
                "belong to another site, or [agent] province/commune/site differ from what "
                "they were issued for",
                "the agent's ACL block lacks the test topic line (credentials issued before "
                "it existed): add 'topic write .../test' to the agent's block "
                "(deploy/mosquitto/README.md) and reload the broker")
    if code == 144:
        return (f"the topic {topic} is not valid for the broker",)
    if code == 151:
        return ("the broker's quota for this client is exceeded: try again later",)
    return (f"the broker refused the message ({reason_name(code)}): its log says why",)
