"""Fixtures that start real services (the lab's launchers, lab/).

Session-scoped, shared by every test - do not stop, kill or reconfigure them:
``mosquitto``, ``influxdb``, ``victoria``, ``snmpd``, ``snmpsim`` (serving
``lab.COMMUNITY_IFX`` → ``RECORDING_IFX`` and
``lab.COMMUNITY_IFTABLE_ONLY`` → ``RECORDING_IFTABLE_ONLY``).

Function-scoped factories, for a test that needs its own instance (to kill,
restart, or configure it): ``make_mosquitto``, ``make_influxdb``,
``make_victoria``, ``make_snmpd``, ``make_snmpsim``, ``make_alertmanager``,
``make_smtp_sink``. They take the class's arguments minus ``workdir``,
return a *started* instance, and stop it after the test. Also
``smtp_sink`` (a fresh started sink per test).

Tests using any of these fixtures get ``@pytest.mark.integration``
automatically (``pytest -m "not integration"`` runs only the pure tests).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

import lab
from lab import (
    Alertmanager,
    InfluxDB1,
    Mosquitto,
    SmtpSink,
    Snmpd,
    SnmpSim,
    VictoriaMetrics,
)

D = TypeVar("D", bound=lab.Daemon)

_SERVICE_FIXTURES = {
    "mosquitto",
    "influxdb",
    "victoria",
    "snmpd",
    "snmpsim",
    "smtp_sink",
    "make_mosquitto",
    "make_influxdb",
    "make_victoria",
    "make_snmpd",
    "make_snmpsim",
    "make_alertmanager",
    "make_smtp_sink",
}

if TYPE_CHECKING:
    from tests.test_alerting_e2e import TelegramStub


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


def _session_service(daemon: D) -> Iterator[D]:
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def mosquitto(services_dir: Path) -> Iterator[Mosquitto]:
    yield from _session_service(Mosquitto(services_dir / "mosquitto"))


@pytest.fixture(scope="session")
def influxdb(services_dir: Path) -> Iterator[InfluxDB1]:
    yield from _session_service(InfluxDB1(services_dir / "influxdb"))


@pytest.fixture(scope="session")
def victoria(services_dir: Path) -> Iterator[VictoriaMetrics]:
    yield from _session_service(VictoriaMetrics(services_dir / "victoria"))


@pytest.fixture(scope="session")
def snmpd(services_dir: Path) -> Iterator[Snmpd]:
    yield from _session_service(Snmpd(services_dir / "snmpd"))


@pytest.fixture(scope="session")
def snmpsim(services_dir: Path) -> Iterator[SnmpSim]:
    yield from _session_service(lab.recorded_devices(services_dir / "snmpsim"))


def _factory(cls: type[D], tmp_path: Path) -> Iterator[Callable[..., D]]:
    started: list[D] = []
    counter = itertools.count()

    def make(*args: Any, **kwargs: Any) -> D:
        workdir = tmp_path / f"{cls.__name__.lower()}-{next(counter)}"
        daemon = cls(workdir, *args, **kwargs)
        started.append(daemon)
        return daemon.start()

    yield make
    for daemon in reversed(started):
        daemon.stop()


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    yield from _factory(Mosquitto, tmp_path)


@pytest.fixture
def make_influxdb(tmp_path: Path) -> Iterator[Callable[..., InfluxDB1]]:
    yield from _factory(InfluxDB1, tmp_path)


@pytest.fixture
def make_victoria(tmp_path: Path) -> Iterator[Callable[..., VictoriaMetrics]]:
    yield from _factory(VictoriaMetrics, tmp_path)


@pytest.fixture
def make_snmpd(tmp_path: Path) -> Iterator[Callable[..., Snmpd]]:
    yield from _factory(Snmpd, tmp_path)


@pytest.fixture
def make_snmpsim(tmp_path: Path) -> Iterator[Callable[..., SnmpSim]]:
    """``make_snmpsim({community: recording_path, ...})``."""
    yield from _factory(SnmpSim, tmp_path)


@pytest.fixture
def make_alertmanager(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    """``make_alertmanager(config_yaml)``."""
    yield from _factory(Alertmanager, tmp_path)


#: An Alertmanager that sends every group at once (1 s) to one webhook, resolved ones too.
WEBHOOK_AM_CONFIG = """
route:
  receiver: hook
  group_by: [alertname, site]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}/hook
        send_resolved: true
"""


@pytest.fixture
def webhook_am(make_alertmanager: Callable[..., Alertmanager]
               ) -> Iterator[tuple[Alertmanager, TelegramStub]]:
    """An Alertmanager (:data:`WEBHOOK_AM_CONFIG`) and the HTTP sink that keeps its posts."""
    from tests.test_alerting_e2e import TelegramStub as Sink

    with Sink() as hook:  # any HTTP sink that answers 200 keeps the posts
        yield make_alertmanager(WEBHOOK_AM_CONFIG.format(url=hook.url)), hook


@pytest.fixture
def make_smtp_sink(tmp_path: Path) -> Iterator[Callable[..., SmtpSink]]:
    yield from _factory(SmtpSink, tmp_path)


@pytest.fixture
def smtp_sink(make_smtp_sink: Callable[..., SmtpSink]) -> SmtpSink:
    return make_smtp_sink()


@pytest.fixture
def db(influxdb: InfluxDB1) -> str:
    """A fresh database in the session's InfluxDB, for one test."""
    name = f"t_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(name)
    return name
