"""``xanet inventory import|export|agent-config``: the inventory from spreadsheets, back to
spreadsheets, and an agent's config rendered from it (docs/inventory.md).

    xanet inventory import FILE.xlsx|FILE.csv... [--inventory OUT.toml] [--diff] [--write]
    xanet inventory export [--inventory FILE] (--xlsx OUT.xlsx | --csv DIR)
    xanet inventory agent-config AGENT_ID [--inventory FILE] [--out FILE] [--broker HOST[:PORT]]

Exit status: 0 done; 2 the sheets or the inventory have problems (every one listed on
stderr with its file, sheet, row and column) or a file cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xanet.config import ConfigError, read_toml

DEFAULT_INVENTORY = Path("/etc/xanet/inventory.toml")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inventory", help="import the inventory from spreadsheets, export "
                       "it, render an agent's config from it")
    isub = p.add_subparsers(dest="action", required=True)
    inv = argparse.ArgumentParser(add_help=False)
    inv.add_argument("--inventory", "-i", type=Path, default=DEFAULT_INVENTORY,
                     help=f"the TOML inventory (default {DEFAULT_INVENTORY})")
    i = isub.add_parser("import", parents=[inv], help="read spreadsheets into the inventory")
    i.add_argument("files", nargs="+", type=Path, help=".xlsx workbooks or .csv files "
                   "(one table each, named by the file: sites.csv)")
    i.add_argument("--diff", action="store_true", help="list what would change")
    i.add_argument("--write", action="store_true", help="write the result to --inventory "
                   "(merged into it when it exists)")
    i.add_argument("--profiles-dir", type=Path, help="user profiles besides the shipped ones "
                   "(the agents' [profiles] dir), for checking profile names")
    i.set_defaults(func=cmd_import)
    e = isub.add_parser("export", parents=[inv], help="write the inventory as spreadsheets")
    out = e.add_mutually_exclusive_group(required=True)
    out.add_argument("--xlsx", type=Path, help="one workbook, one sheet per table")
    out.add_argument("--csv", type=Path, metavar="DIR", help="one CSV file per table")
    e.set_defaults(func=cmd_export)
    a = isub.add_parser("agent-config", parents=[inv], help="render an agent's config")
    a.add_argument("agent_id")
    a.add_argument("--out", "-o", type=Path, help="write here (default: stdout)")
    a.add_argument("--broker", help="HOST or HOST:PORT of the broker (default: the "
                   "inventory's [agent_defaults] mqtt)")
    a.set_defaults(func=cmd_agent_config)


def _known_profiles(directory: Path | None) -> set[str]:
    from agent.profiles.load import catalog_problems

    catalog, problems = catalog_problems(directory)
    if problems:
        raise ConfigError(directory or "profiles", problems)
    return set(catalog)


def cmd_import(args: argparse.Namespace) -> int:
    from xanet.inventory.importer import import_workbooks, inventory_toml
    from xanet.inventory.sheets import SheetError, read_workbook

    try:
        books = read_workbook(args.files)
    except SheetError as exc:
        print(f"xanet inventory import: {exc}", file=sys.stderr)
        return 2
    target: Path = args.inventory
    base = read_toml(target) if target.exists() else {}
    result = import_workbooks(books, base, target=str(target),
                              known_profiles=_known_profiles(args.profiles_dir))
    if args.diff:
        for line in [*result.changes, *result.kept] or ["(no change)"]:
            print(line)
    if result.problems:
        for line in result.lines:
            print(line, file=sys.stderr)
        print(f"xanet inventory import: {len(result.problems)} problems, nothing written",
              file=sys.stderr)
        return 2
    inventory = result.inventory
    assert inventory is not None
    summary = (f"{len(inventory.communes)} communes, {len(inventory.sites)} sites, "
               f"{sum(len(s.devices) for s in inventory.sites)} devices, "
               f"{len(result.changes)} changes")
    if not args.write:
        print(f"{target}: would be {summary} (--write to write it)")
        return 0
    header = ["Imported by `xanet inventory import` from "
              + ", ".join(str(p) for p in args.files)
              + f" at {datetime.now(UTC).isoformat(timespec='seconds')}.",
              "Format: docs/inventory.md. Comments of an earlier version are not kept."]
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(inventory_toml(result.data, header), encoding="utf-8")
    os.replace(tmp, target)
    print(f"{target}: written: {summary}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from xanet.inventory import load_inventory
    from xanet.inventory.export import export_tables
    from xanet.inventory.sheets import SheetError, write_csv, write_xlsx

    sheets = export_tables(load_inventory(args.inventory))
    try:
        if args.xlsx is not None:
            write_xlsx(sheets, args.xlsx)
            print(f"{args.xlsx}: {', '.join(sheets)}")
        else:
            for path in write_csv(sheets, args.csv):
                print(path)
    except SheetError as exc:
        print(f"xanet inventory export: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_agent_config(args: argparse.Namespace) -> int:
    from xanet.inventory import load_inventory
    from xanet.inventory.agentconfig import render_agent_config

    text = render_agent_config(load_inventory(args.inventory), args.agent_id,
                               source=str(args.inventory), broker=args.broker,
                               generated_at=datetime.now(UTC))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"{args.out}: config of agent {args.agent_id}")
    return 0
