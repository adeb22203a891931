"""docs/data.md lists exactly the InfluxDB schema collector/schema.py defines (as
tests/test_configdoc.py checks docs/configuration.md against the config models).

The table's cells are comma-separated lists of backticked names, an explanation in
parentheses after a name, notes after " — "."""

from __future__ import annotations

import re
from pathlib import Path

from collector import schema

DOC = Path(__file__).resolve().parent.parent / "docs" / "data.md"
NAME = re.compile(r"`([a-z_{}]+)`")


def _names(cell: str) -> list[str]:
    """The names a cell lists: its text before " — ", outside parentheses."""
    text = cell.split(" — ", 1)[0]
    depth, code, kept = 0, False, []
    for ch in text:
        if ch == "`":
            code = not code
        elif ch == "(" and not code:
            depth += 1
            continue
        elif ch == ")" and not code:
            depth -= 1
            continue
        if depth == 0:
            kept.append(ch)
    items = [item.strip() for item in "".join(kept).split(",")]
    names = []
    for item in items:
        m = NAME.fullmatch(item)
        assert m, f"docs/data.md schema table: {item!r} in {cell[:60]!r}... is not `a_name`"
        names.append(m.group(1))
    return names


def _documented() -> dict[str, tuple[list[str], list[str]]]:
    doc = DOC.read_text(encoding="utf-8")
    section = doc.split("## InfluxDB schema", 1)[1].split("\n### ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    out: dict[str, tuple[list[str], list[str]]] = {}
    for row in rows:
        name, tags, fields = row.strip().strip("|").split(" | ")
        (measurement,) = _names(name)
        assert measurement not in out, f"{measurement} listed twice"
        out[measurement] = (_names(tags), _names(fields))
    return out


def test_data_md_lists_exactly_the_schema() -> None:
    documented = _documented()
    defined = {m.name: (list(m.tags), list(m.fields)) for m in schema.MEASUREMENTS}
    assert list(documented) == list(defined), "measurements (in the schema's order)"
    for name, (tags, fields) in defined.items():
        doc_tags, doc_fields = documented[name]
        assert doc_tags == tags, f"{name}: tags in docs/data.md {doc_tags} != schema {tags}"
        assert doc_fields == fields, f"{name}: fields in docs/data.md {doc_fields} != {fields}"


def test_the_parser_reads_a_cell() -> None:
    assert _names(" `a` (x, `y`), `b_{c}` (`[s, e)`) — note `z`, more ") == ["a", "b_{c}"]


def test_schema_names_are_unique() -> None:
    names = [m.name for m in schema.MEASUREMENTS]
    assert len(set(names)) == len(names)
    for m in schema.MEASUREMENTS:
        assert len(set(m.tags)) == len(m.tags) and len(set(m.fields)) == len(m.fields), m.name
        assert not set(m.tags) & set(m.fields), f"{m.name}: a name is both tag and field"
