"""InfluxDB edges: write line protocol through the v1 or the v2 write API.

Both raise :class:`WriteUnavailable` for what a retry can fix (connection
refused, timeout, 5xx, 429, and 401/403: credentials an operator fixes - the data
waits meanwhile) and :class:`WriteRejected` for what it cannot (other 4xx: the
data itself is wrong). InfluxDB answers a batch with some bad lines with 400
"partial write": the good lines of that batch are stored (collector/sink.py then
singles out the refused ones).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from collector.config import InfluxConfig
from collector.errors import WriteRejected, WriteUnavailable

#: 4xx answers that are about the request's credentials or rate, not its data: retried.
_RETRY_4XX = frozenset({401, 403, 429})


class LineWriter(Protocol):
    async def write(self, lines: list[str]) -> None: ...
    async def close(self) -> None: ...


class InfluxV1Writer:
    """``POST /write?db=&precision=ms`` — InfluxDB 1.x, and 2.x/3.x v1 compatibility."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        params = {"db": cfg.database or "", "precision": "ms"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        auth = (cfg.username, cfg.password.reveal()) if cfg.username and cfg.password else None
        self._client = httpx.AsyncClient(base_url=cfg.url, timeout=cfg.timeout_s, auth=auth)
        self._params = params

    async def write(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        try:
            resp = await self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            raise WriteUnavailable(f"{self.cfg.url}: {exc!r}") from exc
        if resp.status_code == 204:
            return
        detail = f"{self.cfg.url} /write: HTTP {resp.status_code}: {resp.text[:300]}"
        if resp.status_code >= 500 or resp.status_code in _RETRY_4XX:
            raise WriteUnavailable(detail)
        if resp.status_code == 404 and "database not found" in resp.text:
            raise WriteUnavailable(detail)
        raise WriteRejected(detail)

    async def close(self) -> None:
        await self._client.aclose()


class InfluxV2Writer:
    """``POST /api/v2/write`` through influxdb-client (token, org, bucket)."""

    def __init__(self, cfg: InfluxConfig) -> None:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        assert cfg.token is not None and cfg.org and cfg.bucket  # config validation
        self.cfg = cfg
        self.org: str = cfg.org
        self.bucket: str = cfg.bucket
        self._client = InfluxDBClientAsync(
            url=cfg.url, token=cfg.token.reveal(), org=cfg.org, timeout=int(cfg.timeout_s * 1000)
        )
        self._api = self._client.write_api()

    async def write(self, lines: list[str]) -> None:
        from aiohttp import ClientError
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            precision: Any = WritePrecision.MS  # the library types its members as str
            await self._api.write(
                bucket=self.bucket, org=self.org, record=lines, write_precision=precision
            )
        except ApiException as exc:
            detail = f"{self.cfg.url} /api/v2/write: HTTP {exc.status}: {str(exc.body)[:300]}"
            if exc.status is None or exc.status >= 500 or exc.status in _RETRY_4XX:
                raise WriteUnavailable(detail) from exc
            raise WriteRejected(detail) from exc
        except (ClientError, TimeoutError, OSError) as exc:
            raise WriteUnavailable(f"{self.cfg.url}: {exc!r}") from exc

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # untyped in the library


def make_writer(cfg: InfluxConfig) -> LineWriter:
    return InfluxV1Writer(cfg) if cfg.api == "v1" else InfluxV2Writer(cfg)
