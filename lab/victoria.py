"""VictoriaMetrics as a real InfluxDB-line-protocol sink on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from typing import Any

import httpx

from lab.base import Daemon, ServiceError, http_ok


class VictoriaMetrics(Daemon):
    """VictoriaMetrics single node on 127.0.0.1:port.

    ``-retentionPeriod=100y`` (points with old timestamps are kept),
    ``-search.latencyOffset=0s`` and ``-search.disableCache`` (no hidden
    recent points, no stale cached answers). Writes: ``/write`` (v1 line
    protocol), ``/api/v2/write`` (influxdb-client). Series name =
    ``{measurement}_{field}``.

    ``flush()`` calls ``/internal/force_flush`` so just-written points are
    searchable; ``export()`` flushes first, then returns one dict per series
    as ``/api/v1/export`` gives it:
    ``{"metric": {"__name__": ..., tag: value ...}, "values": [...],
    "timestamps": [ms, ...]}``.
    """

    name = "victoria-metrics"
    start_timeout_s = 30.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None):
        super().__init__(workdir, port)
        self.url = f"http://{self.host}:{self.port}"
        self.data_dir = self.workdir / "data"

    def _command(self) -> list[str]:
        return [
            shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics",
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]

    def _ready(self) -> bool:
        return http_ok(f"{self.url}/health", (200,))

    def flush(self) -> None:
        r = httpx.get(f"{self.url}/internal/force_flush", timeout=30.0)
        if r.status_code != 200:
            raise ServiceError(f"victoria force_flush {r.status_code}: {r.text}")

    def write(self, lines: str | Iterable[str], precision: str = "ns") -> None:
        """POST InfluxDB v1 line protocol to ``/write``."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        r = httpx.post(
            f"{self.url}/write",
            params={"precision": precision},
            content=body.encode(),
            timeout=30.0,
        )
        if r.status_code not in (200, 204):
            raise ServiceError(f"victoria write {r.status_code}: {r.text}")

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        self.flush()
        r = httpx.post(f"{self.url}/api/v1/export", data={"match[]": match}, timeout=30.0)
        if r.status_code != 200:
            raise ServiceError(f"victoria export {r.status_code}: {r.text}")
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]
