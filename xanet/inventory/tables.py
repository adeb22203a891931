"""The spreadsheet layout of the inventory: which sheets and columns there are, and what a
cell may hold. Pure (cells in, values and problems out).

One sheet (or CSV file) per table, named as the table: ``province``, ``districts``,
``communes``, ``sites``, ``devices``, ``elements``, ``agents``. Row 1 holds the column
names (the inventory's keys; case, spaces and order do not matter), each further row one
entry; empty rows are skipped. A device row names its ``site``, an element row its
``site`` and ``device``. Each cell is read by the rule of its column and then checked by
the inventory's own model for that key, so a cell is refused for exactly the reasons the
TOML value would be. Text is NFC-normalised (Vietnamese typed on any keyboard compares
equal); lists (``technologies``, ``operator``, ``profiles``) are separated by ``,`` or
``;``. A cell that breaks a rule is a :class:`CellProblem` naming sheet, row and column.
"""

from __future__ import annotations

import string
import typing
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from xanet.inventory.model import Agent, Commune, Device, District, Element, Province, Site

Kind = Literal["text", "code", "list", "int", "float", "version"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its key, the rule its cells are read by, whether a row needs it."""

    key: str
    kind: Kind = "text"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """One sheet: the model its rows are checked by, its columns, the columns of its key."""

    name: str
    model: type[BaseModel]
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)


def _cols(*spec: str) -> tuple[Column, ...]:
    """``"code*:code"`` = key ``code``, required, kind ``code``."""
    out = []
    for item in spec:
        name, _, kind = item.partition(":")
        assert kind in typing.get_args(Kind) or not kind, kind
        out.append(Column(name.rstrip("*"), typing.cast(Kind, kind or "text"),
                          name.endswith("*")))
    return tuple(out)


TABLES: Mapping[str, Table] = {t.name: t for t in (
    Table("province", Province, _cols("code*:code", "name*"), ("code",)),
    Table("districts", District, _cols("code*:code", "name*"), ("code",)),
    Table("communes", Commune, _cols("code*:code", "name*", "district:code"), ("code",)),
    Table("sites", Site, _cols("id*", "commune*:code", "role*", "name", "parent",
                               "technologies:list", "agent", "operator:list"), ("id",)),
    Table("devices", Device, _cols("site*", "id*", "host", "monitor", "address", "port:int",
                                   "snmp_version:version", "credentials", "profiles:list",
                                   "interval_s:float"), ("site", "id")),
    Table("elements", Element, _cols("site*", "device*", "service*", "interface",
                                     "ifindex:int"), ()),
    Table("agents", Agent, _cols("id*", "site*", "name"), ("id",)),
)}

#: Sheets an import skips: notes for the people who fill the workbook.
NOTE_SHEETS = frozenset({"readme", "notes", "hướng dẫn", "huong dan"})


@dataclass(frozen=True, slots=True)
class CellProblem:
    """What is wrong, where: ``sheet``, 1-based ``row``, column letter and key (row-wide
    problems have no column)."""

    sheet: str
    row: int
    reason: str
    column: str = ""
    key: str = ""

    def __str__(self) -> str:
        where = f"{self.sheet} row {self.row}"
        if self.column:
            where += f", column {self.column}" + (f" ({self.key})" if self.key else "")
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class Row:
    """One entry read from a sheet: its values by key (absent cell: not in ``values``, empty
    cell: ``None``), and where each key's column is."""

    table: str
    number: int
    values: dict[str, Any]
    letters: dict[str, str] = field(default_factory=dict)

    def key(self) -> tuple[str, ...]:
        return tuple(str(self.values.get(k)) for k in TABLES[self.table].key)


def letter(index: int) -> str:
    """The spreadsheet letter of 0-based column ``index`` (0 -> A, 26 -> AA)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = string.ascii_uppercase[rem] + out
    return out


def header_key(cell: Any) -> str:
    """A column name as its key: ``"SNMP version"`` -> ``snmp_version``."""
    text = unicodedata.normalize("NFC", str(cell or "")).strip().lower()
    return "_".join(text.replace("-", " ").split())


def table_of(sheet: str) -> str | None:
    """The table a sheet (or a CSV file's stem) holds: its name, or a name ending in
    ``-TABLE``/``_TABLE``/``.TABLE``; None for note sheets and anything else."""
    name = header_key(sheet)
    if name in TABLES:
        return name
    for table in TABLES:
        if any(name.endswith(sep + table) for sep in ("_", "-", ".")):
            return table
    return None


def read_cell(column: Column, cell: Any) -> Any:
    """The value of ``cell`` by its column's rule (None: empty). ValueError: why not."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(cell, bool):
        raise ValueError("a true/false cell: write the value as text")
    if column.kind == "int":
        if isinstance(cell, float) and cell.is_integer():
            return int(cell)
        if isinstance(cell, int):
            return cell
        text = str(cell).strip()
        if not text.lstrip("-").isdigit():
            raise ValueError(f"not a whole number (got {text!r})")
        return int(text)
    if column.kind == "float":
        if isinstance(cell, int | float):
            return float(cell)
        try:
            return float(str(cell).strip().replace(",", "."))
        except ValueError:
            raise ValueError(f"not a number (got {str(cell).strip()!r})") from None
    if isinstance(cell, int | float):
        if column.kind == "code":
            raise ValueError(f"a number ({cell!r}): format the cell as text, so the code "
                             "keeps its leading zeros")
        cell = int(cell) if isinstance(cell, float) and cell.is_integer() else cell
    text = unicodedata.normalize("NFC", str(cell)).strip()
    if column.kind == "list":
        return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if column.kind == "version":
        version = text.lower().removeprefix("v").removeprefix("snmpv")
        if version in ("2", "2c"):
            return "2c"
        if version == "3":
            return "3"
        raise ValueError(f"not an SNMP version: write 2c or 3 (got {text!r})")
    return text


_ADAPTERS: dict[tuple[str, str], TypeAdapter[Any]] = {}


def _adapter(table: Table, key: str) -> TypeAdapter[Any]:
    found = _ADAPTERS.get((table.name, key))
    if found is None:
        info = table.model.model_fields[key]
        tp: Any = Annotated[info.annotation, *info.metadata] if info.metadata \
            else info.annotation
        found = _ADAPTERS[(table.name, key)] = TypeAdapter(tp)
    return found


def check_value(table: Table, key: str, value: Any) -> str | None:
    """Why the model refuses ``value`` for ``key``, or None."""
    try:
        _adapter(table, key).validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        return str(err["msg"]).removeprefix("Value error, ")
    return None


def read_rows(sheet: str, table: Table, rows: Sequence[Sequence[Any]],
              known_profiles: Collection[str] | None = None,
              ) -> tuple[list[Row], list[CellProblem], set[tuple[str, ...]]]:
    """The entries of one sheet (row 1: the column names), every problem, and the keys of
    rows refused (so what names them is not reported again as unknown).

    A row whose key cell is bad, or a required cell empty, or that repeats an earlier
    row's key, is refused; a row with another bad cell is kept without that cell (so what
    it holds is still checked against the rest), and the import fails all the same."""
    if not rows:
        return [], [CellProblem(sheet, 1, "empty sheet: row 1 names the columns")], set()
    problems: list[CellProblem] = []
    columns: dict[int, Column] = {}
    for i, cell in enumerate(rows[0]):
        name = header_key(cell)
        if not name:
            continue
        column = table.column(name)
        if column is None:
            known = ", ".join(c.key for c in table.columns)
            problems.append(CellProblem(sheet, 1, f"unknown column {str(cell).strip()!r} "
                                        f"(columns of {table.name}: {known})", letter(i)))
        elif column in columns.values():
            problems.append(CellProblem(sheet, 1, f"column {name!r} twice", letter(i), name))
        else:
            columns[i] = column
    for column in table.columns:
        if column.required and column not in columns.values():
            problems.append(CellProblem(sheet, 1, f"required column {column.key!r} is missing"))
    if problems:
        return [], problems, set()
    out: list[Row] = []
    refused: set[tuple[str, ...]] = set()
    first: dict[tuple[str, ...], int] = {}
    for number, cells in enumerate(rows[1:], start=2):
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        row = Row(table.name, number, {}, {c.key: letter(i) for i, c in columns.items()})
        bad: list[CellProblem] = []
        for i, column in columns.items():
            cell = cells[i] if i < len(cells) else None
            where = (sheet, number)
            try:
                value = read_cell(column, cell)
            except ValueError as exc:
                bad.append(CellProblem(*where, str(exc), letter(i), column.key))
                continue
            if value is None:
                if column.required:
                    bad.append(CellProblem(*where, "required cell is empty", letter(i),
                                           column.key))
                row.values[column.key] = None
                continue
            reason = check_value(table, column.key, value)
            if reason is None and column.key == "profiles" and known_profiles is not None:
                unknown = [p for p in value if p != "auto" and p not in known_profiles]
                if unknown:
                    reason = (f"unknown profile {unknown[0]!r} (known: "
                              f"{', '.join(sorted(known_profiles))}, or \"auto\")")
            if reason is not None:
                bad.append(CellProblem(*where, f"{reason} (got {value!r})"
                                       if "got " not in reason else reason, letter(i),
                                       column.key))
                continue
            row.values[column.key] = value
        if not bad:
            reason = _row_problem(table, row.values)
            if reason is not None:
                bad.append(CellProblem(sheet, number, reason))
        key = tuple(str(_raw(cells, columns, k)) for k in table.key)
        if key and key in first:
            keys = table.key[-1]
            bad.append(CellProblem(sheet, number, f"duplicate {table.name.rstrip('s')} "
                                   f"{'/'.join(key)!r} (first at row {first[key]})",
                                   row.letters.get(keys, ""), keys))
        first.setdefault(key, number)
        problems += bad
        if any(not p.column or p.key in table.key or p.reason == "required cell is empty"
               or p.reason.startswith("duplicate") for p in bad):
            refused.add(key)  # nothing to merge it by: left out
        else:
            out.append(row)  # its good cells merged; a bad one left as it was
    return out, problems, refused


def _row_problem(table: Table, values: Mapping[str, Any]) -> str | None:
    """What the model refuses of the row as a whole (``ifindex`` without ``interface``)."""
    given = {k: v for k, v in values.items() if v is not None}
    if table.name == "devices":
        given.pop("site", None)
        given["site"] = values.get("site")
    try:
        table.model.model_validate(given)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not e["loc"] and e["type"] != "missing"]
        if errors:
            return str(errors[0]["msg"]).removeprefix("Value error, ")
    return None


def _raw(cells: Sequence[Any], columns: Mapping[int, Column], key: str) -> Any:
    for i, column in columns.items():
        if column.key == key:
            cell = cells[i] if i < len(cells) else None
            return unicodedata.normalize("NFC", str(cell)).strip() if cell is not None else None
    return None
