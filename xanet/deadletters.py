"""The ``xanet deadletter`` command line (the work is in :mod:`collector.replay`, imported
only when the command runs, so that an agent-only install can build the CLI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _list(args: argparse.Namespace) -> int:
    from collector.replay import cmd_list

    return cmd_list(args)


def _replay(args: argparse.Namespace) -> int:
    from collector.replay import cmd_replay

    return cmd_replay(args)


def add_parser(sub: Any) -> None:
    """Register ``xanet deadletter list|replay`` on the CLI's subparsers."""
    p = sub.add_parser("deadletter", help="list dead letters; replay them once fixed")
    dsub = p.add_subparsers(dest="deadletter", required=True)
    for name, func, text in (
            ("list", _list, "dead letters: time, reason, id, replayed or not, topic"),
            ("replay", _replay, "put dead letters back through admission, exactly once")):
        c = dsub.add_parser(name, help=text)
        c.add_argument("--config", "-c", type=Path, default=Path("/etc/xanet/collector.toml"))
        c.add_argument("--dir", help="dead-letter directory (default: [ingest] "
                       "dead_letter_dir of the config)")
        c.add_argument("--reason", action="append", help="only this reason (repeatable)")
        c.add_argument("--topic", help="only topics containing this")
        c.add_argument("--id", action="append", help="only this record (repeatable)")
        c.add_argument("--since", help="only records received since (ISO 8601, UTC)")
        if name == "list":
            c.add_argument("--pending", action="store_true", help="hide replayed records")
        else:
            c.add_argument("--correct-clock", action="store_true",
                           help="shift each message by its agent's clock offset measured "
                           "when it arrived")
            c.add_argument("--dry-run", action="store_true")
        c.set_defaults(func=func)
