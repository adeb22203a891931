"""An import from start to end: sheets read into rows, merged into the inventory, the
result validated, every problem located in its cell, and the TOML written.

Every problem is reported at once: a cell's own (:mod:`xanet.inventory.tables`), a
row's (a duplicate key, an unknown site or device: :mod:`xanet.inventory.merge`), and the
inventory's (an unknown commune, agent or credentials, an address without an agent...),
each in the cell whose row it came from. A row refused for its own cells is left out of
the merge, and what then names it is not reported again as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from xanet.inventory.index import Inventory
from xanet.inventory.load import InventoryError, parse_inventory
from xanet.inventory.merge import Merged, diff, kept, locate, merge
from xanet.inventory.sheets import Workbook
from xanet.inventory.tables import NOTE_SHEETS, TABLES, CellProblem, Row, read_rows, table_of

_UNKNOWN = re.compile(r"unknown (commune|site|agent|district|device) '?([^' ]+?)'?(?:[ ;(]|$)")
_KEY_NAME = {"communes": "commune", "sites": "site", "agents": "agent", "districts": "district",
             "devices": "device"}


@dataclass(slots=True)
class ImportResult:
    """What an import found: ``problems`` (cells first, then the inventory's own lines),
    the merged ``data``, the ``inventory`` when valid, and what would change."""

    data: dict[str, Any]
    inventory: Inventory | None = None
    problems: list[CellProblem | str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


def _label(path: Path, sheet: str) -> str:
    return str(path) if path.suffix.lower() == ".csv" else f"{path}: sheet {sheet}"


def import_workbooks(books: Mapping[Path, Workbook], base: Mapping[str, Any], *,
                     target: str = "inventory.toml",
                     known_profiles: Collection[str] | None = None) -> ImportResult:
    """Merge every table of ``books`` into ``base`` (TOML data; ``{}`` for a new
    inventory) and validate the result as ``target``."""
    problems: list[CellProblem | str] = []
    rows: dict[str, list[Row]] = {}
    labels: dict[str, str] = {}
    refused: dict[str, set[str]] = {name: set() for name in _KEY_NAME.values()}
    for path, book in books.items():
        for sheet, cells in book.items():
            table = table_of(sheet)
            label = _label(path, sheet)
            if table is None:
                if sheet.strip().lower() not in NOTE_SHEETS:
                    problems.append(CellProblem(label, 1, "not a table of the inventory "
                                                f"(sheets: {', '.join(TABLES)}, or readme)"))
                continue
            if table in labels:
                problems.append(CellProblem(label, 1, f"{table} again (first in "
                                            f"{labels[table]})"))
                continue
            labels[table] = label
            found, bad, refused_keys = read_rows(label, TABLES[table], cells, known_profiles)
            rows[table] = found
            problems += bad
            if table in _KEY_NAME:
                refused[_KEY_NAME[table]] |= {"/".join(k) for k in refused_keys}
    merged = merge(base, rows, labels)
    problems += [p for p in merged.problems if not _cascade(p.reason, refused)]
    result = ImportResult(merged.data, changes=diff(base, merged.data),
                          kept=kept(base, merged))
    try:
        result.inventory = parse_inventory(merged.data, target)
    except InventoryError as exc:
        problems += _located(exc.problems, merged, labels, target, refused)
    result.problems = problems
    return result


def _located(found: list[str], merged: Merged, labels: Mapping[str, str], target: str,
             refused: Mapping[str, set[str]]) -> list[CellProblem | str]:
    out: list[CellProblem | str] = []
    for problem in found:
        if _cascade(problem, refused):
            continue
        cell = locate(problem, merged, labels)
        out.append(cell if cell is not None else f"{target}: {problem}")
    return out


def _cascade(reason: str, refused: Mapping[str, set[str]]) -> bool:
    """True when ``reason`` names as unknown an entry whose own row was refused."""
    m = _UNKNOWN.search(reason)
    return m is not None and m.group(2) in refused.get(m.group(1), set())


def inventory_toml(data: Mapping[str, Any], header: list[str]) -> str:
    """The inventory ``data`` as TOML text under a ``# header``; what
    :func:`xanet.inventory.load_inventory` reads back as the same inventory."""
    lines = [f"# {line}" if line else "#" for line in header]
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(_ordered(data))


def _ordered(data: Mapping[str, Any]) -> dict[str, Any]:
    """Tables in the order a person reads an inventory; the rest after them."""
    order = ("province", "agent_defaults", "credentials", "districts", "communes", "agents",
             "sites")
    out = {k: data[k] for k in order if k in data}
    out.update({k: v for k, v in data.items() if k not in out})
    return out
