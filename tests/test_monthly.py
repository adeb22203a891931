"""The monthly document for the 124-commune province, as a person sees it.

One generated month in a real InfluxDB; the document built by the real command as HTML
and PDF. Its figures are read back (from the HTML, and from the PDF's text layer with
pdftotext) and compared with ``xanet report availability --format json`` for the same
window, and the JSON with the generator's ground truth. Headless Chromium takes a
screenshot of the HTML, pdftoppm renders the PDF; both must show charts and Vietnamese
text. One screenshot and one PDF page are kept in ``.run/`` for people to look at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from collector.availability import ServiceKey
from collector.charts import COLOURS
from collector.reportformat import format_pct
from lab import InfluxDB1, monthgen
from xanet.inventory import load_inventory

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "config" / "inventory.province.toml"
ARTEFACTS = ROOT / ".run"
DB = "report_monthly"
MONTH = "2026-11"
T0 = 1_793_466_000.0  # 2026-11-01T00:00:00+07:00
TARGETS = {
    "fibre": {"communes_pct": 100.0, "label": "100% xã có cáp quang đến trung tâm"},
    "broadband": {"communes_pct": 98.0},
    "mobile_2g": {"communes_pct": 98.6},
    "mobile_3g": {"communes_pct": 98.6},
    "mobile_4g": {"communes_pct": 98.6},
}
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--no-pings",
    # anything it might still try to fetch goes to a closed port on loopback
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]


@dataclass
class Built:
    work: Path
    month: monthgen.Month
    html: str
    pdf: Path
    report: dict[str, Any]
    operators: dict[str, Any]


def xanet(work: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "xanet.cli", "report", *args, "-c",
                           "collector.toml"], cwd=work, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, (args, done.stderr)
    assert done.stderr == "", done.stderr  # no library chatter on a person's terminal
    return done.stdout


@pytest.fixture(scope="module")
def built(influxdb: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    inventory = load_inventory(INVENTORY)
    month = monthgen.generate(inventory, T0, 30, seed=2026, hub_cuts=60, bts_outages=400,
                              silences=12, maintenance=6)
    monthgen.store(month, influxdb, DB)
    work = tmp_path_factory.mktemp("monthly")
    (work / "collector.toml").write_text(monthgen.collector_toml(
        influxdb.url, DB, INVENTORY, work, targets=TARGETS))
    out = xanet(work, "monthly", "--month", MONTH, "--province", "08", "--lang", "vi",
                "--format", "html", "--output", "thang.html")
    assert out.strip() == "thang.html"
    xanet(work, "monthly", "--month", MONTH, "--lang", "vi", "--format", "pdf",
          "--output", "thang.pdf")
    report = json.loads(xanet(work, "availability", "--month", MONTH, "--format", "json"))
    operators = json.loads(xanet(work, "availability", "--month", MONTH, "--by", "operator",
                                 "--format", "json"))
    yield Built(work, month, (work / "thang.html").read_text(encoding="utf-8"),
                work / "thang.pdf", report, operators)


class Cells(HTMLParser):
    """Text of every element with a data-key attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        key = dict(attrs).get("data-key")
        if key:
            self._key = key
            self.cells[key] = ""

    def handle_endtag(self, tag: str) -> None:
        self._key = None

    def handle_data(self, data: str) -> None:
        if self._key:
            self.cells[self._key] += data


def expected_cells(report: dict[str, Any], operators: dict[str, Any]) -> dict[str, str]:
    """What the document must show, computed from the JSON of the same window."""
    out: dict[str, str] = {}
    for k in report["kpis"]:
        s = k["service"]
        share = k["share_met_pct"]
        out[f"kpi.{s}.share_met_pct"] = "–" if share is None else format_pct(share, "vi", 1) + "%"
        measured = k["communes_met"] + k["communes_failed"]
        out[f"kpi.{s}.met"] = f"{k['communes_met']}/{measured}"
        out[f"kpi.{s}.apart"] = str(k["communes_insufficient"] + k["communes_no_data"])
        out[f"kpi.{s}.coverage_pct"] = format_pct(k["coverage_pct"], "vi", 1) + "%"
    worst: dict[str, dict[str, Any]] = {}
    for row in report["rows"]:  # worst first
        if row["availability_pct"] is not None:
            worst.setdefault(row["commune"], row)
    for i, row in enumerate(list(worst.values())[:10]):
        out[f"worst.{i}.commune"] = row["commune"]
        out[f"worst.{i}.availability_pct"] = format_pct(row["availability_pct"], "vi")
    for row in operators["rows"]:
        value = row["availability_pct"]
        out[f"operator.{row['key']}.{row['service']}.availability_pct"] = (
            "–" if value is None else format_pct(value, "vi"))
    return out


def test_json_equals_the_generated_ground_truth(built: Built) -> None:
    window = 30 * 86400.0
    counts: dict[str, list[int]] = {}
    rows = {(r["commune"], r["service"]): r for r in built.report["rows"]}
    assert len(rows) == len(built.month.keys())
    for key in built.month.keys():
        truth = built.month.truth(key)
        row = rows[(key.commune, key.service)]
        assert row["down_s"] == pytest.approx(truth.down_s, abs=1e-3), key
        assert row["maintenance_s"] == pytest.approx(truth.maintenance_s, abs=1e-3), key
        availability = truth.availability_pct
        if availability is None:
            assert row["availability_pct"] is None
            status = "no_data"
        else:
            assert row["availability_pct"] == pytest.approx(availability, abs=1e-5), key
            coverage = truth.coverage_pct(window)
            assert row["coverage_pct"] == pytest.approx(coverage, abs=1e-5), key
            status = ("insufficient" if coverage < 90 else
                      "met" if availability >= 99 else "failed")
        assert row["status"] == status, key
        tally = counts.setdefault(key.service, [0, 0, 0, 0])
        tally[("met", "failed", "insufficient", "no_data").index(status)] += 1
    for kpi in built.report["kpis"]:
        met, failed, insufficient, no_data = counts[kpi["service"]]
        assert (kpi["communes_met"], kpi["communes_failed"], kpi["communes_insufficient"],
                kpi["communes_no_data"]) == (met, failed, insufficient, no_data)
        assert kpi["share_met_pct"] == pytest.approx(100 * met / (met + failed), abs=1e-5)
    # the month exercises every branch of the rule
    assert sum(c[1] for c in counts.values()) > 0  # some communes failed
    assert sum(c[2] for c in counts.values()) > 0  # some had insufficient data
    assert any(r["maintenance_s"] > 0 for r in built.report["rows"])


def test_html_figures_equal_the_json_report(built: Built) -> None:
    parser = Cells()
    parser.feed(built.html)
    expected = expected_cells(built.report, built.operators)
    assert len(expected) > 30
    for key, value in expected.items():
        assert parser.cells.get(key, "").strip() == value, key
    assert "http://" not in built.html and "https://" not in built.html  # self-contained
    assert built.html.count('src="data:image/svg+xml;base64,') == 2  # two charts inline


def test_pdf_text_carries_the_same_figures_and_vietnamese(built: Built) -> None:
    text = subprocess.run(["pdftotext", "-layout", str(built.pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    for words in ("Báo cáo khả dụng hạ tầng viễn thông", "Tỉnh Tuyên Quang – tháng 11/2026",
                  "Chỉ tiêu của tỉnh so với mục tiêu đã công bố", "Mười xã có khả dụng thấp nhất",
                  "Danh sách sự cố", "Người lập", "Độ phủ dữ liệu của kỳ"):
        assert words in text, words
    lines = text.splitlines()
    labels = {"fibre": "cáp quang", "broadband": "băng rộng", "mobile_2g": "di động 2G",
              "mobile_3g": "di động 3G", "mobile_4g": "di động 4G"}
    expected = expected_cells(built.report, built.operators)
    for kpi in built.report["kpis"]:
        s = kpi["service"]
        row = next(line for line in lines if line.strip().startswith(labels[s]))
        for cell in ("share_met_pct", "met", "coverage_pct"):
            assert expected[f"kpi.{s}.{cell}"] in row, (s, cell, row)


def pixels_of_charts(png: Path) -> int:
    """Pixels in the charts' service colours (tolerance 12 per channel)."""
    from matplotlib.image import imread

    image = imread(png)[..., :3]
    if image.dtype.kind != "f":
        image = image / 255.0
    total = 0
    for colour in COLOURS.values():
        rgb = [int(colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]
        diff = abs(image - rgb).max(axis=-1)
        total += int((diff < 12 / 255).sum())
    return total


def test_rendered_as_a_person_sees_it(built: Built, tmp_path: Path) -> None:
    pages = subprocess.run(["pdfinfo", str(built.pdf)], capture_output=True, text=True,
                           check=True).stdout
    count = int(next(line.split()[-1] for line in pages.splitlines()
                     if line.startswith("Pages:")))
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(built.pdf), str(tmp_path / "page")],
                   check=True)
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == count and 3 <= count <= 12
    page_text = [subprocess.run(["pdftotext", "-f", str(i), "-l", str(i), str(built.pdf), "-"],
                                capture_output=True, text=True, check=True).stdout
                 for i in range(1, count + 1)]
    assert "Chỉ tiêu của tỉnh" in page_text[0] and "Khả dụng theo ngày" in page_text[0]
    timeline_page = next(i for i, t in enumerate(page_text) if "Diễn biến sự cố" in t)
    assert timeline_page >= 1  # the timeline opens a page of its own
    assert "Người lập" in page_text[-1]
    assert all(f"Trang {i + 1} / {count}" in t for i, t in enumerate(page_text))
    assert pixels_of_charts(rendered[0]) > 300  # the daily trend on page 1
    assert pixels_of_charts(rendered[timeline_page]) > 100  # the outage timeline

    chromium = shutil.which("chromium")
    assert chromium, "chromium missing: scripts/install-deps.sh installs it"
    shot = tmp_path / "screenshot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1280,2200",
                    (built.work / "thang.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    from matplotlib.image import imread

    image = imread(shot)
    assert image.shape[:2] == (2200, 1280)
    assert (image[..., :3].min(axis=-1) < 0.9).mean() > 0.03  # not a blank page
    assert pixels_of_charts(shot) > 300

    ARTEFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTEFACTS / "monthly-screenshot.png")
    shutil.copy(rendered[0], ARTEFACTS / "monthly-pdf-page1.png")


def test_every_commune_service_of_the_inventory_has_a_row(built: Built) -> None:
    keys = {ServiceKey(r["commune"], r["service"]) for r in built.report["rows"]}
    assert keys == set(built.month.keys())
    assert len({k.commune for k in keys}) == 124
