"""``xanet maintenance add|list|end``: declare, show and end maintenance windows.

The parser lives in :mod:`xanet.cli` (so ``xanet agent`` never imports the collector);
this module does the work: check the input against the inventory, create or expire the
Alertmanager silence, store the window in InfluxDB (collector/maintenance_store.py).
Order of ``add``: read the stored windows (InfluxDB reachable, no duplicate), create
the silence, store the window; if storing fails the silence is expired again, so a
failed command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import getpass
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from collector.config import CollectorConfig
from collector.errors import WriteError
from collector.maintenance import (
    MaintenanceError,
    Scope,
    Window,
    check_target,
    check_times,
    iso,
    matchers,
    parse_duration,
    parse_when,
    scope_labels,
    status,
)
from collector.maintenance_store import load_windows, write_window
from collector.readback import QueryError
from collector.silences import SilenceClient, SilenceError
from xanet.config import load_model
from xanet.inventory import Inventory, InventoryError, load_inventory


class CommandError(Exception):
    """What the user is told (one line, exit status 2 for bad input, 1 otherwise)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _fail(msg: str) -> int:
    print(f"xanet maintenance: {msg}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace, out: TextIO | None = None, now: float | None = None) -> int:
    """Dispatch ``add``/``list``/``end``; every error is one clear line on stderr."""
    now = time.time() if now is None else now
    out = sys.stdout if out is None else out
    try:
        cfg = load_model(args.config, CollectorConfig)
        if cfg.inventory is None:
            raise CommandError(f"{args.config}: needs [inventory] path (sites, devices and "
                               "communes are checked against it)")
        try:
            inventory = load_inventory(cfg.inventory.path)
        except InventoryError as exc:
            raise CommandError(str(exc)) from exc
        if args.action == "add":
            return _add(args, cfg, inventory, now, out)
        if args.action == "list":
            return _list(args, cfg, inventory, now, out)
        return _end(args, cfg, inventory, now, out)
    except (CommandError, MaintenanceError) as exc:
        print(f"xanet maintenance {args.action}: {exc}", file=sys.stderr)
        return exc.status if isinstance(exc, CommandError) else 2
    except QueryError as exc:
        return _fail(f"cannot read the maintenance windows from InfluxDB: {exc}")


def _scope(args: argparse.Namespace) -> tuple[Scope, str]:
    if args.site:
        return "site", args.site
    if args.device:
        return "device", args.device
    return "commune", args.commune


def _add(args: argparse.Namespace, cfg: CollectorConfig, inventory: Inventory, now: float,
         out: TextIO) -> int:
    scope, target = _scope(args)
    check_target(inventory, scope, target)
    start = parse_when(args.start, now)
    if args.end is not None:
        end = parse_when(args.end, now)
    else:
        end = start + parse_duration(args.duration)
    check_times(start, end)
    reason = args.reason.strip()
    if not reason:
        raise CommandError("--reason must say why (it is shown with the window and the silence)")
    who = (args.who or getpass.getuser()).strip()
    window = Window(inventory.province.code, scope, target, start, end, reason, who)
    existing = {w.id: w for w in load_windows(cfg, inventory.province.code)}
    if window.id in existing:
        raise CommandError(f"window {window.id} ({scope} {target} from {iso(start)}) is "
                           "already declared: end it first or pick another start")
    silence_note = ""
    if cfg.alerts.url is None:
        silence_note = "no silence: [alerts] url is not set"
    elif end <= now:
        silence_note = "no silence: the window is already over (declared after the fact)"
    else:
        window = replace(window, silence_id=asyncio.run(_create_silence(cfg, inventory, window)))
    try:
        asyncio.run(write_window(cfg, window))
    except WriteError as exc:
        if window.silence_id:
            asyncio.run(_expire(cfg, window.silence_id))
        raise CommandError(f"cannot store the window in InfluxDB ({exc}); nothing was "
                           "declared", status=1) from exc
    print(f"{window.id}  {scope} {target}  {iso(start)} .. {iso(end)}  ({status(window, now)})",
          file=out)
    print(f"silence {window.silence_id}" if window.silence_id else silence_note, file=out)
    return 0


async def _create_silence(cfg: CollectorConfig, inventory: Inventory, w: Window) -> str:
    assert cfg.alerts.url is not None
    client = SilenceClient(cfg.alerts.url, timeout_s=cfg.alerts.timeout_s)
    try:
        return await client.create(
            matchers(scope_labels(inventory, w.scope, w.target)), start=w.start, end=w.end,
            created_by=w.who, comment=f"xanet maintenance {w.id}: {w.reason}")
    except SilenceError as exc:
        raise CommandError(f"cannot create the Alertmanager silence ({exc}); nothing was "
                           "declared", status=1) from exc
    finally:
        await client.close()


async def _expire(cfg: CollectorConfig, silence_id: str) -> bool:
    assert cfg.alerts.url is not None
    client = SilenceClient(cfg.alerts.url, timeout_s=cfg.alerts.timeout_s)
    try:
        return await client.expire(silence_id)
    finally:
        await client.close()


def _list(args: argparse.Namespace, cfg: CollectorConfig, inventory: Inventory, now: float,
          out: TextIO) -> int:
    windows = load_windows(cfg, inventory.province.code,
                           ending_after=None if args.all else now)
    if args.format == "json":
        json.dump([{"id": w.id, "status": status(w, now), "scope": w.scope,
                    "target": w.target, "start": iso(w.start), "end": iso(w.end),
                    "reason": w.reason, "who": w.who, "silence_id": w.silence_id,
                    "ended": w.ended} for w in windows], out, ensure_ascii=False, indent=1)
        print(file=out)
        return 0
    if not windows:
        print("no maintenance window" + ("" if args.all else " active or scheduled "
                                         "(--all shows past ones)"), file=out)
        return 0
    rows = [("ID", "STATUS", "SCOPE", "TARGET", "START", "END", "WHO", "REASON")]
    rows += [(w.id, status(w, now), w.scope, w.target, iso(w.start), iso(w.end), w.who,
              w.reason) for w in windows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(n) for c, n in zip(r, widths, strict=False)) + "  " + r[-1],
              file=out)
    return 0


def _end(args: argparse.Namespace, cfg: CollectorConfig, inventory: Inventory, now: float,
         out: TextIO) -> int:
    windows = {w.id: w for w in load_windows(cfg, inventory.province.code)}
    w = windows.get(args.id)
    if w is None:
        raise CommandError(_unknown_id(args.id, sorted(windows)))
    if w.ended:
        print(f"{w.id} already ended at {iso(w.end)}", file=out)
        return 0
    if w.end <= now:
        raise CommandError(f"{w.id} is already over (it ended at {iso(w.end)})")
    ended = w.ended_at(now)
    try:
        asyncio.run(write_window(cfg, ended))
    except WriteError as exc:
        raise CommandError(f"cannot store the end of {w.id} in InfluxDB ({exc}); the window "
                           "and its silence are unchanged", status=1) from exc
    note = ""
    if w.silence_id and cfg.alerts.url is not None:
        try:
            expired = asyncio.run(_expire(cfg, w.silence_id))
        except SilenceError as exc:
            raise CommandError(f"{w.id} ended, but its silence {w.silence_id} could not be "
                               f"expired ({exc}): it ends by itself at {iso(w.end)}",
                               status=1) from exc
        note = (f"silence {w.silence_id} expired" if expired
                else f"silence {w.silence_id} was already gone")
    what = "cancelled" if ended.end <= ended.start else f"ended at {iso(ended.end)}"
    print(f"{w.id} {w.scope} {w.target} {what}" + (f"; {note}" if note else ""), file=out)
    return 0


def _unknown_id(wanted: str, ids: Sequence[str]) -> str:
    near = difflib.get_close_matches(wanted, ids, n=3, cutoff=0.6)
    if near:
        return f"no maintenance window {wanted!r}: did you mean {' or '.join(near)}?"
    if ids:
        return (f"no maintenance window {wanted!r} ('xanet maintenance list --all' shows "
                "the ids)")
    return f"no maintenance window {wanted!r}: none is declared"
