"""The optional check of an inventory's codes and names against the official 2025 list."""

from __future__ import annotations

import unicodedata
from typing import Any

from xanet.inventory.index import Inventory

_DIVISION_PREFIXES = ("xã ", "phường ", "đặc khu ", "thị trấn ", "tỉnh ", "thành phố ")


def _bare_name(name: str) -> str:
    bare = unicodedata.normalize("NFC", name).strip().casefold()
    for prefix in _DIVISION_PREFIXES:
        if bare.startswith(prefix):
            return bare[len(prefix) :]
    return bare


def validate_official_codes(inventory: Inventory) -> list[str]:
    """Problems with the province and commune codes against the official 2025 list.

    Opt-in: needs the ``vietnam-provinces`` package (2025.x, post-merger data), imported
    here only. Codes must be the official numeric ones (province ``08``, commune
    ``02269``), each commune must belong to the province, and names must match the
    official ones, ignoring the division prefix (``Xã``, ``Phường``...) and case.
    Districts are not checked: the 2025 list has none.
    """
    try:
        from vietnam_provinces import Province as OfficialProvince
        from vietnam_provinces import Ward as OfficialWard
    except ImportError as exc:
        raise RuntimeError(
            "checking official codes needs the 'vietnam-provinces' package (2025.x): "
            "pip install 'vietnam-provinces>=2025.8'"
        ) from exc

    problems: list[str] = []
    prov = inventory.province
    official_province: Any = None
    if not prov.code.isdigit():
        problems.append(f"province.code: {prov.code!r} is not an official numeric code")
    else:
        try:
            official_province = OfficialProvince.from_code(int(prov.code))  # type: ignore[arg-type]  # IntEnum lookup by value
        except ValueError:
            problems.append(f"province.code: {prov.code!r} is not an official 2025 province")
    if official_province is not None and _bare_name(prov.name) != _bare_name(
        official_province.name
    ):
        problems.append(
            f"province.name: {prov.name!r} differs from the official {official_province.name!r}"
        )

    for i, commune in enumerate(inventory.communes):
        where = f"communes[{i}]"
        if not commune.code.isdigit():
            problems.append(
                f"{where}.code: {commune.code!r} is not an official numeric commune code"
            )
            continue
        try:
            ward = OfficialWard.from_code(int(commune.code))  # type: ignore[arg-type]  # IntEnum lookup by value
        except ValueError:
            problems.append(f"{where}.code: {commune.code!r} is not an official 2025 commune code")
            continue
        if official_province is not None and ward.province_code != official_province.code:
            problems.append(
                f"{where}.code: {commune.code!r} ({ward.name}) belongs to province "
                f"{int(ward.province_code):02d}, not {prov.code}"
            )
        if _bare_name(commune.name) != _bare_name(ward.name):
            problems.append(
                f"{where}.name: {commune.name!r} differs from the official {ward.name!r}"
            )
    return problems
