"""``python -m xanet.inventory FILE [--official]``: validate an inventory file, summarise it."""

from __future__ import annotations

import argparse
from pathlib import Path

from xanet.inventory.load import InventoryError, load_inventory
from xanet.inventory.official import validate_official_codes


def main(argv: list[str] | None = None) -> int:
    """``python -m xanet.inventory FILE [--official]``: validate and summarise."""
    parser = argparse.ArgumentParser(prog="python -m xanet.inventory", description=main.__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--official", action="store_true", help="also check codes against vietnam-provinces"
    )
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(args.file)
    except InventoryError as exc:
        print(exc)
        return 1
    bts = inventory.bts_count_by_technology()
    print(
        f"{args.file}: {inventory.province.name} ({inventory.province.code}): "
        f"{len(inventory.communes)} communes, {len(inventory.sites)} sites, "
        f"{len(inventory.elements)} elements; BTS stations "
        + ", ".join(f"{t}={n}" for t, n in bts.items())
    )
    if args.official:
        problems = validate_official_codes(inventory)
        for problem in problems:
            print(f"  - {problem}")
        if problems:
            print(f"{args.file}: {len(problems)} official-code problems")
            return 1
        print(f"{args.file}: codes and names match the official 2025 list")
    return 0
