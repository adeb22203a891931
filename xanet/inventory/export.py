"""An inventory as spreadsheet tables: the rows each sheet gets, in the columns of
:mod:`xanet.inventory.tables`. Pure; the inverse of an import into an empty inventory.
"""

from __future__ import annotations

from typing import Any

from xanet.inventory.index import Inventory
from xanet.inventory.tables import TABLES

#: Table -> (column keys, rows of cells); a list cell is written ``a, b``.
Sheets = dict[str, tuple[list[str], list[list[Any]]]]


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple | list | frozenset | set):
        items = sorted(str(v) for v in value) if isinstance(value, frozenset | set) \
            else [str(v) for v in value]
        return ", ".join(items)
    if isinstance(value, str):
        return str(value)  # StrEnum members as their text
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 120, not 120.0
    return value


def export_tables(inventory: Inventory) -> Sheets:
    """Every table of ``inventory`` as sheet rows (``districts``/``agents`` only when it has
    any); ``[credentials.*]`` and ``[agent_defaults]`` are not sheet material."""
    entries: dict[str, list[dict[str, Any]]] = {
        "province": [inventory.province.model_dump()],
        "districts": [d.model_dump() for d in inventory.districts],
        "communes": [c.model_dump() for c in inventory.communes],
        "sites": [s.model_dump(exclude={"devices"}) for s in inventory.sites],
        "devices": [{**d.model_dump(exclude={"elements"}), "site": s.id}
                    for s in inventory.sites for d in s.devices],
        "elements": [e.model_dump() for e in inventory.elements],
        "agents": [a.model_dump() for a in inventory.agents],
    }
    out: Sheets = {}
    for name, items in entries.items():
        if not items and name in ("districts", "agents"):
            continue
        keys = [c.key for c in TABLES[name].columns]
        rows = [[_cell(item.get(k)) for k in keys] for item in items]
        if name == "devices":  # "monitor" is written only where it is not the default
            at = keys.index("monitor")
            for row in rows:
                row[at] = None if row[at] == "snmp" else row[at]
        out[name] = (keys, rows)
    return out
