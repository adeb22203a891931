"""``python -m xanet.inventory.template``: writes the spreadsheet template a province fills
(``config/inventory-template.xlsx``) and the CSV example (``config/inventory-csv/``).

Both are ``config/inventory.example.toml`` exported: every sheet with its columns and
example rows to overwrite, and the workbook's ``readme`` sheet explains each column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xanet.inventory.export import export_tables
from xanet.inventory.load import load_inventory
from xanet.inventory.sheets import write_csv, write_xlsx

CONFIG = Path(__file__).resolve().parents[2] / "config"

#: The readme sheet: one line per sheet and column (docs/inventory.md has the full text).
NOTES: list[list[str]] = [
    ["xanet inventory", "One sheet per table; row 1 names the columns (any order). Import: "
     "xanet inventory import FILE.xlsx --inventory inventory.toml --diff, then --write. "
     "Full reference: docs/inventory.md. Ids: lowercase a-z, 0-9 and '-'. Codes: type them "
     "as text (keep leading zeros). Lists: separate with ',' or ';'."],
    ["province", "code*, name*: one row."],
    ["districts", "code*, name*: optional, pre-2025 only."],
    ["communes", "code*, name*, district: one row per xã/phường."],
    ["sites", "id*, commune*, role* (hub|bts|other), name, parent (site behind whose uplink "
     "it hangs), technologies (2g, 3g, 4g: BTS only), agent (the agent polling it), "
     "operator (VNPT, Viettel, ...)."],
    ["devices", "site*, id*, host (label), monitor (snmp|ping), address (IP or host name "
     "the agent polls), port (161), snmp_version (2c|3), credentials (a name from the "
     "inventory's [credentials.NAME]: never a password), profiles (if-mib, ups-mib, ... or "
     "auto), interval_s (seconds between polls)."],
    ["elements", "site*, device*, service* (fibre|broadband|mobile_2g|mobile_3g|mobile_4g), "
     "interface (ifName; empty: the device itself), ifindex."],
    ["agents", "id*, site* (where the agent's box sits), name."],
    ["", "* = required. Rows left out of a sheet are kept in the inventory (--diff lists "
     "them); an empty cell removes that key from the entry."],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inventory", type=Path, default=CONFIG / "inventory.example.toml")
    parser.add_argument("--xlsx", type=Path, default=CONFIG / "inventory-template.xlsx")
    parser.add_argument("--csv", type=Path, default=CONFIG / "inventory-csv")
    args = parser.parse_args(argv)
    sheets = export_tables(load_inventory(args.inventory))
    write_xlsx(sheets, args.xlsx, NOTES)
    print(args.xlsx)
    for path in write_csv(sheets, args.csv):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
