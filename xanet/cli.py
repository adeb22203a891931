"""xanet: network availability monitoring for communes (agent, collector, reports).

    xanet agent --config FILE         run a site agent
    xanet agent test --config FILE    poll each device once, send one test message to the
                                      broker, say what failed and why (technicians)
    xanet collector --config FILE     run the collector
    xanet check-config FILE...        validate agent, collector and inventory files (and
                                      every agent against every inventory given)
    xanet report availability ...     availability per commune, site, device, service or
                                      operator; province KPIs
    xanet report outages ...          the outage list, in local time
    xanet report monthly ...          the monthly document (HTML, PDF)
    xanet maintenance add|list|end    declared maintenance windows (and their silences)
    xanet deadletter list|replay ...  dead letters; put them back once the cause is fixed
    xanet inventory import|export     the inventory from and to spreadsheets (.xlsx, .csv)
    xanet inventory agent-config ID   an agent's config rendered from the inventory
    xanet keys generate|id            the core's Ed25519 keys for pushed agent configs
    xanet config publish ...          sign an agent's config, publish it retained

Only ``__main__``-level code here connects SIGINT/SIGTERM to the programs'
stop event; the programs themselves never touch signals.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from xanet.config import ConfigError, load_checked, load_model, parse_model, read_toml
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
    """``xanet agent`` / ``xanet collector``: load and check the config exactly as
    ``xanet check-config`` does (a problem: its lines on stderr, exit 2, no traceback),
    then run until signalled."""
    try:
        if kind == "agent":
            from agent.app import Agent as program
            from agent.config import AgentConfig as model
            from agent.config import check_agent as check
        else:
            from collector.app import Collector as program  # type: ignore[assignment]
            from collector.config import CollectorConfig as model  # type: ignore[assignment]
            from collector.config import check_collector as check  # type: ignore[assignment]
    except ImportError as exc:
        print(f"xanet {kind}: missing dependency ({exc}); install 'xanet[{kind}]'",
              file=sys.stderr)
        return 2
    cfg: Any = load_checked(config, model, check)

    async def main(stop: asyncio.Event) -> None:
        if kind == "collector" and cfg.partition.id is not None:
            from collector.partition import PartitionMember  # owner only while leased

            await PartitionMember(cfg).run(stop)
            return
        await program(cfg).run(stop)  # built inside the loop: pysnmp binds to it

    if kind == "agent":  # the agent reads no inventory: keep its models out of the process
        from agent.errors import SpoolError, UplinkFatal

        try:
            run_until_signalled(main)
        except UplinkFatal as exc:  # the broker refuses this agent's identity: EX_CONFIG
            print(f"xanet agent: {exc}", file=sys.stderr)
            return 78
        except SpoolError as exc:  # the spool cannot even be opened: EX_IOERR
            print(f"xanet agent: {exc}", file=sys.stderr)
            return 74
        return 0
    run_until_signalled(main)  # an InventoryError is a ConfigError: main() reports it
    return 0


def _cmd_agent(args: argparse.Namespace) -> int:
    if args.config is None:
        print("xanet agent: --config FILE is required", file=sys.stderr)
        return 2
    return _run_program("agent", args.config)


def _cmd_agent_test(args: argparse.Namespace) -> int:
    """``xanet agent test``: the work is in agent/fieldtest.py (exit codes there)."""
    from agent.fieldtest import run

    return run(args)


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


def check_file(path: Path, *, secrets: bool = True, files: bool | None = None) -> list[str]:
    """Every problem of one config or inventory file, each prefixed with the file name.

    ``secrets``: read every secret the file points at (and judge the SNMPv3 keys);
    ``files`` (default: as ``secrets``): check the TLS files and paths it names on this
    machine. Both false: the file's text alone (another machine's config)."""
    files = secrets if files is None else files
    try:
        data = read_toml(path)
        kind = _kind_of(data)
        if kind == "agent":
            from agent.config import AgentConfig, check_agent

            agent = parse_model(data, AgentConfig, path)
            problems = check_agent(agent, secrets=secrets, files=files)
        elif kind == "collector":
            from collector.config import CollectorConfig, check_collector

            collector = parse_model(data, CollectorConfig, path)
            problems = check_collector(collector, secrets=secrets, files=files)
        elif kind == "inventory":
            from xanet.inventory import parse_inventory
            from xanet.inventory.agentconfig import agent_defaults_problems

            problems = agent_defaults_problems(parse_inventory(data, str(path)))
        else:
            problems = ["cannot tell what this file is: expected an [agent] table (agent), "
                        "[collector]/[influx] (collector) or [province] with communes/sites "
                        "(inventory)"]
    except ConfigError as exc:  # the inventory's InventoryError is one too
        return str(exc).splitlines()
    return [f"{path}: {p}" for p in problems]


def _cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    valid: list[Path] = []
    for path in args.files:
        found = check_file(Path(path), secrets=not args.no_secrets)
        problems.extend(found)
        if not found:
            print(f"{path}: ok")
            valid.append(Path(path))
            for line in _polls(Path(path)):
                print(f"{path}: {line}")
    problems.extend(cross_check_files(valid))
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def _polls(path: Path) -> list[str]:
    """What the devices of a valid agent config poll (agent/pollplan.py); [] for others."""
    data = read_toml(path)
    if _kind_of(data) != "agent":
        return []
    from agent.config import AgentConfig
    from agent.pollplan import poll_summary

    return poll_summary(parse_model(data, AgentConfig, path))


def cross_check_files(paths: Sequence[Path]) -> list[str]:
    """Every valid agent config against every valid inventory (xanet/crosscheck.py)."""
    kinds = {p: _kind_of(read_toml(p)) for p in paths}
    agents = [p for p, k in kinds.items() if k == "agent"]
    inventories = [p for p, k in kinds.items() if k == "inventory"]
    if not agents or not inventories:
        return []
    from agent.config import AgentConfig
    from xanet.crosscheck import AgentDevice, cross_check
    from xanet.inventory import load_inventory

    problems: list[str] = []
    for inv_path in inventories:
        inventory = load_inventory(inv_path)
        for agent_path in agents:
            cfg = load_model(agent_path, AgentConfig)
            if cfg.agent.province != inventory.province.code:
                continue  # an agent of another province: not this inventory's
            if cfg.remote_config.enabled and not cfg.devices:
                continue  # a bootstrap file: its devices come signed from the inventory
            devices = [AgentDevice(i, d.id, d.site or cfg.agent.site)
                       for i, d in enumerate(cfg.devices)]
            problems += cross_check(str(agent_path), cfg.agent.id, cfg.agent.site, devices,
                                    str(inv_path), inventory)
    return problems


def _cmd_maintenance(args: argparse.Namespace) -> int:
    from collector.maintenance_cli import run

    return run(args)


def _add_maintenance_parser(sub: Any) -> None:
    """``xanet maintenance``: the work is in collector/maintenance_cli.py."""
    p = sub.add_parser("maintenance", help="declare, list and end maintenance windows")
    msub = p.add_subparsers(dest="action", required=True)
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", "-c", type=Path, default=Path("/etc/xanet/collector.toml"),
                        help="collector config: InfluxDB, inventory, Alertmanager")
    a = msub.add_parser("add", parents=[config], help="declare a window (and silence its "
                        "alerts)")
    scope = a.add_mutually_exclusive_group(required=True)
    scope.add_argument("--site", help="site id")
    scope.add_argument("--device", help="SITE/DEVICE")
    scope.add_argument("--commune", help="commune code")
    a.add_argument("--start", default="now",
                   help="now, +2h, now-30m (a past start: declared after the fact), or ISO 8601 "
                   "with its zone (2026-12-01T22:00+07:00)")
    until = a.add_mutually_exclusive_group(required=True)
    until.add_argument("--end", help="as --start")
    until.add_argument("--for", dest="duration", help="duration: 30m, 2h, 1d")
    a.add_argument("--reason", required=True)
    a.add_argument("--who", help="who declares it (default: the login name)")
    ls = msub.add_parser("list", parents=[config], help="active and scheduled windows")
    ls.add_argument("--all", action="store_true", help="past windows too")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    e = msub.add_parser("end", parents=[config], help="end a window now (expires its silence)")
    e.add_argument("id", help="window id, as 'list' shows it (mw-...)")
    p.set_defaults(func=_cmd_maintenance)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xanet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"xanet {_version()}")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("agent", help="run a site agent (or test it: xanet agent test)")
    p.add_argument("--config", "-c", type=Path, help="the agent's config: run the agent")
    p.set_defaults(func=_cmd_agent)
    t = p.add_subparsers(dest="agent_command").add_parser(
        "test", help="poll each device once and send one test message to the broker; "
        "print what failed and its likely causes. Exit 0 all good, 1 a device or the "
        "broker failed, 2 a bad config")
    t.add_argument("--config", "-c", type=Path, required=True)
    t.add_argument("--device", help="only this device (its id, or SITE/ID)")
    t.add_argument("--no-broker", action="store_true", help="devices only: no MQTT")
    t.add_argument("--json", action="store_true", help="a JSON document instead of text")
    t.set_defaults(func=_cmd_agent_test)
    p = sub.add_parser("collector", help="run the collector")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.set_defaults(func=_cmd_collector)
    p = sub.add_parser("check-config", help="validate config and inventory files")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--no-secrets", action="store_true",
                   help="check the files' text alone: read no secret, TLS file or "
                   "directory they name (a config for another machine)")
    p.set_defaults(func=_cmd_check)
    from xanet import report_cli

    report_cli.add_parser(sub)
    _add_maintenance_parser(sub)
    add_deadletter_parser(sub)
    from xanet import inventory_cli

    inventory_cli.add_parser(sub)
    from xanet.configpublish import add_parsers as add_config_parsers

    add_config_parsers(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xanet")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    from xanet.report_cli import join_dash_values, run

    parser = build_parser()
    args = parser.parse_args(join_dash_values(sys.argv[1:] if argv is None else argv))
    _setup_logging(args.log_level)
    try:
        result: int = run(args) if args.command == "report" else args.func(args)
        sys.stdout.flush()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (``xanet report ... | head``): no traceback, no more output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as if killed by SIGPIPE, what shells expect of a cut pipe
    return result


if __name__ == "__main__":
    sys.exit(main())
