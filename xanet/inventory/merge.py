"""What an import does to an inventory: rows update or add entries, entries absent from
the sheets are kept, and what changed is listed. Pure (TOML data and rows in, data out).

Entries are matched by their key: a commune or district by ``code``, a site or agent by
``id``, a device by ``site`` and ``id``. A row updates the keys its sheet has columns for
(an empty cell removes an optional key) and leaves the others as they were; a row with a
new key adds an entry after the existing ones. When the workbook has an ``elements``
sheet, the elements of each device it names (or its ``devices`` sheet names) are exactly
its rows. Nothing is deleted: an entry no sheet names is kept and listed by :func:`diff`.
Tables the sheets never hold (``[credentials.*]``, ``[agent_defaults]``) stay as written.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xanet.inventory.tables import TABLES, CellProblem, Row

#: The order tables are merged in: what a row names comes first.
ORDER = ("province", "districts", "communes", "agents", "sites", "devices", "elements")


@dataclass(slots=True)
class Merged:
    """The merged TOML data, the row each entry came from (by the entry's identity), and
    the problems a row causes that only the merge can see."""

    data: dict[str, Any]
    origins: dict[tuple[str, ...], Row] = field(default_factory=dict)
    problems: list[CellProblem] = field(default_factory=list)


def _apply(entry: dict[str, Any], row: Row, skip: Sequence[str] = ()) -> None:
    for key, value in row.values.items():
        if key in skip:
            continue
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value


def merge(base: Mapping[str, Any], rows: Mapping[str, Sequence[Row]],
          sheets: Mapping[str, str]) -> Merged:
    """``base`` (an inventory's TOML data, maybe empty) with every row applied.
    ``sheets`` names each table's sheet for the problems."""
    data = copy.deepcopy(dict(base))
    out = Merged(data)
    for table in ORDER:
        if table not in rows or table == "elements":
            continue
        for row in rows[table]:  # keys are unique per sheet (tables.read_rows)
            _merge_row(out, table, row, sheets[table])
    if "elements" in rows:
        _merge_elements(out, rows.get("devices", ()), rows["elements"], sheets["elements"])
    return out


def _merge_row(out: Merged, table: str, row: Row, sheet: str) -> None:
    data = out.data
    if table == "province":
        if ("province",) in out.origins:
            out.problems.append(CellProblem(sheet, row.number, "one province per inventory "
                                            "(a second row)"))
            return
        entry = data.setdefault("province", {})
        _apply(entry, row)
        out.origins[("province",)] = row
        return
    if table == "devices":
        site_id, device_id = row.key()
        site = next((s for s in data.get("sites", []) if s.get("id") == site_id), None)
        if site is None:
            out.problems.append(CellProblem(sheet, row.number, f"unknown site {site_id!r}",
                                            row.letters["site"], "site"))
            return
        devices = site.setdefault("devices", [])
        entry = next((d for d in devices if d.get("id") == device_id), None)
        if entry is None:
            entry = {"id": device_id}
            devices.append(entry)
        _apply(entry, row, skip=("site",))
        out.origins[("devices", site_id, device_id)] = row
        return
    key_name = TABLES[table].key[0]
    entries = data.setdefault(table, [])
    entry = next((e for e in entries if e.get(key_name) == row.values[key_name]), None)
    if entry is None:
        entry = {key_name: row.values[key_name]}
        entries.append(entry)
    _apply(entry, row)
    out.origins[(table, str(row.values[key_name]))] = row


def _merge_elements(out: Merged, device_rows: Sequence[Row], rows: Sequence[Row],
                    sheet: str) -> None:
    grouped: dict[tuple[str, ...], list[Row]] = {r.key(): [] for r in device_rows}
    for row in rows:
        grouped.setdefault((str(row.values["site"]), str(row.values["device"])), []).append(row)
    for (site_id, device_id), group in grouped.items():
        site = next((s for s in out.data.get("sites", []) if s.get("id") == site_id), None)
        device = None if site is None else next(
            (d for d in site.get("devices", []) if d.get("id") == device_id), None)
        if device is None:
            for row in group:
                out.problems.append(CellProblem(
                    sheet, row.number, f"unknown device {site_id}/{device_id}",
                    row.letters["device"], "device"))
            continue
        elements = []
        for k, row in enumerate(group):
            elements.append({key: v for key, v in row.values.items()
                             if key not in ("site", "device") and v is not None})
            out.origins[("elements", site_id, device_id, str(k))] = row
        if elements:
            device["elements"] = elements
        else:
            device.pop("elements", None)


_PATH = re.compile(r"^([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+)\[(\d+)\])?"
                   r"(?:\.([a-z_]+)\[(\d+)\])?(?:\.([a-z_]+))?: ")


def locate(problem: str, merged: Merged, sheets: Mapping[str, str]) -> CellProblem | None:
    """The cell an inventory problem (``sites[3].devices[1].port: ...``) points at, when
    the entry came from a row; None when it came from the TOML file."""
    m = _PATH.match(problem)
    if m is None:
        return None
    top, i, mid, j, low, k, leaf = m.groups()
    data = merged.data
    try:
        if top == "province":
            identity: tuple[str, ...] = ("province",)
            leaf = mid or leaf
        elif top == "sites" and mid == "devices":
            site = data["sites"][int(i)]
            device = site["devices"][int(j)]
            if low == "elements":
                identity = ("elements", site["id"], device["id"], k)
            else:
                identity, leaf = ("devices", site["id"], device["id"]), low or leaf
        elif top in TABLES and i is not None:
            identity = (top, str(data[top][int(i)][TABLES[top].key[0]]))
            leaf = mid or leaf
        else:
            return None
    except (KeyError, IndexError, TypeError):
        return None
    row = merged.origins.get(identity)
    if row is None:
        return None
    reason = problem[m.end():]
    leaf = leaf or ""
    return CellProblem(sheets[row.table], row.number, reason, row.letters.get(leaf, ""),
                       leaf if leaf in row.letters else "")


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What an import changes, one line each: ``+`` added, ``~`` changed (old -> new per
    key). :func:`kept` lists what no sheet named."""
    lines: list[str] = []
    if before.get("province") != after.get("province"):
        lines.append(f"~ province: {before.get('province')} -> {after.get('province')}")
    for table in ("districts", "communes", "agents", "sites"):
        lines += _diff_entries(table, _by_key(before, table), _by_key(after, table))
    old_devices = _devices(before)
    new_devices = _devices(after)
    lines += _diff_entries("devices", old_devices, new_devices)
    return lines


def kept(before: Mapping[str, Any], merged: Merged) -> list[str]:
    """Entries of ``before`` no row named (kept as they were), one line each."""
    lines = []
    for table in ("districts", "communes", "agents", "sites"):
        for key in _by_key(before, table):
            if (table, key) not in merged.origins:
                lines.append(f"= {table} {key}: kept (in no sheet)")
    for site, device in _devices(before):
        if ("devices", site, device) not in merged.origins:
            lines.append(f"= devices {site}/{device}: kept (in no sheet)")
    return lines


def _by_key(data: Mapping[str, Any], table: str) -> dict[str, dict[str, Any]]:
    key = TABLES[table].key[0]
    return {str(e.get(key)): {k: v for k, v in e.items() if k != "devices"}
            for e in data.get(table, [])}


def _devices(data: Mapping[str, Any]) -> dict[Any, dict[str, Any]]:
    return {(s.get("id"), d.get("id")): d for s in data.get("sites", [])
            for d in s.get("devices", [])}


def _diff_entries(table: str, old: Mapping[Any, dict[str, Any]],
                  new: Mapping[Any, dict[str, Any]]) -> list[str]:
    lines = []
    for key, entry in new.items():
        name = "/".join(key) if isinstance(key, tuple) else key
        if key not in old:
            lines.append(f"+ {table} {name}")
            continue
        changes = [f"{k}: {old[key].get(k)!r} -> {entry.get(k)!r}"
                   for k in sorted(old[key].keys() | entry.keys())
                   if old[key].get(k) != entry.get(k)]
        if changes:
            lines.append(f"~ {table} {name}: " + "; ".join(changes))
    return lines
