"""prometheus-alertmanager as a real alert router on a free loopback port."""

from __future__ import annotations

import os
import shutil
from typing import Any

import httpx

from lab.base import Daemon, ServiceError, http_ok


class Alertmanager(Daemon):
    """prometheus-alertmanager on 127.0.0.1:port, no cluster gossip port.

    ``config_yaml`` is written to ``<workdir>/alertmanager.yml``; storage in
    ``<workdir>/data``. Readiness: ``GET /-/ready`` answers 200.
    ``alerts()`` returns ``GET /api/v2/alerts`` (a list of dicts).
    """

    name = "alertmanager"
    start_timeout_s = 30.0

    def __init__(self, workdir: str | os.PathLike[str], config_yaml: str, port: int | None = None):
        super().__init__(workdir, port)
        self.config_yaml = config_yaml
        self.url = f"http://{self.host}:{self.port}"
        self.conf_path = self.workdir / "alertmanager.yml"
        self.data_dir = self.workdir / "data"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(self.config_yaml)

    def _command(self) -> list[str]:
        return [
            shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager",
            f"--config.file={self.conf_path}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def _ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready", (200,))

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        r = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10.0)
        if r.status_code != 200:
            raise ServiceError(f"alertmanager POST {r.status_code}: {r.text}")

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v2/alerts", timeout=10.0)
        if r.status_code != 200:
            raise ServiceError(f"alertmanager GET {r.status_code}: {r.text}")
        result: list[dict[str, Any]] = r.json()
        return result
