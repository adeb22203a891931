"""The one vi/en texts table (xanet/texts.py): every text in both languages, templates
that take the same fields in both, and the modules that use it reach only ids it has."""

from __future__ import annotations

import re
import string
from pathlib import Path

from xanet.inventory import SERVICE_LABELS_VI, Service
from xanet.texts import LANGS, MONTHS_EN, TEXTS, table, text

ROOT = Path(__file__).resolve().parent.parent

#: Templates whose languages take different fields, and why.
DIFFERENT_FIELDS = {"monthly.month": "Vietnamese numbers the month, English names it"}


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_text_has_both_languages_and_nothing_else() -> None:
    assert LANGS == ("vi", "en")
    for key, texts in TEXTS.items():
        assert set(texts) == set(LANGS), key
        for lang in LANGS:
            assert isinstance(texts[lang], str) and texts[lang].strip(), (key, lang)


def test_ids_are_where_dot_what() -> None:
    for key in TEXTS:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", key), key


def test_both_languages_of_a_template_take_the_same_fields() -> None:
    for key, texts in TEXTS.items():
        if key in DIFFERENT_FIELDS:
            continue
        assert fields(texts["vi"]) == fields(texts["en"]), key


def test_table_is_the_texts_of_one_prefix_by_their_last_part() -> None:
    report = table("report", "en")
    assert report["title"] == text("report.title", "en") == TEXTS["report.title"]["en"]
    assert set(report) == {k.removeprefix("report.") for k in TEXTS if k.startswith("report.")}
    assert table("report", "vi")["title"] != report["title"]


def test_service_names_agree_with_the_inventory() -> None:
    for service in Service:
        assert text(f"service.{service.value}", "vi") == SERVICE_LABELS_VI[service]


def test_twelve_english_months() -> None:
    assert len(MONTHS_EN) == 12 and MONTHS_EN[0] == "January"


def test_every_id_the_code_asks_for_exists() -> None:
    """Literal ids in the collector and the CLI (``text("x.y", ...)``, ``table("x", ...)``)
    name texts the table has."""
    prefixes = {k.split(".")[0] for k in TEXTS}
    asked = 0
    for path in [*ROOT.glob("collector/*.py"), *ROOT.glob("xanet/*.py")]:
        source = path.read_text(encoding="utf-8")
        for key in re.findall(r'\btext\("([a-z_.0-9]+)"', source):
            assert key in TEXTS, (path.name, key)
            asked += 1
        for prefix in re.findall(r'\btable\("([a-z_]+)"', source):
            assert prefix in prefixes, (path.name, prefix)
            asked += 1
    assert asked > 10
