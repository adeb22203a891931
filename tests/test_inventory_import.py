"""The inventory from spreadsheets (issue 18): the province round-trips through .xlsx and
CSV, every bad cell is reported at once with its sheet, row and column, Vietnamese text
survives, and the parsing rules of a cell. File tests: no service needed."""

from __future__ import annotations

import copy
import csv
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from xanet.cli import main
from xanet.inventory import Inventory, load_inventory, parse_inventory
from xanet.inventory.export import export_tables
from xanet.inventory.importer import import_workbooks, inventory_toml
from xanet.inventory.merge import kept
from xanet.inventory.sheets import read_workbook, write_csv, write_xlsx
from xanet.inventory.tables import (
    TABLES,
    CellProblem,
    Column,
    header_key,
    letter,
    read_cell,
    table_of,
)

CONFIG = Path(__file__).resolve().parent.parent / "config"
PROVINCE = CONFIG / "inventory.province.toml"
EXAMPLE = CONFIG / "inventory.example.toml"
#: What a spreadsheet does not carry: kept in the TOML the sheets are imported into.
TOML_ONLY = ("province", "credentials", "agent_defaults")
SHIPPED_PROFILES = {"if-mib", "ups-mib", "entity-sensor", "host-resources",
                    "paloalto-pan-common"}


def toml_only(path: Path) -> dict[str, Any]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if k in TOML_ONLY}


@pytest.fixture(scope="module")
def province() -> Inventory:
    return load_inventory(PROVINCE)


# -- the province round trip ---------------------------------------------------------------

def test_the_province_exported_as_xlsx_imports_back_into_the_same_inventory(
        province: Inventory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "tuyen-quang.xlsx"
    assert main(["inventory", "export", "--inventory", str(PROVINCE), "--xlsx", str(book)]) == 0
    assert set(openpyxl.load_workbook(book, read_only=True).sheetnames) == {
        "province", "communes", "sites", "devices", "elements", "agents"}
    result = import_workbooks(read_workbook([book]), toml_only(PROVINCE),
                              known_profiles=SHIPPED_PROFILES)
    assert result.problems == []
    assert result.inventory == province
    # what --write writes reads back as the same inventory
    text = inventory_toml(result.data, ["test"])
    assert parse_inventory(tomllib.loads(text)) == province
    capsys.readouterr()


def test_the_province_as_csv_files_imports_back_into_the_same_inventory(
        province: Inventory, tmp_path: Path) -> None:
    files = write_csv(export_tables(province), tmp_path, prefix="tuyen-quang-")
    result = import_workbooks(read_workbook(files), toml_only(PROVINCE))
    assert result.problems == []
    assert result.inventory == province


def test_write_merges_into_the_inventory_and_a_second_import_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "inventory.toml"
    target.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    sheets = export_tables(load_inventory(EXAMPLE))
    keys, rows = sheets["devices"]
    rows[0][keys.index("interval_s")] = 30  # one change
    book = tmp_path / "example.xlsx"
    write_xlsx(sheets, book)
    assert main(["inventory", "import", str(book), "-i", str(target), "--diff"]) == 0
    out = capsys.readouterr().out
    assert "~ devices hub-thuong-lam/rtr-1: interval_s: None -> 30" in out
    assert main(["inventory", "import", str(book), "-i", str(target), "--write"]) == 0
    written = load_inventory(target)
    assert written.device("hub-thuong-lam", "rtr-1").interval_s == 30
    assert written.credentials == load_inventory(EXAMPLE).credentials  # TOML-only tables kept
    capsys.readouterr()
    assert main(["inventory", "import", str(book), "-i", str(target), "--diff"]) == 0
    assert "(no change)" in capsys.readouterr().out


def test_entries_absent_from_the_sheets_are_kept_and_listed(tmp_path: Path) -> None:
    base = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    sheets = export_tables(load_inventory(EXAMPLE))
    keys, rows = sheets["sites"]
    sheets["sites"] = (keys, [r for r in rows if r[0] != "hub-lam-binh"])
    keys, rows = sheets["devices"]
    sheets["devices"] = (keys, [r for r in rows if r[0] != "hub-lam-binh"])
    keys, rows = sheets["elements"]
    sheets["elements"] = (keys, [r for r in rows if r[0] != "hub-lam-binh"])
    write_xlsx(sheets, tmp_path / "part.xlsx")
    result = import_workbooks(read_workbook([tmp_path / "part.xlsx"]), base)
    assert result.problems == []
    assert result.inventory == load_inventory(EXAMPLE)
    assert "= sites hub-lam-binh: kept (in no sheet)" in result.kept
    assert "= devices hub-lam-binh/rtr-1: kept (in no sheet)" in result.kept


def test_a_row_updates_only_the_keys_its_sheet_has_columns_for(tmp_path: Path) -> None:
    base = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    path = tmp_path / "devices.csv"
    path.write_text("site,id,port\nhub-thuong-lam,rtr-1,1161\nhub-thuong-lam,sw-9,\n",
                    encoding="utf-8")
    result = import_workbooks(read_workbook([path]), base)
    assert result.problems == [] and result.inventory is not None
    rtr = result.inventory.device("hub-thuong-lam", "rtr-1")
    assert (rtr.port, rtr.address, rtr.profiles) == (1161, "10.8.1.1", ("if-mib", "entity-sensor"))
    assert len(rtr.elements) == 2  # no elements sheet: elements as they were
    assert result.inventory.has_device("hub-thuong-lam", "sw-9")
    assert "+ devices hub-thuong-lam/sw-9" in result.changes


# -- ten planted errors --------------------------------------------------------------------

def planted_workbook(path: Path) -> None:
    """The example's sheets with ten errors, one per cell or row."""
    sheets = export_tables(load_inventory(EXAMPLE))

    def set_cell(table: str, row: int, key: str, value: Any) -> None:
        keys, rows = sheets[table]
        rows[row - 2][keys.index(key)] = value

    def add_row(table: str, **values: Any) -> None:
        keys, rows = sheets[table]
        rows.append([values.get(k) for k in keys])

    assert sheets["sites"][1][5][0] == "bts-na-hang-01"
    set_cell("sites", 7, "commune", "99999")                             # 1 unknown commune
    set_cell("sites", 5, "agent", "agt-nowhere")                         # 2 unknown agent
    set_cell("devices", 3, "address", "10.8.1.300")                      # 3 bad address
    set_cell("devices", 4, "port", 70000)                                # 4 bad port
    set_cell("devices", 5, "profiles", "if-mib, ups-mibb")               # 5 unknown profile
    set_cell("devices", 6, "snmp_version", "v4")                         # 6 wrong SNMP version
    set_cell("devices", 7, "interval_s", 0)                              # 7 bad interval
    add_row("devices", site="hub-na-hang", id="Switch 1", address="10.8.3.2")   # 8 bad id
    add_row("devices", site="hub-thuong-lam", id="olt-1", address="10.8.1.3")   # 9 duplicate
    set_cell("elements", 4, "service", None)                             # 10 missing cell
    write_xlsx(sheets, path)


def test_ten_planted_errors_are_reported_at_once_each_in_its_cell(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "planted.xlsx"
    planted_workbook(book)
    result = import_workbooks(read_workbook([book]), toml_only(EXAMPLE),
                              known_profiles=SHIPPED_PROFILES)
    assert all(isinstance(p, CellProblem) for p in result.problems), result.lines
    found = {(p.sheet.rsplit(" ", 1)[-1], p.row, p.column, p.key): p.reason
             for p in result.problems if isinstance(p, CellProblem)}
    expected = {
        ("sites", 7, "B", "commune"): "unknown commune '99999'",
        ("sites", 5, "G", "agent"): "unknown agent 'agt-nowhere'",
        ("devices", 3, "E", "address"): "not a valid IPv4 address",
        ("devices", 4, "F", "port"): "less than or equal to 65535",
        ("devices", 5, "I", "profiles"): "unknown profile 'ups-mibb'",
        ("devices", 6, "G", "snmp_version"): "not an SNMP version: write 2c or 3 (got 'v4')",
        ("devices", 7, "J", "interval_s"): "greater than or equal to 1",
        ("devices", 11, "B", "id"): "not a valid id",
        ("devices", 12, "B", "id"): "duplicate device 'hub-thuong-lam/olt-1' (first at row 3)",
        ("elements", 4, "C", "service"): "required cell is empty",
    }
    assert len(result.problems) == 10, "\n".join(result.lines)
    assert found.keys() == expected.keys(), "\n".join(result.lines)
    for where, reason in expected.items():
        assert reason in found[where], (where, found[where])
    assert result.lines[0].startswith(f"{book}: sheet ")
    # the command line: every problem on stderr, exit 2, nothing written
    target = tmp_path / "inventory.toml"
    target.write_text(tomli_w.dumps(toml_only(EXAMPLE)), encoding="utf-8")
    before = target.read_bytes()
    assert main(["inventory", "import", str(book), "-i", str(target), "--write"]) == 2
    err = capsys.readouterr().err
    assert "sheet devices row 4, column F (port): " in err
    assert "10 problems, nothing written" in err
    assert target.read_bytes() == before


def test_a_bad_header_is_reported_and_its_sheet_read_no_further(tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("id,commune,rol,name\nhub-x,00691,hub,X\n", encoding="utf-8")
    result = import_workbooks(read_workbook([path]), {})
    lines = result.lines
    assert f"{path} row 1, column C: unknown column 'rol'" in lines[0]
    assert any("required column 'role' is missing" in line for line in lines)


# -- Vietnamese ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_vietnamese_names_survive_in_nfc_whatever_form_they_were_typed_in(
        tmp_path: Path, kind: str) -> None:
    inventory = load_inventory(EXAMPLE)
    sheets = export_tables(inventory)
    keys, rows = sheets["communes"]
    for row in rows:  # as a keyboard that composes nothing would type them
        row[keys.index("name")] = unicodedata.normalize("NFD", row[keys.index("name")])
    keys, rows = sheets["sites"]
    rows[1][keys.index("name")] = "BTS Thượng Lâm 01 (Nà Thuôn) — đồi Khuổi"
    if kind == "xlsx":
        write_xlsx(sheets, tmp_path / "vi.xlsx")
        files = [tmp_path / "vi.xlsx"]
    else:
        files = write_csv(sheets, tmp_path)
    result = import_workbooks(read_workbook(files), toml_only(EXAMPLE))
    assert result.problems == [] and result.inventory is not None
    assert [c.name for c in result.inventory.communes] == [
        "Xã Thượng Lâm", "Xã Lâm Bình", "Xã Nà Hang"]
    assert all(unicodedata.is_normalized("NFC", c.name) for c in result.inventory.communes)
    assert result.inventory.site("bts-thuong-lam-01").name == (
        "BTS Thượng Lâm 01 (Nà Thuôn) — đồi Khuổi")
    text = inventory_toml(result.data, ["tỉnh Tuyên Quang"])
    assert "Xã Thượng Lâm" in text and "tỉnh Tuyên Quang" in text


def test_a_csv_excel_wrote_with_semicolons_and_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "communes.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows([["Code", "Name"], ["00691", "Phường Hà Giang 2"]])
    result = import_workbooks(read_workbook([path]), {"province": {"code": "08", "name": "T"}})
    assert result.problems == [] and result.inventory is not None
    assert result.inventory.commune("00691").name == "Phường Hà Giang 2"


# -- parsing rules (pure) ------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "cell", "value"), [
    ("text", "  Xã Lũng Cú ", "Xã Lũng Cú"),
    ("text", unicodedata.normalize("NFD", "Lũng Cú"), "Lũng Cú"),
    ("text", None, None),
    ("text", "   ", None),
    ("text", 12, "12"),
    ("code", "00691", "00691"),
    ("list", "2g, 4g", ["2g", "4g"]),
    ("list", "VNPT; Viettel;", ["VNPT", "Viettel"]),
    ("int", 161.0, 161),
    ("int", "1161", 1161),
    ("float", "60", 60.0),
    ("float", "7,5", 7.5),
    ("float", 120, 120.0),
    ("version", "v2c", "2c"),
    ("version", "2", "2c"),
    ("version", 3, "3"),
    ("version", "SNMPv3", "3"),
    ("version", "V3", "3"),
])
def test_a_cell_is_read_by_the_rule_of_its_column(kind: str, cell: Any, value: Any) -> None:
    assert read_cell(Column("k", kind), cell) == value  # type: ignore[arg-type]  # a Kind, as str


@pytest.mark.parametrize(("kind", "cell", "reason"), [
    ("code", 691, "format the cell as text"),
    ("int", "161a", "not a whole number"),
    ("int", 1.5, "not a whole number"),
    ("float", "soon", "not a number"),
    ("version", "v1", "not an SNMP version"),
    ("text", True, "a true/false cell"),
])
def test_a_cell_its_column_refuses_says_why(kind: str, cell: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        read_cell(Column("k", kind), cell)  # type: ignore[arg-type]  # a Kind, as str


def test_headers_sheets_and_letters() -> None:
    assert header_key(" SNMP version ") == "snmp_version"
    assert header_key("interval-s") == "interval_s"
    assert [table_of(n) for n in ("Devices", "tuyen-quang-sites", "x_elements", "readme")] == [
        "devices", "sites", "elements", None]
    assert [letter(i) for i in (0, 25, 26, 27, 701, 702)] == ["A", "Z", "AA", "AB", "ZZ", "AAA"]
    assert all(c.key in TABLES[t].model.model_fields for t in TABLES for c in TABLES[t].columns)


def test_an_import_of_no_sheet_changes_nothing_and_keeps_everything() -> None:
    base = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    result = import_workbooks({}, copy.deepcopy(base))
    assert result.changes == []
    assert len(result.kept) == 1 + 3 + 4 + 6 + 9  # districts, communes, agents, sites, devices
    assert result.inventory == load_inventory(EXAMPLE)
    from xanet.inventory.merge import Merged

    assert kept({}, Merged({})) == []


def test_the_shipped_template_and_csv_example_are_the_example_inventory() -> None:
    """config/inventory-template.xlsx and config/inventory-csv/ are what
    ``python -m xanet.inventory.template`` writes: re-run it when the example changes."""
    example = load_inventory(EXAMPLE)
    book = read_workbook([CONFIG / "inventory-template.xlsx"])
    assert "readme" in next(iter(book.values()))
    for books in (book, read_workbook(sorted((CONFIG / "inventory-csv").glob("*.csv")))):
        result = import_workbooks(books, toml_only(EXAMPLE), known_profiles=SHIPPED_PROFILES)
        assert result.problems == []
        assert result.inventory == example


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
               max_size=40))
def test_a_text_cell_reads_as_nfc_and_reading_it_again_changes_nothing(text: str) -> None:
    value = read_cell(Column("name"), text)
    if value is None:
        assert not text.strip()
        return
    assert unicodedata.is_normalized("NFC", value)
    assert read_cell(Column("name"), value) == value
    assert value == unicodedata.normalize("NFC", text).strip()


def test_a_row_the_model_refuses_as_a_whole_is_reported_in_its_row(tmp_path: Path) -> None:
    path = tmp_path / "elements.csv"
    path.write_text("site,device,service,interface,ifindex\n"
                    "hub-thuong-lam,rtr-1,fibre,,3\nhub-thuong-lam,rtr-1,fibre,ge-0/0/0,\n",
                    encoding="utf-8")
    base = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    result = import_workbooks(read_workbook([path]), base)
    assert result.lines == [f"{path} row 2: ifindex needs interface (the element's name)"]
