from __future__ import annotations

from pathlib import Path

from xanet.configdoc import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_configuration_reference_matches_the_models() -> None:
    assert DOC.read_text() == render(), (
        "docs/configuration.md is stale: run `python -m xanet.configdoc > docs/configuration.md`")


def test_reference_names_every_section() -> None:
    text = render()
    for head in ("[agent]", "[mqtt]", "[polling]", "[spool]", "[[devices]]", "[influx]",
                 "[ingest]"):
        assert f"`{head}`" in text
    assert "**required**" in text
