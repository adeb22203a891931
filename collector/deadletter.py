"""Rejected payloads, kept where an operator can inspect them.

One JSON object per line in ``deadletter-YYYYMMDD.jsonl`` under the configured
directory: ``received_at``, ``topic``, ``reason``, ``detail``, ``size`` and the
payload (as text when it is UTF-8, else base64 in ``payload_b64``). Payloads
larger than 64 KiB are truncated (``truncated: true``). The directory is kept
under a byte budget by removing the oldest files.

Inspect with e.g. ``jq -r '.reason' deadletter-*.jsonl | sort | uniq -c``.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

KEEP_BYTES = 64 * 1024


class DeadLetter:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.written = 0

    def keep(self, received_at: datetime, topic: str, reason: str, detail: str,
             payload: bytes) -> None:
        record: dict[str, object] = {
            "received_at": received_at.isoformat(),
            "topic": topic,
            "reason": reason,
            "detail": detail,
            "size": len(payload),
        }
        body = payload[:KEEP_BYTES]
        if len(payload) > KEEP_BYTES:
            record["truncated"] = True
        try:
            record["payload"] = body.decode("utf-8")
        except UnicodeDecodeError:
            record["payload_b64"] = base64.b64encode(body).decode()
        path = self.directory / f"deadletter-{received_at:%Y%m%d}.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.written += 1
        if self.written % 1000 == 0:
            self._trim()

    def _trim(self) -> None:
        files = sorted(self.directory.glob("deadletter-*.jsonl"))
        total = sum(f.stat().st_size for f in files)
        while files and total > self.max_bytes and len(files) > 1:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink()

    def records(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for path in sorted(self.directory.glob("deadletter-*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                out.extend(json.loads(ln) for ln in fh if ln.strip())
        return out
