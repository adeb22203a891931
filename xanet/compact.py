"""The compact batch: many v1 telemetry messages in one zstd-compressed payload. Pure.

A wire content type next to the JSON of :mod:`xanet.wire`, for an agent's backlog
(docs/data.md, "Compact batches"). A batch is an ordered list of complete
:class:`~xanet.wire.Telemetry` messages of one agent and one site (each keeps its own
``seq``, ``sent``, ``instance`` and polls), laid out in columns by
:mod:`xanet.compact_columns` and compressed with zstd (``zstandard``). It travels on the
site's ``.../batch`` topic, and only to a collector that announced it
(:data:`ENCODING` in its capability message, :mod:`xanet.capabilities`).

Frame: ``XNB`` (magic), version ``1``, flags (bit 0: a zstd dictionary; none is shipped:
BENCHMARKS.md, issue 19, says why), then one zstd frame of the body.

:func:`decode` takes the bounds of :class:`Limits` - the compressed size (the payload
cap), the decompressed size (the decompression-bomb bound), the messages and the polls
of a batch - and validates every message through the same pydantic models as the JSON
path: a message that arrives this way is equal to the one the agent encoded, so its
lines in InfluxDB are those the JSON path writes (tests/test_compact.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zstandard
from pydantic import ValidationError

from xanet import wire
from xanet.compact_columns import BodyError, Writer
from xanet.compact_reader import Reader, TooMany

#: The name of this content type in the collector's capability message.
ENCODING = "zstd-batch-1"
MAGIC = b"XNB"
VERSION = 1
_FLAG_DICTIONARY = 1
HEADER_BYTES = len(MAGIC) + 2
#: zstd level: the backlog is encoded once on the site box and sent over a thin link
#: (BENCHMARKS.md, issue 19: 19 makes 4-5 % fewer bytes than 3, for ~20 µs more per poll).
LEVEL = 19
#: The largest zstd window a batch may ask the decoder for (memory bound, 8 MiB).
MAX_WINDOW_BYTES = 1 << 23


@dataclass(frozen=True, slots=True)
class Limits:
    """What the collector accepts of one batch (its ``[ingest]`` settings)."""

    max_payload_bytes: int = 256 * 1024
    max_decompressed_bytes: int = 16 * 256 * 1024
    max_messages: int = 2000
    max_polls: int = 20_000


@dataclass(frozen=True, slots=True)
class Invalid:
    """One message of a batch that the wire models refuse: the others stand.

    ``payload`` is the message as JSON (what the JSON path would have received), for the
    dead-letter store."""

    reason: str
    detail: str
    payload: bytes


def encode(messages: Sequence[wire.Telemetry], *, level: int = LEVEL) -> bytes:
    """The batch of ``messages``, in their order."""
    return frame(body(messages), level=level)


def body(messages: Sequence[wire.Telemetry]) -> bytes:
    """The uncompressed body (what the decompressed-size bound counts)."""
    return Writer().body(messages)


def frame(data: bytes, *, level: int = LEVEL) -> bytes:
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return MAGIC + bytes([VERSION, 0]) + cctx.compress(data)


def decode(payload: bytes, limits: Limits = Limits()) -> list[wire.Telemetry | Invalid]:
    """The batch's messages, each valid or :class:`Invalid` with its reason.

    Raises :class:`xanet.wire.DecodeError` when the batch as a whole cannot be read:
    ``too_large`` (compressed), ``bad_frame`` (magic, flags, zstd, a malformed body),
    ``unknown_version``, ``too_large_decompressed``, ``too_many_messages``,
    ``too_many_polls``, ``too_many_interfaces``."""
    if len(payload) > limits.max_payload_bytes:
        raise wire.DecodeError("too_large", f"{len(payload)} bytes > {limits.max_payload_bytes}")
    data = unframe(payload, limits.max_decompressed_bytes)
    try:
        raw = Reader(data, max_messages=limits.max_messages,
                     max_polls=limits.max_polls).messages()
    except TooMany as exc:
        raise wire.DecodeError(exc.reason, str(exc)) from exc
    except BodyError as exc:
        raise wire.DecodeError("bad_frame", str(exc)) from exc
    return [_validate(m) for m in raw]


def unframe(payload: bytes, max_decompressed_bytes: int) -> bytes:
    """The body of a batch, never more than ``max_decompressed_bytes`` of it."""
    if payload[:len(MAGIC)] != MAGIC or len(payload) < HEADER_BYTES:
        raise wire.DecodeError("bad_frame", "not a compact batch (no XNB header)")
    version, flags = payload[3], payload[4]
    if version != VERSION:
        raise wire.DecodeError("unknown_version",
                               f"batch version {version}, this collector reads {VERSION}")
    if flags & _FLAG_DICTIONARY:
        raise wire.DecodeError("bad_frame", "a zstd dictionary this collector does not have")
    if flags:
        raise wire.DecodeError("bad_frame", f"unknown flags {flags:#x}")
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_BYTES)
    try:
        # Read one byte past the bound: whatever the frame header claims, no more than
        # that is ever produced.
        with dctx.stream_reader(payload[HEADER_BYTES:], read_across_frames=False) as reader:
            data = bytearray()
            while len(data) <= max_decompressed_bytes:
                chunk = reader.read(max_decompressed_bytes + 1 - len(data))
                if not chunk:
                    break
                data += chunk
    except zstandard.ZstdError as exc:
        raise wire.DecodeError("bad_frame", f"zstd: {exc}") from exc
    if len(data) > max_decompressed_bytes:
        raise wire.DecodeError("too_large_decompressed",
                               f"more than {max_decompressed_bytes} bytes once decompressed")
    return bytes(data)


def _validate(raw: dict[str, Any]) -> wire.Telemetry | Invalid:
    try:
        return wire.Telemetry.model_validate(raw)
    except ValidationError as exc:
        return Invalid("invalid", wire.summarize(exc), _as_json(raw))
    except RecursionError:  # a profile part nested deeper than the models go
        return Invalid("invalid", "nested too deeply", b"")


def _as_json(raw: dict[str, Any]) -> bytes:
    try:
        return json.dumps(raw, default=str, allow_nan=True,
                          separators=(",", ":")).encode("utf-8", "replace")
    except (ValueError, RecursionError):
        return b""
