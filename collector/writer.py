"""InfluxDB edges: write line protocol through the v1 or the v2 write API.

Both raise :class:`WriteUnavailable` for what a retry can fix (connection
refused, timeout, 5xx, 429, and 401/403: credentials an operator fixes - the data
waits meanwhile) and :class:`WriteRejected` for what it cannot (other 4xx: the
data itself is wrong). InfluxDB answers a batch with some bad lines with 400
"partial write": the good lines of that batch are stored (collector/sink.py then
singles out the refused ones).

Against InfluxDB 1.x a write answered "database not found" makes the v1 writer create
its database (``CREATE DATABASE``, idempotent) and write again; when it may not (no
admin rights, an InfluxDB 2.x/3.x v1 endpoint), it logs once the exact command an
operator runs, and the lines wait (docs/deploy-core.md).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from collector.config import InfluxConfig
from collector.errors import WriteRejected, WriteUnavailable

#: 4xx answers that are about the request's credentials or rate, not its data: retried.
_RETRY_4XX = frozenset({401, 403, 429})

log = logging.getLogger("xanet.collector.writer")


def create_database_statement(database: str) -> str:
    """The InfluxQL that creates ``database`` (an identifier, double-quoted)."""
    quoted = database.replace("\\", "\\\\").replace('"', '\\"')
    return f'CREATE DATABASE "{quoted}"'


def create_database_command(url: str, database: str) -> str:
    """The shell command an operator runs to create ``database`` on the InfluxDB at ``url``."""
    statement = create_database_statement(database).replace("'", "'\\''")
    return f"curl -XPOST '{url.rstrip('/')}/query' --data-urlencode 'q={statement}'"


def _query_failed(resp: httpx.Response) -> str | None:
    """Why a ``/query`` answer is not a success (InfluxDB 1.x answers statement errors
    with 200 and an ``error`` in the results), or None."""
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:300]}"
    try:
        body = resp.json()
    except ValueError:
        return f"not JSON: {resp.text[:300]}"
    if not isinstance(body, dict):
        return f"unexpected answer: {resp.text[:300]}"
    errors = [body["error"]] if "error" in body else []
    errors += [r["error"] for r in body.get("results", []) if isinstance(r, dict) and "error" in r]
    return f"{errors[0]}"[:300] if errors else None


class LineWriter(Protocol):
    async def write(self, lines: list[str]) -> None: ...
    async def close(self) -> None: ...


class InfluxV1Writer:
    """``POST /write?db=&precision=ms`` — InfluxDB 1.x, and 2.x/3.x v1 compatibility."""

    def __init__(self, cfg: InfluxConfig,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.cfg = cfg
        params = {"db": cfg.database or "", "precision": "ms"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        auth = (cfg.username, cfg.password.reveal()) if cfg.username and cfg.password else None
        self._client = httpx.AsyncClient(base_url=cfg.url, timeout=cfg.timeout_s, auth=auth,
                                         transport=transport)
        self._params = params
        #: the refusal to create the database was logged (once, until a create works)
        self._create_refusal_logged = False

    async def write(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        resp = await self._post("/write", params=self._params, content=body)
        if _database_missing(resp) and await self._create_database():
            resp = await self._post("/write", params=self._params, content=body)
        if resp.status_code == 204:
            return
        detail = f"{self.cfg.url} /write: HTTP {resp.status_code}: {resp.text[:300]}"
        if resp.status_code >= 500 or resp.status_code in _RETRY_4XX:
            raise WriteUnavailable(detail)
        if resp.status_code == 404 and "database not found" in resp.text:
            raise WriteUnavailable(detail)
        raise WriteRejected(detail)

    async def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.post(path, **kwargs)
        except httpx.HTTPError as exc:
            raise WriteUnavailable(f"{self.cfg.url}: {exc!r}") from exc

    async def _create_database(self) -> bool:
        """``CREATE DATABASE`` (idempotent); False, logged once, when InfluxDB refuses it."""
        database = self.cfg.database or ""
        resp = await self._post("/query", data={"q": create_database_statement(database)})
        why = _query_failed(resp)
        if why is None:
            log.warning("influxdb: database %r did not exist at %s: created it", database,
                        self.cfg.url)
            self._create_refusal_logged = False
            return True
        if not self._create_refusal_logged:
            self._create_refusal_logged = True
            log.error("influxdb: database %r does not exist at %s and this collector may not "
                      "create it (%s); writes wait until an administrator runs: %s", database,
                      self.cfg.url, why, create_database_command(self.cfg.url, database))
        return False

    async def close(self) -> None:
        await self._client.aclose()


def _database_missing(resp: httpx.Response) -> bool:
    return resp.status_code == 404 and "database not found" in resp.text


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
