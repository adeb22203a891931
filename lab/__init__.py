"""The lab: real daemons and simulated fleets on loopback, for tests, benches and the demo.

Product tooling, not test code: ``tests/``, ``bench/`` and ``deploy/demo/`` import it,
it imports nothing from ``tests/`` (tests/test_layering.py). No pytest in here.

The daemon launchers (one class per real daemon: free port, own workdir, log tail on
failure, SIGKILL in one line; the common API in :mod:`lab.base`) are importable from
the package itself::

    import lab
    with lab.Mosquitto(tmp / "mqtt") as broker:
        ...

The rest is imported from its module: :mod:`lab.fleet` (agent, collector and
inventory configs for a simulated fleet), :mod:`lab.programs` (``xanet`` as a child
process), :mod:`lab.netns` (network namespaces), :mod:`lab.thinlink`, :mod:`lab.cutbacklog`
and :mod:`lab.thinsite` (a site's thin uplink, a cut's backlog, the catch-up measured),
:mod:`lab.bridge` and :mod:`lab.regionload` (a regional broker bridged to the core
across a link cut and healed, a region's numbered telemetry and its audit),
:mod:`lab.big_agent` (an SNMP agent
whose tables never end), :mod:`lab.monthgen` and :mod:`lab.engine_month` (generated
months of data).
"""

from lab.alertmanager import Alertmanager
from lab.base import HOST, Daemon, ServiceError, free_tcp_port, free_udp_port, http_ok
from lab.influx import InfluxDB1
from lab.mosquitto import MQTT_CONNECT_PROBE, Mosquitto
from lab.smtp import SmtpSink
from lab.snmpd import OID_SYS_UPTIME, Snmpd, snmp_env, snmpget
from lab.snmpsim import (
    COMMUNITY_IFTABLE_ONLY,
    COMMUNITY_IFX,
    RECORDING_IFTABLE_ONLY,
    RECORDING_IFX,
    SNMPSIM_DATA_DIR,
    SimInterface,
    SnmpSim,
    recorded_devices,
    snmprec_values,
    write_numeric_recording,
)
from lab.upssim import UpsSim
from lab.victoria import VictoriaMetrics

__all__ = [
    "COMMUNITY_IFTABLE_ONLY",
    "COMMUNITY_IFX",
    "HOST",
    "MQTT_CONNECT_PROBE",
    "OID_SYS_UPTIME",
    "RECORDING_IFTABLE_ONLY",
    "RECORDING_IFX",
    "SNMPSIM_DATA_DIR",
    "Alertmanager",
    "Daemon",
    "InfluxDB1",
    "Mosquitto",
    "ServiceError",
    "SimInterface",
    "SmtpSink",
    "SnmpSim",
    "Snmpd",
    "UpsSim",
    "VictoriaMetrics",
    "free_tcp_port",
    "free_udp_port",
    "http_ok",
    "recorded_devices",
    "snmp_env",
    "snmpget",
    "snmprec_values",
    "write_numeric_recording",
]
