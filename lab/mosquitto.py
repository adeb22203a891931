"""Mosquitto 2.x as a real broker on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket

from lab.base import Daemon

MQTT_CONNECT_PROBE = (
    b"\x10\x17"  # CONNECT, remaining length 23
    b"\x00\x04MQTT\x04\x02\x00\x3c"  # MQTT 3.1.1, clean session, keepalive 60
    b"\x00\x0bready-probe"
)


class Mosquitto(Daemon):
    """Mosquitto 2.x broker on 127.0.0.1:port.

    - ``user root`` in the config: mosquitto stays root instead of dropping to
      user ``mosquitto`` (which cannot write into 0700 root-owned temp dirs).
      Mosquitto documents ``user root`` as "stay root".
    - persistence on, in ``<workdir>/data/mosquitto.db``: saved on clean stop()
      (SIGTERM) and every ``autosave_interval`` s (60 here); after kill() only
      what was last saved survives - that is mosquitto's real behaviour.
    - ``max_queued_messages 100000``, ``max_queued_bytes 0`` (no limit).
    - anonymous allowed, client ids as sent (``use_username_as_clientid``, which the
      deployed config has, refuses clients without a user name: tests/test_security.py
      runs that config); ``extra_conf`` is appended verbatim to the config
      (after the listener line, so listener options apply to it). Mosquitto
      accepts a repeated global option and the later one wins, so
      ``extra_conf="autosave_interval 1"`` makes state survive kill() after
      ~1 s (checked in tests/test_services.py).
    - readiness: a real MQTT 3.1.1 CONNECT gets a CONNACK.
    """

    name = "mosquitto"
    start_timeout_s = 15.0

    def __init__(
        self, workdir: str | os.PathLike[str], port: int | None = None, extra_conf: str = ""
    ):
        super().__init__(workdir, port)
        self.extra_conf = extra_conf
        self.conf_path = self.workdir / "mosquitto.conf"
        self.data_dir = self.workdir / "data"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(
            "user root\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "persistence_file mosquitto.db\n"
            "autosave_interval 60\n"
            "max_queued_messages 100000\n"
            "max_queued_bytes 0\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
            "per_listener_settings false\n"
            "allow_anonymous true\n"
            f"listener {self.port} {self.host}\n"
            f"{self.extra_conf}\n"
        )

    def _command(self) -> list[str]:
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf_path)]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.sendall(MQTT_CONNECT_PROBE)
                ack = s.recv(4)
                if ack[:1] == b"\x20" and ack[3:4] == b"\x00":
                    s.sendall(b"\xe0\x00")  # DISCONNECT
                    return True
        except OSError:
            pass
        return False
