"""The ``xanet`` command.

    xanet agent --config FILE         run a site agent
    xanet collector --config FILE     run the collector
    xanet check-config FILE...        validate agent, collector and inventory files

Only ``__main__``-level code here connects SIGINT/SIGTERM to the programs'
stop event; the programs themselves never touch signals.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from xanet.config import ConfigError, check_secrets, load_model, read_toml


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)`` on uvloop when available; SIGINT/SIGTERM set ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        import uvloop
    except ImportError:
        asyncio.run(runner())
    else:
        uvloop.run(runner())


def _cmd_agent(args: argparse.Namespace) -> int:
    try:
        from agent.app import Agent
        from agent.config import AgentConfig
    except ImportError as exc:
        print(f"xanet agent: missing dependency ({exc}); install 'xanet[agent]'", file=sys.stderr)
        return 2
    cfg = load_model(args.config, AgentConfig)
    problems = check_secrets(cfg)
    if problems:
        raise ConfigError(args.config, problems)

    async def main(stop: asyncio.Event) -> None:
        await Agent(cfg).run(stop)

    run_until_signalled(main)
    return 0


def _cmd_collector(args: argparse.Namespace) -> int:
    try:
        from collector.app import Collector
        from collector.config import CollectorConfig
    except ImportError as exc:
        print(f"xanet collector: missing dependency ({exc}); install 'xanet[collector]'",
              file=sys.stderr)
        return 2
    cfg = load_model(args.config, CollectorConfig)
    problems = check_secrets(cfg)
    if problems:
        raise ConfigError(args.config, problems)

    async def main(stop: asyncio.Event) -> None:
        await Collector(cfg).run(stop)

    run_until_signalled(main)
    return 0


def _kind_of(data: dict[str, Any]) -> str | None:
    if "agent" in data:
        return "agent"
    if "province" in data and ("communes" in data or "sites" in data):
        return "inventory"
    if {"collector", "influx", "ingest"} & data.keys():
        return "collector"
    return None


def check_file(path: Path, *, secrets: bool = True) -> list[str]:
    """Every problem of one config or inventory file, each prefixed with the file name."""
    try:
        data = read_toml(path)
    except ConfigError as exc:
        return str(exc).splitlines()
    kind = _kind_of(data)
    try:
        if kind == "agent":
            from agent.config import AgentConfig

            model: Any = load_model(path, AgentConfig)
        elif kind == "collector":
            from collector.config import CollectorConfig

            model = load_model(path, CollectorConfig)
        elif kind == "inventory":
            from xanet.inventory import InventoryError, load_inventory

            try:
                load_inventory(path)
            except InventoryError as exc:
                return str(exc).splitlines()
            return []
        else:
            return [f"{path}: cannot tell what this file is: expected an [agent] table (agent), "
                    "[collector]/[influx] (collector) or [province] with communes/sites "
                    "(inventory)"]
    except ConfigError as exc:
        return str(exc).splitlines()
    if secrets:
        return [f"{path}: {p}" for p in check_secrets(model)]
    return []


def _cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for path in args.files:
        found = check_file(Path(path), secrets=not args.no_secrets)
        problems.extend(found)
        if not found:
            print(f"{path}: ok")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xanet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("agent", help="run a site agent")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.set_defaults(func=_cmd_agent)
    p = sub.add_parser("collector", help="run the collector")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.set_defaults(func=_cmd_collector)
    p = sub.add_parser("check-config", help="validate config and inventory files")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--no-secrets", action="store_true",
                   help="do not try to read the secrets the configs point at")
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
