"""The inventory model: loading, cross-reference validation, lookups, the uplink tree."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xanet.config import ConfigError
from xanet.inventory import (
    SERVICE_LABELS_VI,
    Element,
    Inventory,
    InventoryError,
    Service,
    Technology,
    element_key,
    is_topic_safe,
    load_inventory,
    main,
    parse_inventory,
    validate_official_codes,
)

CONFIG = Path(__file__).resolve().parent.parent / "config"
EXAMPLE = CONFIG / "inventory.example.toml"
PROVINCE = CONFIG / "inventory.province.toml"

needs_official = pytest.mark.skipif(
    importlib.util.find_spec("vietnam_provinces") is None,
    reason="vietnam-provinces not installed (optional)",
)


@pytest.fixture(scope="module")
def example() -> Inventory:
    return load_inventory(EXAMPLE)


@pytest.fixture(scope="module")
def province() -> Inventory:
    return load_inventory(PROVINCE)


def example_data() -> dict[str, Any]:
    with EXAMPLE.open("rb") as f:
        return tomllib.load(f)


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(data, "test.toml")
    # the one format of every xanet file (xanet.config): one "file: key.path: reason" line
    # per problem, and the error is a ConfigError like a config's
    assert isinstance(info.value, ConfigError)
    assert str(info.value).splitlines() == [f"test.toml: {p}" for p in info.value.problems]
    return info.value.problems


# -- the example file ----------------------------------------------------------------------


def test_example_loads(example: Inventory) -> None:
    assert example.province.code == "08"
    assert [c.code for c in example.communes] == ["02269", "02266", "02221"]
    # district is optional: two communes without, one with a legacy district
    assert [c.district for c in example.communes] == [None, None, "072"]
    assert example.districts[0].name == "Huyện Na Hang"
    assert example.commune("02221").name == "Xã Nà Hang"
    hub = example.site("hub-thuong-lam")
    assert hub.role == "hub"
    assert hub.technologies == frozenset()
    assert example.site("bts-thuong-lam-01").technologies == {Technology.G2, Technology.G4}
    assert example.bts_count_by_technology() == {
        Technology.G2: 2,
        Technology.G3: 2,
        Technology.G4: 2,
    }


def test_lookups_of_unknown_ids_raise_key_error(example: Inventory) -> None:
    with pytest.raises(KeyError):
        example.site("nope")
    with pytest.raises(KeyError):
        example.commune("99999")
    assert not example.has_site("nope")
    assert example.has_site("hub-na-hang")
    assert example.has_commune("02266")
    assert not example.has_commune("nope")


def test_sites_of_commune_and_agent(example: Inventory) -> None:
    assert [s.id for s in example.sites_of_commune("02269")] == [
        "hub-thuong-lam",
        "bts-thuong-lam-01",
        "bts-thuong-lam-02",
    ]
    assert [s.id for s in example.sites_of_agent("agt-thuong-lam")] == [
        "hub-thuong-lam",
        "bts-thuong-lam-01",
    ]
    assert example.sites_of_agent("agt-none") == []


def test_services_of_commune(example: Inventory) -> None:
    assert example.services_of("02269") == set(Service)
    assert example.services_of("02266") == {Service.FIBRE}  # no broadband element there
    assert example.services_of("02221") == set(Service)


def test_elements_of_commune_by_service(example: Inventory) -> None:
    fibre = example.elements_of_commune("02269", Service.FIBRE)
    assert [e.key for e in fibre] == [
        "hub-thuong-lam/rtr-1/ge-0/0/0",
        "hub-thuong-lam/rtr-1/ge-0/0/1",
    ]
    assert len(example.elements_of_commune("02269")) == 7
    assert example.elements_of_commune("02266", Service.MOBILE_4G) == []


def test_elements_for_device_vs_interface(example: Inventory) -> None:
    # interface=None means the device itself (its reachability), not "any interface"
    device_level = example.elements_for("hub-thuong-lam", "olt-1", None)
    assert device_level == [
        Element(site="hub-thuong-lam", device="olt-1", service=Service.BROADBAND)
    ]
    assert device_level[0].key == "hub-thuong-lam/olt-1"
    port = example.elements_for("hub-thuong-lam", "olt-1", "gpon-0/1")
    assert [(e.service, e.interface) for e in port] == [(Service.BROADBAND, "gpon-0/1")]
    # a router whose only elements are interfaces has no device-level element
    assert example.elements_for("hub-thuong-lam", "rtr-1", None) == []
    # unmonitored interface, unknown device, unknown site: nothing, not an error
    assert example.elements_for("hub-thuong-lam", "rtr-1", "ge-0/0/9") == []
    assert example.elements_for("hub-thuong-lam", "nope", None) == []
    assert example.elements_for("nope", "rtr-1", "ge-0/0/0") == []
    # ifName matching is exact
    assert example.elements_for("hub-thuong-lam", "rtr-1", "GE-0/0/0") == []


def test_elements_for_returns_a_copy(example: Inventory) -> None:
    first = example.elements_for("hub-thuong-lam", "olt-1", None)
    first.clear()
    assert len(example.elements_for("hub-thuong-lam", "olt-1", None)) == 1


def test_elements_of_device_includes_interfaces(example: Inventory) -> None:
    keys = [e.key for e in example.elements_of_device("hub-thuong-lam", "olt-1")]
    assert keys == ["hub-thuong-lam/olt-1", "hub-thuong-lam/olt-1/gpon-0/1"]
    services = {e.service for e in example.elements_of_device("bts-na-hang-01", "csr-1")}
    assert services == {Service.MOBILE_2G, Service.MOBILE_3G, Service.MOBILE_4G}
    assert example.elements_of_device("bts-na-hang-01", "nope") == []


def test_one_key_may_count_for_several_services() -> None:
    data = example_data()
    site = data["sites"][5]  # bts-na-hang-01
    site["devices"] = [
        {
            "id": "enb-1",
            "elements": [
                {"service": "mobile_2g"},
                {"service": "mobile_3g"},
                {"service": "mobile_4g"},
            ],
        }
    ]
    inventory = parse_inventory(data)
    found = inventory.elements_for("bts-na-hang-01", "enb-1", None)
    assert {e.key for e in found} == {"bts-na-hang-01/enb-1"}
    assert {e.service for e in found} == {Service.MOBILE_2G, Service.MOBILE_3G, Service.MOBILE_4G}


def test_element_key_round_trips_with_slashes_in_ifname() -> None:
    key = element_key("hub-a", "rtr-1", "ge-0/0/0")
    assert key == "hub-a/rtr-1/ge-0/0/0"
    assert key.split("/", 2) == ["hub-a", "rtr-1", "ge-0/0/0"]
    assert element_key("hub-a", "rtr-1") == "hub-a/rtr-1"
    element = Element(site="hub-a", device="rtr-1", service=Service.FIBRE, interface="ge-0/0/0")
    assert element.key == key


def test_uplink_tree(example: Inventory) -> None:
    assert example.children("hub-thuong-lam") == ["bts-thuong-lam-01"]
    assert example.children("bts-thuong-lam-01") == ["bts-thuong-lam-02"]
    assert example.children("bts-thuong-lam-02") == []
    assert example.descendants("hub-thuong-lam") == ["bts-thuong-lam-01", "bts-thuong-lam-02"]
    assert example.ancestors("bts-thuong-lam-02") == ["bts-thuong-lam-01", "hub-thuong-lam"]
    assert example.ancestors("hub-thuong-lam") == []
    assert example.ancestors("bts-na-hang-01") == []  # own backhaul, no parent
    with pytest.raises(KeyError):
        example.children("nope")
    with pytest.raises(KeyError):
        example.ancestors("nope")


def test_labels_in_vietnamese() -> None:
    assert set(SERVICE_LABELS_VI) == set(Service)
    assert SERVICE_LABELS_VI[Service.FIBRE] == "cáp quang"
    assert SERVICE_LABELS_VI[Service.BROADBAND] == "băng rộng"
    assert SERVICE_LABELS_VI[Service.MOBILE_4G] == "di động 4G"
    assert [str(s) for s in Service] == [
        "fibre",
        "broadband",
        "mobile_2g",
        "mobile_3g",
        "mobile_4g",
    ]


def test_dump_validates_again(example: Inventory) -> None:
    again = parse_inventory(example.model_dump(mode="json"))
    assert again == example
    assert again.descendants("hub-thuong-lam") == example.descendants("hub-thuong-lam")


def test_models_are_frozen(example: Inventory) -> None:
    with pytest.raises(ValueError, match="frozen"):
        example.site("hub-na-hang").parent = "x"


# -- cross-reference validation ------------------------------------------------------------

# (mutation of the example data, expected problem). Every problem type the cross-check knows.
MUTATIONS: list[tuple[str, Any, str]] = [
    (
        "duplicate site id",
        lambda d: d["sites"].append({"id": "hub-lam-binh", "commune": "02266", "role": "other"}),
        "sites[6].id: duplicate site id 'hub-lam-binh' (first at sites[3].id)",
    ),
    (
        "duplicate commune code",
        lambda d: d["communes"][1].update(code="02269"),
        "communes[1].code: duplicate commune code '02269' (first at communes[0].code)",
    ),
    (
        "duplicate district code",
        lambda d: d["districts"].append({"code": "072", "name": "Huyện Khác"}),
        "districts[1].code: duplicate district code '072' (first at districts[0].code)",
    ),
    (
        "duplicate device id in a site",
        lambda d: d["sites"][0]["devices"][1].update(id="rtr-1"),
        "sites[0].devices[1].id: duplicate device id 'rtr-1' in site hub-thuong-lam "
        "(first at sites[0].devices[0].id)",
    ),
    (
        "duplicate element",
        lambda d: d["sites"][4]["devices"][0]["elements"].append(
            {"service": "fibre", "interface": "ge-0/0/0"}
        ),
        "sites[4].devices[0].elements[2]: duplicate fibre element "
        "'hub-na-hang/rtr-1/ge-0/0/0' (first at sites[4].devices[0].elements[0])",
    ),
    (
        "unknown commune",
        lambda d: d["sites"][3].update(commune="00000"),
        "sites[3].commune: unknown commune '00000' (site hub-lam-binh)",
    ),
    (
        "unknown parent",
        lambda d: d["sites"][5].update(parent="hub-gone"),
        "sites[5].parent: unknown site 'hub-gone' (site bts-na-hang-01)",
    ),
    (
        "parent cycle",
        lambda d: d["sites"][0].update(parent="bts-thuong-lam-02"),
        "sites[0].parent: parent cycle hub-thuong-lam -> bts-thuong-lam-02 -> "
        "bts-thuong-lam-01 -> hub-thuong-lam",
    ),
    (
        "self parent",
        lambda d: d["sites"][3].update(parent="hub-lam-binh"),
        "sites[3].parent: parent cycle hub-lam-binh -> hub-lam-binh",
    ),
    (
        "unknown district",
        lambda d: d["communes"][0].update(district="071"),
        "communes[0].district: unknown district '071' (commune 02269)",
    ),
    (
        "mobile element of an undeclared technology",
        lambda d: d["sites"][2]["devices"][0]["elements"].append({"service": "mobile_4g"}),
        "sites[2].devices[0].elements[1].service: mobile_4g but site bts-thuong-lam-02 "
        "technologies are [3g]",
    ),
    (
        "declared technology without element",
        lambda d: d["sites"][1].update(technologies=["2g", "3g", "4g"]),
        "sites[1].technologies: 3g declared but no mobile_3g element monitors it "
        "(site bts-thuong-lam-01)",
    ),
    (
        "BTS without technologies",
        lambda d: d["sites"][5].update(technologies=[]),
        "sites[5].technologies: a BTS needs at least one of 2g, 3g, 4g (site bts-na-hang-01)",
    ),
    (
        "technologies on a hub",
        lambda d: d["sites"][3].update(technologies=["4g"]),
        "sites[3].technologies: only BTS sites have technologies (site hub-lam-binh is 'hub')",
    ),
    (
        "mobile element on a hub",
        lambda d: d["sites"][3]["devices"][0]["elements"].append({"service": "mobile_2g"}),
        "sites[3].devices[0].elements[1].service: mobile_2g elements belong on BTS sites "
        "(site hub-lam-binh is 'hub')",
    ),
    (
        "nested device names another site",
        lambda d: d["sites"][3]["devices"][0].update(site="hub-na-hang"),
        "sites[3].devices[0].site: 'hub-na-hang' but the device is nested in site "
        "'hub-lam-binh'; omit the key",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_each_problem_is_detected_with_its_location(mutate: Any, expected: str) -> None:
    data = example_data()
    mutate(data)
    problems = problems_of(data)
    assert expected in problems, problems


def test_all_cross_reference_problems_are_reported_at_once() -> None:
    data = example_data()
    # mutations that do not overwrite each other's keys
    chosen = [m for m in MUTATIONS if m[0] not in ("self parent", "technologies on a hub")]
    for _, mutate, _ in chosen:
        mutate(data)
    problems = problems_of(data)
    missing = [expected for _, _, expected in chosen if expected not in problems]
    assert missing == []


def test_structural_errors_name_each_key_path() -> None:
    data = example_data()
    data["sites"][1]["devcies"] = []  # typo'd key
    data["sites"][2]["role"] = "tower"
    data["sites"][3]["devices"][0]["elements"][0]["service"] = "mobile_5g"
    del data["communes"][2]["name"]
    data["sites"][4]["id"] = "Hub/Na+Hang"
    problems = problems_of(data)
    locations = sorted(p.split(":", 1)[0] for p in problems)
    assert locations == [
        "communes[2].name",
        "sites[1].devcies",
        "sites[2].role",
        "sites[3].devices[0].elements[0].service",
        "sites[4].id",
    ]
    assert "sites[1].devcies: unknown key (typo, or not valid here)" in problems
    assert any("(got 'mobile_5g')" in p for p in problems)
    assert any("(got 'Hub/Na+Hang')" in p for p in problems)


def test_an_inventory_needs_communes() -> None:
    problems = problems_of({"province": {"code": "08", "name": "Tuyên Quang"}})
    assert problems == ["communes: required key is missing"]
    problems = problems_of({"province": {"code": "08", "name": "Tuyên Quang"}, "communes": []})
    assert problems == ["communes: an inventory needs at least one commune"]


def test_error_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "inv.toml"
    path.write_text('[province]\ncode = "08"\nname = "X"\n[[communes]]\ncode = "A"\nname = "x"\n')
    with pytest.raises(ValueError) as info:
        load_inventory(path)
    assert str(info.value) == (
        f"{path}: communes[0].code: not a valid id: use 1-64 lowercase ASCII letters, "
        "digits and '-', not at the start or end (ids appear in MQTT topics, tags and labels) "
        "(got 'A')"
    )


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[province]\ncode = "08"\nname = "Tuyên Quang\n')
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)
    assert "line 3" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "absent.toml")


# -- the uplink tree, property-based -------------------------------------------------------


def tree_inventory(parents: list[int | None]) -> dict[str, Any]:
    return {
        "province": {"code": "08", "name": "Tuyên Quang"},
        "communes": [{"code": "c1", "name": "Xã Một"}],
        "sites": [
            {
                "id": f"s{i}",
                "commune": "c1",
                "role": "other",
                **({} if p is None else {"parent": f"s{p}"}),
            }
            for i, p in enumerate(parents)
        ],
    }


def brute_ancestors(parents: list[int | None], i: int) -> list[int]:
    out = []
    p = parents[i]
    while p is not None:
        out.append(p)
        p = parents[p]
    return out


def on_cycle(parents: list[int | None], i: int) -> bool:
    p = parents[i]
    for _ in range(len(parents)):
        if p is None:
            return False
        if p == i:
            return True
        p = parents[p]
    return False


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_forest_ancestors_and_descendants_agree(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 25))
    # parent index < own index: always a forest
    parents = [None if i == 0 else data.draw(st.none() | st.integers(0, i - 1)) for i in range(n)]
    inventory = parse_inventory(tree_inventory(parents))
    for i in range(n):
        assert inventory.ancestors(f"s{i}") == [f"s{a}" for a in brute_ancestors(parents, i)]
        expected = {f"s{j}" for j in range(n) if i in brute_ancestors(parents, j)}
        found = inventory.descendants(f"s{i}")
        assert len(found) == len(set(found))
        assert set(found) == expected
        assert inventory.children(f"s{i}") == [f"s{j}" for j in range(n) if parents[j] == i]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_cycle_is_found_once(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12))
    parents: list[int | None] = [data.draw(st.none() | st.integers(0, n - 1)) for _ in range(n)]
    cyclic = {i for i in range(n) if on_cycle(parents, i)}
    if not cyclic:
        parse_inventory(tree_inventory(parents))
        return
    problems = [p for p in problems_of(tree_inventory(parents)) if "parent cycle" in p]
    in_problems = Counter(
        site for p in problems for site in set(p.split("parent cycle ", 1)[1].split(" -> "))
    )
    assert set(in_problems) == {f"s{i}" for i in cyclic}
    assert set(in_problems.values()) == {1}  # each cycle reported exactly once


# -- ids and the province file -------------------------------------------------------------


@pytest.mark.parametrize("ident", ["hub-02269", "bts-02269-03", "08", "a", "x" * 64])
def test_topic_safe_ids_accepted(ident: str) -> None:
    assert is_topic_safe(ident)


@pytest.mark.parametrize(
    "ident", ["", "Hub", "a/b", "a+b", "a#", "-a", "a-", "a b", "a_b", "xã", "a\n", "x" * 65]
)
def test_topic_unsafe_ids_rejected(ident: str) -> None:
    assert not is_topic_safe(ident)


def test_province_file_counts(province: Inventory) -> None:
    assert province.province.code == "08"
    assert province.province.name == "Tuyên Quang"
    assert len(province.communes) == 124  # every 2025 commune/ward of Tuyên Quang
    assert province.bts_count_by_technology() == {
        Technology.G2: 783,
        Technology.G3: 932,
        Technology.G4: 703,
    }
    roles = Counter(s.role for s in province.sites)
    assert roles == {"hub": 124, "bts": 1168}
    with_broadband = [
        c for c in province.communes if Service.BROADBAND in province.services_of(c.code)
    ]
    assert len(with_broadband) == 122  # 98% of 124, rounded
    for commune in province.communes:
        hubs = [s for s in province.sites_of_commune(commune.code) if s.role == "hub"]
        assert len(hubs) == 1
        fibre = province.elements_of_commune(commune.code, Service.FIBRE)
        assert fibre and all(e.interface for e in fibre)  # an uplink interface
        assert {e.site for e in fibre} == {hubs[0].id}


def test_province_file_uplink_tree(province: Inventory) -> None:
    bts = [s for s in province.sites if s.role == "bts"]
    behind_hub = [s for s in bts if s.parent and province.site(s.parent).role == "hub"]
    assert len(behind_hub) > len(bts) / 2
    for site in bts:
        chain = province.ancestors(site.id)
        assert len(chain) <= 3
        for ancestor in chain:
            assert province.site(ancestor).commune == site.commune
            assert site.id in province.descendants(ancestor)


def test_province_file_ids_are_topic_safe(province: Inventory) -> None:
    ids = [province.province.code]
    ids += [c.code for c in province.communes]
    for site in province.sites:
        ids += [site.id, *(d.id for d in site.devices)]
        assert site.agent is not None
        ids.append(site.agent)
    assert all(is_topic_safe(i) for i in ids)
    assert len({s.id for s in province.sites}) == len(province.sites)


def test_province_file_loads_in_reasonable_memory() -> None:
    tracemalloc.start()
    try:
        inventory = load_inventory(PROVINCE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(inventory.sites) == 1292
    assert peak < 64 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@needs_official
def test_generator_is_deterministic_and_matches_committed_file(tmp_path: Path) -> None:
    sys.path.insert(0, str(CONFIG))
    try:
        import generate_inventory
    finally:
        sys.path.remove(str(CONFIG))
    out = tmp_path / "p.toml"
    assert generate_inventory.main(["--output", str(out)]) == 0
    assert out.read_bytes() == PROVINCE.read_bytes()
    other = tmp_path / "other.toml"
    assert generate_inventory.main(["--output", str(other), "--seed", "7"]) == 0
    assert other.read_bytes() != PROVINCE.read_bytes()
    assert load_inventory(other).bts_count_by_technology() == {
        Technology.G2: 783,
        Technology.G3: 932,
        Technology.G4: 703,
    }


# -- official codes (optional package) -----------------------------------------------------


@needs_official
def test_official_codes_of_shipped_files(example: Inventory, province: Inventory) -> None:
    assert validate_official_codes(example) == []
    assert validate_official_codes(province) == []


@needs_official
def test_official_code_problems() -> None:
    data = example_data()
    data["communes"][0]["code"] = "99999"  # not a commune
    data["communes"][1]["code"] = "00070"  # Phường Hoàn Kiếm, Hà Nội
    data["communes"][1]["name"] = "Phường Hoàn Kiếm"
    data["communes"][2]["name"] = "Xã Na Hang"  # old spelling
    data["districts"] = []
    del data["communes"][2]["district"]
    for site in data["sites"]:
        site["commune"] = {"02269": "99999", "02266": "00070"}.get(site["commune"], site["commune"])
    problems = validate_official_codes(parse_inventory(data))
    assert problems == [
        "communes[0].code: '99999' is not an official 2025 commune code",
        "communes[1].code: '00070' (Phường Hoàn Kiếm) belongs to province 01, not 08",
        "communes[2].name: 'Xã Na Hang' differs from the official 'Xã Nà Hang'",
    ]


@needs_official
def test_official_names_ignore_prefix_and_case() -> None:
    data = example_data()
    data["communes"][0]["name"] = "thượng lâm"
    data["province"] = {"code": "8", "name": "Tỉnh Tuyên Quang"}
    assert validate_official_codes(parse_inventory(data)) == []
    data["province"] = {"code": "tq", "name": "Tuyên Quang"}
    assert validate_official_codes(parse_inventory(data)) == [
        "province.code: 'tq' is not an official numeric code"
    ]


def test_official_check_without_the_package(
    example: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vietnam_provinces", None)  # import now fails
    with pytest.raises(RuntimeError, match="pip install 'vietnam-provinces"):
        validate_official_codes(example)


# -- command line --------------------------------------------------------------------------


def test_main_reports_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE)]) == 0
    assert "3 communes, 6 sites, 13 elements" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    data = EXAMPLE.read_text(encoding="utf-8").replace('parent = "hub-thuong-lam"', 'parent = "x"')
    bad.write_text(data, encoding="utf-8")
    assert main([str(bad)]) == 1
    assert "sites[1].parent: unknown site 'x'" in capsys.readouterr().out


def test_elements_as_nested_tables_and_doc_snippet() -> None:
    text = """
[province]
code = "08"
name = "Tuyên Quang"
[[communes]]
code = "02221"
name = "Xã Nà Hang"
[[sites]]
id = "hub-na-hang"
commune = "02221"
role = "hub"
  [[sites.devices]]
  id = "rtr-1"
    [[sites.devices.elements]]
    service = "fibre"
    interface = "ge-0/0/0"
"""
    inventory = parse_inventory(tomllib.loads(text))
    assert [e.key for e in inventory.elements] == ["hub-na-hang/rtr-1/ge-0/0/0"]
    doc = (CONFIG.parent / "docs" / "inventory.md").read_text(encoding="utf-8")
    snippet = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    documented = parse_inventory(tomllib.loads(snippet))
    assert documented.descendants("hub-na-hang") == ["bts-na-hang-01"]
