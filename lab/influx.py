"""InfluxDB 1.x as a real database on a free loopback port (write, query, create)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from typing import Any

import httpx

from lab.base import Daemon, ServiceError, free_tcp_port, http_ok


class InfluxDB1(Daemon):
    """InfluxDB 1.x (``influxd``) with http on 127.0.0.1:port.

    meta/data/wal under workdir (``data_conf``: more ``[data]`` settings); rpc bound to
    another free loopback port;
    reporting, monitor store, udp/graphite/collectd/opentsdb all off.
    Readiness: ``GET /ping`` answers 204.

    ``query()`` returns flattened rows: for every statement, every series and
    every value row, one dict
    ``{"name": <measurement>, **<series tags>, <column>: <value>, ...}``
    e.g. ``{"name": "cpu", "host": "a", "time": 1700000000000000000, "v": 1.5}``.
    ``time`` is an int in ``epoch`` units (default ns); ``epoch=None`` gives
    RFC3339 strings. Tags only appear for GROUP BY tag queries (otherwise
    tags are plain columns). SHOW queries give rows like
    ``{"name": "databases", "name": ...}`` - the column wins over the series
    name when they collide. A statement error raises ``ServiceError``.
    """

    name = "influxdb"
    start_timeout_s = 30.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None,
                 data_conf: str = ""):
        super().__init__(workdir, port)
        #: appended to the ``[data]`` section verbatim, e.g. ``max-series-per-database = 0``
        self.data_conf = data_conf
        self.rpc_port = free_tcp_port()
        self.conf_path = self.workdir / "influxdb.conf"
        self.url = f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        for d in ("meta", "data", "wal"):
            (self.workdir / d).mkdir(exist_ok=True)
        self.conf_path.write_text(
            f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{self.workdir}/meta"
  logging-enabled = false

[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
{self.data_conf}

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  max-body-size = 0

[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false

[continuous_queries]
  log-enabled = false
"""
        )

    def _command(self) -> list[str]:
        return [shutil.which("influxd") or "/usr/bin/influxd", "-config", str(self.conf_path)]

    def _ready(self) -> bool:
        return http_ok(f"{self.url}/ping", (204,))

    # -- helpers (sync httpx)
    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def write(self, lines: str | Iterable[str], db: str, precision: str = "ns") -> None:
        """POST line protocol to ``/write?db=``; raises on a non-204 answer."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        r = httpx.post(
            f"{self.url}/write",
            params={"db": db, "precision": precision},
            content=body.encode(),
            timeout=30.0,
        )
        if r.status_code != 204:
            raise ServiceError(f"influx write {r.status_code}: {r.text}")

    def query_raw(
        self, influxql: str, db: str | None = None, epoch: str | None = "ns"
    ) -> dict[str, Any]:
        params = {"q": influxql}
        if db is not None:
            params["db"] = db
        if epoch is not None:
            params["epoch"] = epoch
        r = httpx.post(f"{self.url}/query", data=params, timeout=30.0)
        if r.status_code != 200:
            raise ServiceError(f"influx query {r.status_code}: {r.text}")
        body: dict[str, Any] = r.json()
        return body

    def query(
        self, influxql: str, db: str | None = None, epoch: str | None = "ns"
    ) -> list[dict[str, Any]]:
        body = self.query_raw(influxql, db, epoch)
        if "error" in body:
            raise ServiceError(f"influx query error: {body['error']}")
        rows: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise ServiceError(f"influx query error: {result['error']}")
            for series in result.get("series", []):
                base: dict[str, Any] = {"name": series.get("name")}
                base.update(series.get("tags") or {})
                cols = series.get("columns", [])
                for values in series.get("values", []):
                    row = dict(base)
                    row.update(zip(cols, values, strict=True))
                    rows.append(row)
        return rows
