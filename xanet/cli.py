"""The ``xanet`` command.

    xanet agent --config FILE         run a site agent
    xanet collector --config FILE     run the collector
    xanet check-config FILE...        validate agent, collector and inventory files
    xanet report availability ...     availability per commune and service, province KPIs
    xanet deadletter list|replay ...  dead letters; put them back once the cause is fixed

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
from xanet.deadletters import add_parser as add_deadletter_parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per HTTP request is noise in a program's log; errors still show.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))


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


def _run_program(kind: str, config: Path) -> int:
    """``xanet agent`` / ``xanet collector``: load and check the config, run until signalled."""
    try:
        if kind == "agent":
            from agent.app import Agent as program
            from agent.config import AgentConfig as model
        else:
            from collector.app import Collector as program  # type: ignore[assignment]
            from collector.config import CollectorConfig as model  # type: ignore[assignment]
    except ImportError as exc:
        print(f"xanet {kind}: missing dependency ({exc}); install 'xanet[{kind}]'",
              file=sys.stderr)
        return 2
    cfg: Any = load_model(config, model)
    problems = check_secrets(cfg)
    if problems:
        raise ConfigError(config, problems)

    async def main(stop: asyncio.Event) -> None:
        await program(cfg).run(stop)  # built inside the loop: pysnmp binds to it

    if kind == "agent":  # the agent reads no inventory: keep its models out of the process
        run_until_signalled(main)
        return 0
    from xanet.inventory import InventoryError

    try:
        run_until_signalled(main)
    except InventoryError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


def _cmd_agent(args: argparse.Namespace) -> int:
    return _run_program("agent", args.config)


def _cmd_collector(args: argparse.Namespace) -> int:
    return _run_program("collector", args.config)


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


def _cmd_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from collector.config import CollectorConfig
    from collector.report import render_csv, render_json, render_table
    from collector.reporting import Filters, QueryError, availability_report, parse_time
    from xanet.inventory import InventoryError, load_inventory

    cfg = load_model(args.config, CollectorConfig)
    now = datetime.now(UTC)
    try:
        start, end = parse_time(args.since, now), parse_time(args.until, now)
    except ValueError as exc:
        print(f"xanet report: {exc}", file=sys.stderr)
        return 2
    if end <= start:
        print(f"xanet report: --to ({end.isoformat()}) must be after --from "
              f"({start.isoformat()})", file=sys.stderr)
        return 2
    inventory = None
    if cfg.inventory is not None:
        try:
            inventory = load_inventory(cfg.inventory.path)
        except InventoryError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    filters = Filters(args.province, args.commune, args.service)
    try:
        report = availability_report(cfg, inventory, start, end, filters,
                                     target_pct=args.target)
    except QueryError as exc:
        print(f"xanet report: {exc}", file=sys.stderr)
        return 1
    lang = args.lang or cfg.report.lang
    if args.format == "json":
        print(render_json(report, lang))
    elif args.format == "csv":
        print(render_csv(report, lang, part="kpis" if args.kpis else "rows"), end="")
    else:
        print(render_table(report, lang))
    return 0


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
    p = sub.add_parser("report", help="reports read back from InfluxDB")
    rsub = p.add_subparsers(dest="report", required=True)
    r = rsub.add_parser("availability",
                        help="availability, downtime, outages and coverage per commune and "
                        "service; share of communes meeting the target per service")
    r.add_argument("--config", "-c", type=Path, default=Path("/etc/xanet/collector.toml"),
                   help="collector config: InfluxDB, inventory, report defaults")
    r.add_argument("--from", dest="since", default="-24h",
                   help="start: now, -24h, -7d, 2026-11-01, ISO 8601 (default -24h)")
    r.add_argument("--to", dest="until", default="now", help="end (default now)")
    r.add_argument("--province")
    r.add_argument("--commune", help="commune code")
    r.add_argument("--service",
                   choices=["fibre", "broadband", "mobile_2g", "mobile_3g", "mobile_4g"])
    r.add_argument("--format", choices=["table", "csv", "json"], default="table")
    r.add_argument("--kpis", action="store_true", help="with --format csv: the KPI rows")
    r.add_argument("--lang", choices=["vi", "en"], help="default: [report] lang of the config")
    r.add_argument("--target", type=float, help="availability target %% (default: config)")
    r.set_defaults(func=_cmd_report)
    add_deadletter_parser(sub)
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
