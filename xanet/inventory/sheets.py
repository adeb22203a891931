"""Reading and writing the inventory's spreadsheets: .xlsx workbooks (openpyxl) and CSV
files. The only file I/O of an import or export; what the cells mean is
:mod:`xanet.inventory.tables`.

A workbook holds one sheet per table; a CSV file holds one table, named by its file name
(``sites.csv``, ``tuyen-quang-devices.csv``). CSV is read as UTF-8 (with or without the
byte-order mark Excel writes) and written with it, so Excel opens Vietnamese text intact.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xanet.inventory.export import Sheets

#: Sheet name -> rows of cells (row 1: the column names).
Workbook = dict[str, list[list[Any]]]


class SheetError(ValueError):
    """A file that cannot be read as a spreadsheet (not found, not xlsx, not UTF-8)."""


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError as exc:
        raise SheetError("reading or writing .xlsx needs openpyxl: pip install "
                         "'xanet[inventory]'") from exc
    return openpyxl


def read_workbook(paths: Sequence[Path]) -> dict[Path, Workbook]:
    """Every sheet of every file, by file: an .xlsx file's sheets by name, a CSV file as one
    sheet named by its stem."""
    out: dict[Path, Workbook] = {}
    for path in paths:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            openpyxl = _openpyxl()
            try:
                book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            except (OSError, ValueError, KeyError) as exc:
                raise SheetError(f"{path}: cannot read as a workbook: {exc}") from exc
            try:
                out[path] = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)]
                             for ws in book.worksheets}
            finally:
                book.close()
        elif path.suffix.lower() == ".csv":
            try:
                with path.open(encoding="utf-8-sig", newline="") as fh:
                    sample = fh.read(4096)
                    fh.seek(0)
                    dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else None
                    rows = [list(r) for r in csv.reader(fh, dialect or csv.excel)]
            except UnicodeDecodeError as exc:
                raise SheetError(f"{path}: not UTF-8 text (save the CSV as \"CSV UTF-8\"): "
                                 f"{exc}") from exc
            except (OSError, csv.Error) as exc:
                raise SheetError(f"{path}: cannot read: {exc}") from exc
            out[path] = {path.stem: [[c if c != "" else None for c in r] for r in rows]}
        else:
            raise SheetError(f"{path}: not a spreadsheet (.xlsx or .csv)")
    return out


def write_xlsx(sheets: Sheets, path: Path, notes: list[list[str]] | None = None) -> None:
    """One sheet per table; every text cell typed as text (codes keep their zeros).
    ``notes`` (rows) become a first ``readme`` sheet."""
    openpyxl = _openpyxl()
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    book.remove(book.active)
    if notes:
        ws = book.create_sheet("readme")
        for row in notes:
            ws.append(row)
        ws.column_dimensions["A"].width = 16
        ws.column_dimensions["B"].width = 100
    for name, (keys, rows) in sheets.items():
        ws = book.create_sheet(name)
        ws.append(keys)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(row)
        for column in ws.iter_cols(min_row=1):
            for cell in column:
                if isinstance(cell.value, str) or cell.value is None:
                    cell.number_format = "@"
            width = max(len(str(c.value or "")) for c in column[:200])
            ws.column_dimensions[column[0].column_letter].width = min(40, max(8, width + 2))
        ws.freeze_panes = "A2"
    book.properties.creator = "xanet"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def write_csv(sheets: Sheets, directory: Path, prefix: str = "") -> list[Path]:
    """One ``{prefix}{table}.csv`` per table in ``directory`` (UTF-8 with BOM)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (keys, rows) in sheets.items():
        path = directory / f"{prefix}{name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(keys)
            writer.writerows(["" if c is None else c for c in row] for row in rows)
        written.append(path)
    return written
