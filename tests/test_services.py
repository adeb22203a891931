"""The test harness's real services start, answer, and keep data on restart."""

from __future__ import annotations

import json
import smtplib
import subprocess
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

import lab
from lab import (
    Alertmanager,
    InfluxDB1,
    Mosquitto,
    ServiceError,
    SimInterface,
    SmtpSink,
    Snmpd,
    SnmpSim,
    VictoriaMetrics,
)

IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
SYS_UPTIME = lab.OID_SYS_UPTIME


def run(*cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


# ----------------------------------------------------------------- Mosquitto


def test_mosquitto_round_trip_with_cli_tools(mosquitto: Mosquitto) -> None:
    port = str(mosquitto.port)
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            mosquitto.host,
            "-p",
            port,
            "-t",
            "xanet/test/rt",
            "-C",
            "1",
            "-W",
            "20",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # publish until the subscriber (whose SUBSCRIBE may not be in yet) got one
        while sub.poll() is None:
            run(
                "mosquitto_pub",
                "-h",
                mosquitto.host,
                "-p",
                port,
                "-q",
                "1",
                "-t",
                "xanet/test/rt",
                "-m",
                "hello",
            )
            time.sleep(0.1)
        assert sub.returncode == 0
        assert sub.stdout is not None
        assert sub.stdout.read().strip() == "hello"
    finally:
        sub.kill()
        sub.wait()


def test_mosquitto_persistent_session_survives_restart(
    make_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = make_mosquitto()
    common = ["-h", broker.host, "-p", str(broker.port)]
    sub = ["mosquitto_sub", *common, "-i", "persist-probe", "-c", "-q", "1", "-t", "xanet/p"]
    run(*sub, "-E")  # subscribe with clean session off, then leave
    for i in range(3):
        run("mosquitto_pub", *common, "-q", "1", "-t", "xanet/p", "-m", f"m{i}")
    broker.restart()
    got = run(*sub, "-C", "3", "-W", "15")
    assert got.stdout.split() == ["m0", "m1", "m2"]


def test_mosquitto_autosave_keeps_session_across_kill(
    make_mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = make_mosquitto(extra_conf="autosave_interval 1")
    common = ["-h", broker.host, "-p", str(broker.port)]
    sub = ["mosquitto_sub", *common, "-i", "crash-probe", "-c", "-q", "1", "-t", "xanet/k"]
    run(*sub, "-E")
    run("mosquitto_pub", *common, "-q", "1", "-t", "xanet/k", "-m", "queued")
    time.sleep(2.5)  # > autosave_interval: the queued message is on disk
    broker.kill()
    broker.start()
    assert run(*sub, "-C", "1", "-W", "15").stdout.split() == ["queued"]


def test_mosquitto_bad_config_fails_with_log_tail(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "bad", extra_conf="no_such_option 1")
    with pytest.raises(ServiceError, match="no_such_option"):
        broker.start()
    assert not broker.running


# ------------------------------------------------------------------ InfluxDB


def test_influxdb_write_query(influxdb: InfluxDB1) -> None:
    influxdb.create_database("harness_wq")
    influxdb.write(
        [
            "if_rate,site=s1,iface=eth0 in_bps=12.5,up=true 1700000000000000000",
            "if_rate,site=s1,iface=eth1 in_bps=7 1700000001000000000",
        ],
        db="harness_wq",
    )
    rows = influxdb.query("SELECT * FROM if_rate ORDER BY time", db="harness_wq")
    assert rows == [
        {
            "name": "if_rate",
            "time": 1700000000000000000,
            "iface": "eth0",
            "in_bps": 12.5,
            "site": "s1",
            "up": True,
        },
        {
            "name": "if_rate",
            "time": 1700000001000000000,
            "iface": "eth1",
            "in_bps": 7,
            "site": "s1",
            "up": None,
        },
    ]
    grouped = influxdb.query(
        "SELECT last(in_bps) FROM if_rate GROUP BY iface", db="harness_wq", epoch="s"
    )
    assert grouped == [
        {"name": "if_rate", "iface": "eth0", "time": 1700000000, "last": 12.5},
        {"name": "if_rate", "iface": "eth1", "time": 1700000001, "last": 7},
    ]


def test_influxdb_query_error_raises(influxdb: InfluxDB1) -> None:
    with pytest.raises(ServiceError, match="database not found"):
        influxdb.query("SELECT * FROM x", db="no_such_db")


def test_influxdb_restart_keeps_data(make_influxdb: Callable[..., InfluxDB1]) -> None:
    db = make_influxdb()
    db.create_database("keep")
    db.write("m,t=a v=1 1600000000000000000", db="keep")
    db.restart()
    assert db.query("SELECT v FROM m", db="keep") == [
        {"name": "m", "time": 1600000000000000000, "v": 1}
    ]
    db.kill()
    db.start()
    assert db.query("SELECT v FROM m", db="keep")[0]["v"] == 1


# ----------------------------------------------------------- VictoriaMetrics


def test_victoria_v1_write_and_export(victoria: VictoriaMetrics) -> None:
    # an old timestamp (2015) on purpose: retention must keep it
    r = httpx.post(
        f"{victoria.url}/write",
        params={"precision": "s"},
        content=b"harness_vm,site=s1 in_bps=10,out_bps=20 1420070400\n"
        b"harness_vm,site=s1 in_bps=11 1420070460\n",
    )
    assert r.status_code == 204
    series = victoria.export('{__name__="harness_vm_in_bps"}')
    assert series == [
        {
            "metric": {"__name__": "harness_vm_in_bps", "site": "s1"},
            "values": [10, 11],
            "timestamps": [1420070400000, 1420070460000],
        }
    ]
    assert victoria.export('{__name__="harness_vm_out_bps"}')[0]["values"] == [20]


def test_victoria_restart_keeps_data(make_victoria: Callable[..., VictoriaMetrics]) -> None:
    vm = make_victoria()
    vm.write("keep_vm v=3 1700000000000000000")
    vm.flush()
    vm.restart()
    assert vm.export('{__name__="keep_vm_v"}')[0]["values"] == [3]


# --------------------------------------------------------------------- snmpd


def _lo_ifindex() -> str:
    return Path("/sys/class/net/lo/ifindex").read_text().strip()


def test_snmpd_v2c_serves_this_machines_if_mib(snmpd: Snmpd) -> None:
    lo = _lo_ifindex()
    got = lab.snmpget(
        snmpd.port,
        [SYS_UPTIME, f"{IF_DESCR}.{lo}", f"{IF_NAME}.{lo}", f"{IF_HC_IN_OCTETS}.{lo}"],
        community=snmpd.community,
    )
    assert got[f"{IF_DESCR}.{lo}"] == "lo"
    assert got[f"{IF_NAME}.{lo}"] == "lo"
    assert int(got[SYS_UPTIME]) >= 0
    assert int(got[f"{IF_HC_IN_OCTETS}.{lo}"]) >= 0


def test_snmpd_rejects_wrong_community(snmpd: Snmpd) -> None:
    with pytest.raises(ServiceError, match="Timeout"):
        lab.snmpget(snmpd.port, SYS_UPTIME, community="not-" + snmpd.community)


def test_snmpd_v3_authpriv_and_restart(make_snmpd: Callable[..., Snmpd]) -> None:
    agent = make_snmpd()
    lo = _lo_ifindex()
    assert lab.snmpget(agent.port, f"{IF_DESCR}.{lo}", v3=agent.v3) == {
        f"{IF_DESCR}.{lo}": "lo"
    }
    with pytest.raises(ServiceError):
        lab.snmpget(agent.port, SYS_UPTIME, v3=(agent.v3_user, "wrong-auth-key", "x" * 12))
    agent.restart()
    assert lab.snmpget(agent.port, f"{IF_DESCR}.{lo}", v3=agent.v3)
    assert (agent.persist_dir / "snmpd.conf").exists()  # state stays in the workdir


# ------------------------------------------------------------------- snmpsim


def test_snmprec_values_parses_tags_and_hex(tmp_path: Path) -> None:
    rec = tmp_path / "x.snmprec"
    rec.write_text(
        "1.3.6.1.2.1.1.1.0|4x|56796174746120\n"
        "1.3.6.1.2.1.1.3.0|67|18989541\n"
        "1.3.6.1.2.1.2.2.1.10.1|65:numeric|rate=1,initial=0\n"
        "1.3.6.1.2.1.4.20.1.1.127.0.0.1|64x|7f000001\n"
    )
    assert lab.snmprec_values(rec) == {
        "1.3.6.1.2.1.1.1.0": ("4", "Vyatta "),
        "1.3.6.1.2.1.1.3.0": ("67", "18989541"),
        "1.3.6.1.2.1.2.2.1.10.1": ("65:numeric", "rate=1,initial=0"),
        "1.3.6.1.2.1.4.20.1.1.127.0.0.1": ("64", "\x7f\x00\x00\x01"),
    }


def test_snmpsim_ifx_recording_values(snmpsim: SnmpSim) -> None:
    want = lab.snmprec_values(lab.RECORDING_IFX)
    oids = [SYS_UPTIME] + [
        f"{col}.{i}"
        for i in (1, 4, 5)
        for col in (
            IF_DESCR,
            IF_IN_OCTETS,
            IF_OUT_OCTETS,
            IF_NAME,
            IF_HC_IN_OCTETS,
            IF_HC_OUT_OCTETS,
        )
    ]
    got = lab.snmpget(snmpsim.port, oids, community=lab.COMMUNITY_IFX)
    assert got == {oid: want[oid][1] for oid in oids}
    assert got[f"{IF_NAME}.4"] == "eth1"
    assert int(got[f"{IF_HC_IN_OCTETS}.4"]) > 2**32


def test_snmpsim_iftable_only_recording(snmpsim: SnmpSim) -> None:
    want = lab.snmprec_values(lab.RECORDING_IFTABLE_ONLY)
    oids = [SYS_UPTIME] + [
        f"{col}.{i}" for i in range(1, 10) for col in (IF_DESCR, IF_IN_OCTETS, IF_OUT_OCTETS)
    ]
    got = lab.snmpget(snmpsim.port, oids, community=lab.COMMUNITY_IFTABLE_ONLY)
    assert got == {oid: want[oid][1] for oid in oids}
    assert not any(oid.startswith("1.3.6.1.2.1.31.") for oid in want)
    with pytest.raises(ServiceError, match="No Such"):
        lab.snmpget(
            snmpsim.port, f"{IF_HC_IN_OCTETS}.2", community=lab.COMMUNITY_IFTABLE_ONLY
        )


def _timed_get(port: int, community: str, oids: list[str]) -> tuple[float, float, dict[str, int]]:
    t0 = time.time()
    got = lab.snmpget(port, oids, community=community)
    return t0, time.time(), {k: int(v) for k, v in got.items()}


def test_numeric_recording_counters_advance_at_rate(
    tmp_path: Path, make_snmpsim: Callable[..., SnmpSim]
) -> None:
    rec = lab.write_numeric_recording(
        tmp_path / "num.snmprec",
        interfaces=[
            SimInterface(1, "ge-0/0/0", in_rate=125_000, out_rate=1_000_000),
            # starts 3 s below the Counter32 limit: wraps during the test
            SimInterface(2, "ge-0/0/1", in_rate=1_000, in_initial=2**32 - 3_000, hc=False),
        ],
    )
    sim = make_snmpsim({"numeric": rec})
    rates = {
        SYS_UPTIME: 100,
        f"{IF_IN_OCTETS}.1": 125_000,
        f"{IF_OUT_OCTETS}.1": 1_000_000,
        f"{IF_HC_IN_OCTETS}.1": 125_000,
        f"{IF_HC_OUT_OCTETS}.1": 1_000_000,
        f"{IF_IN_OCTETS}.2": 1_000,
    }
    a0, a1, a = _timed_get(sim.port, "numeric", list(rates))
    time.sleep(3.5)
    b0, b1, b = _timed_get(sim.port, "numeric", list(rates))
    for oid, rate in rates.items():
        modulus = 2**64 if oid.startswith(IF_HC_IN_OCTETS[:-1]) else 2**32
        delta = (b[oid] - a[oid]) % modulus
        # the two samples were taken somewhere inside [a0, a1] and [b0, b1]
        assert rate * (b0 - a1) - 1 <= delta <= rate * (b1 - a0) + 1, oid
    assert b[f"{IF_IN_OCTETS}.2"] < a[f"{IF_IN_OCTETS}.2"]  # it wrapped
    values = lab.snmpget(sim.port, [f"{IF_NAME}.1", f"{IF_DESCR}.2"], community="numeric")
    assert values == {f"{IF_NAME}.1": "ge-0/0/0", f"{IF_DESCR}.2": "ge-0/0/1"}


# ---------------------------------------------------------- alerting sinks


def test_alertmanager_post_and_get(make_alertmanager: Callable[..., Alertmanager]) -> None:
    am = make_alertmanager("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    am.post_alerts(
        [
            {
                "labels": {"alertname": "CommuneDown", "commune": "c1"},
                "annotations": {"summary": "test"},
            }
        ]
    )
    alerts = am.alerts()
    assert [a["labels"] for a in alerts] == [{"alertname": "CommuneDown", "commune": "c1"}]
    assert alerts[0]["status"]["state"] == "active"


def test_smtp_sink_receives_message(smtp_sink: SmtpSink) -> None:
    msg = EmailMessage()
    msg["From"] = "xanet@localhost"
    msg["To"] = "noc@localhost"
    msg["Subject"] = "Commune c1 down"
    msg.set_content(json.dumps({"commune": "c1"}))
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as smtp:
        smtp.send_message(msg)
    got = smtp_sink.messages()
    assert [m["Subject"] for m in got] == ["Commune c1 down"]
    assert json.loads(str(got[0].get_payload())) == {"commune": "c1"}
