"""The Alertmanager silences edge (v2 API), for declared maintenance.

* ``POST /api/v2/silences`` with a ``postableSilence`` (``matchers``, ``startsAt``,
  ``endsAt``, ``createdBy``, ``comment``) answers ``{"silenceID": "..."}``. Alertmanager
  moves a start in the past to now and refuses an end in the past (400).
* ``DELETE /api/v2/silence/{id}`` expires a silence (200, also when it already
  expired; 500 "silence not found" for an unknown id).
* ``GET /api/v2/silence/{id}`` returns it with ``status.state``
  (``active``/``pending``/``expired``).

Library errors are translated here into :class:`SilenceError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from collector.alertmanager import iso


class SilenceError(Exception):
    """Alertmanager did not do what was asked; the message says what and why."""


class SilenceClient:
    def __init__(self, url: str, *, timeout_s: float = 10.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.base = url.rstrip("/") + "/api/v2"
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = self.base + path
        try:
            return await self._client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise SilenceError(f"alertmanager {url} unreachable: {exc!r}") from exc

    async def create(self, matchers: Sequence[Mapping[str, Any]], *, start: float, end: float,
                     created_by: str, comment: str) -> str:
        """Create a silence; return its id."""
        body = {"matchers": list(matchers), "startsAt": iso(start), "endsAt": iso(end),
                "createdBy": created_by, "comment": comment}
        r = await self._request("POST", "/silences", json=body)
        if r.status_code != 200:
            raise SilenceError(f"alertmanager refused the silence: HTTP {r.status_code}: "
                               f"{r.text[:300]}")
        sid = r.json().get("silenceID")
        if not isinstance(sid, str) or not sid:
            raise SilenceError(f"alertmanager answered without a silence id: {r.text[:300]}")
        return sid

    async def expire(self, silence_id: str) -> bool:
        """Expire a silence; False if Alertmanager does not know it (any more)."""
        r = await self._request("DELETE", f"/silence/{silence_id}")
        if r.status_code == 200:
            return True
        if "not found" in r.text or r.status_code in (404, 422):
            return False
        raise SilenceError(f"alertmanager could not expire silence {silence_id}: "
                           f"HTTP {r.status_code}: {r.text[:300]}")

    async def get(self, silence_id: str) -> dict[str, Any] | None:
        r = await self._request("GET", f"/silence/{silence_id}")
        if r.status_code in (404, 422) or (r.status_code == 500 and "not found" in r.text):
            return None
        if r.status_code != 200:
            raise SilenceError(f"alertmanager GET silence {silence_id}: HTTP {r.status_code}: "
                               f"{r.text[:300]}")
        out: dict[str, Any] = r.json()
        return out

    async def close(self) -> None:
        await self._client.aclose()
