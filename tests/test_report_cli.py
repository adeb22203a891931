"""`xanet report ...` as a person uses it, against a real InfluxDB holding a generated month.

Every `xanet report` command documented in README.md and docs/*.md runs as written; bad
values are refused with a clear message, the closest valid values and exit status 2; a
closed pipe ends the program quietly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import InfluxDB1, monthgen
from xanet.inventory import load_inventory
from xanet.report_cli import closest, join_dash_values

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "config" / "inventory.example.toml"
XANET = [sys.executable, "-m", "xanet.cli"]
DB = "report_cli"


@pytest.fixture(scope="module")
def workdir(influxdb: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with collector.toml pointing at a database holding the last 30 days."""
    inventory = load_inventory(INVENTORY)
    start = (int(time.time()) // 86400 - 30) * 86400.0
    month = monthgen.generate(inventory, start, 30, seed=11, hub_cuts=6, bts_outages=10,
                              silences=1, maintenance=1)
    monthgen.store(month, influxdb, DB)
    work = tmp_path_factory.mktemp("report-cli")
    (work / "collector.toml").write_text(monthgen.collector_toml(
        influxdb.url, DB, INVENTORY, work))
    yield work


def xanet(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*XANET, *args], cwd=workdir, capture_output=True, text=True,
                          timeout=120, check=False)


def documented_commands() -> list[str]:
    """`xanet report ...` lines of the fenced code blocks of README.md and docs/*.md."""
    out: list[str] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        in_code = False
        pending = ""
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if not in_code:
                continue
            text = pending + raw.strip()
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            text = text.removeprefix("$ ")
            if text.startswith("xanet report"):
                out.append(text)
    return out


def test_the_docs_show_report_examples() -> None:
    commands = documented_commands()
    assert any("--from -7d" in c for c in commands)
    for needed in ("--month", "--by site", "--by operator", "report outages", "report monthly"):
        assert any(needed in c for c in commands), needed


@pytest.mark.parametrize("command", documented_commands())
def test_documented_example_runs_as_written(workdir: Path, command: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, (command, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout.strip(), command


def test_relative_times_as_written_and_local_time(workdir: Path) -> None:
    done = xanet(workdir, "report", "availability", "-c", "collector.toml", "--from", "-7d",
                 "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert "(Asia/Ho_Chi_Minh, UTC+07:00)" in done.stdout.splitlines()[1]
    doc = json.loads(xanet(workdir, "report", "availability", "-c", "collector.toml",
                           "--from", "2026-11-01", "--to", "2026-11-02",
                           "--format", "json").stdout)
    assert doc["window"]["start_local"] == "2026-11-01T00:00:00+07:00"  # local midnight
    assert doc["window"]["start"] == 1_793_466_000.0  # 2026-10-31T17:00:00Z
    utc = json.loads(xanet(workdir, "report", "availability", "-c", "collector.toml",
                           "--month", "2026-11", "--tz", "UTC", "--format", "json").stdout)
    assert utc["window"]["start_local"] == "2026-11-01T00:00:00+00:00"


def test_worst_first_by_default_and_other_orders(workdir: Path) -> None:
    def rows(*extra: str) -> list[dict[str, Any]]:
        done = xanet(workdir, "report", "availability", "-c", "collector.toml", "--from",
                     "-30d", "--format", "json", *extra)
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)["rows"])

    worst = [r["availability_pct"] for r in rows() if r["availability_pct"] is not None]
    assert worst == sorted(worst)
    assert len(set(worst)) > 1
    by_code = [(r["commune"], r["service"]) for r in rows("--sort", "code")]
    assert [c for c, _ in by_code] == sorted(c for c, _ in by_code)
    sites = rows("--by", "site")
    assert {r["key"] for r in sites} == {s.id for s in load_inventory(INVENTORY).sites}
    operators = rows("--by", "operator")
    # bts-na-hang-01 is shared by MobiFone and Viettel: it counts for each
    assert {(r["key"], r["service"]) for r in operators} >= {
        ("MobiFone", "mobile_4g"), ("Viettel", "mobile_4g"), ("VNPT", "fibre")}
    mobile = [r for r in rows() if r["service"] == "mobile_2g"]
    assert all(r["stations"] is not None for r in mobile)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--province", "09"], "unknown province '09': the inventory is province 08"),
        (["--commune", "99999"], "unknown commune '99999'; closest: 02269"),
        (["--commune", "0226"], "closest: 02269 (Xã Thượng Lâm), 02266 (Xã Lâm Bình)"),
        (["--service", "fiber"], "unknown service 'fiber'; closest: fibre"),
        (["--site", "bts-thuong-lam-1"], "closest: bts-thuong-lam-01"),
        (["--operator", "viettel"], "closest: Viettel"),
        (["--target", "150"], "150 is not a percentage between 0 and 100"),
        (["--min-coverage", "-5"], "-5 is not a percentage between 0 and 100"),
        (["--from", "yesterday"], "'yesterday' is not a time"),
        (["--month", "2026-13"], "'2026-13' is not a month"),
        (["--month", "2026-11", "--from", "-1d"], "either --month or --from/--to"),
        (["--from", "now", "--to", "-1d"], "must be after --from"),
        (["--tz", "Asia/Ho_Chi_Mihn"], "closest: Asia/Ho_Chi_Minh"),
        (["--by", "region"], "invalid choice: 'region'"),
    ],
)
def test_bad_values_are_refused_with_the_closest_valid_ones(
    workdir: Path, args: list[str], message: str
) -> None:
    done = xanet(workdir, "report", "availability", "-c", "collector.toml", *args)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_outage_and_monthly_commands_check_their_values_too(workdir: Path) -> None:
    done = xanet(workdir, "report", "outages", "-c", "collector.toml", "--min-duration", "-1")
    assert done.returncode == 2 and "-1 is negative" in done.stderr
    done = xanet(workdir, "report", "monthly", "-c", "collector.toml", "--month", "2026-11",
                 "--commune", "02299")
    assert done.returncode == 2 and "closest: 02269" in done.stderr
    done = xanet(workdir, "report", "monthly", "-c", "collector.toml")
    assert done.returncode == 2 and "--month 2026-11" in done.stderr


def test_outage_list_in_local_time(workdir: Path) -> None:
    done = xanet(workdir, "report", "outages", "-c", "collector.toml", "--from", "-30d",
                 "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["tz"] == "Asia/Ho_Chi_Minh" and doc["outages"]
    first = doc["outages"][0]
    assert first["start_local"].endswith(" +07")
    assert first["duration_s"] == pytest.approx(first["end"] - first["start"])
    assert {"root", "cause", "sites", "services", "alerted", "maintenance"} <= set(first)
    assert any(o["alerted"] for o in doc["outages"])
    table = xanet(workdir, "report", "outages", "-c", "collector.toml", "--from", "-30d",
                  "--lang", "vi").stdout
    assert "Nguyên nhân gốc (trạm)" in table and " +07 " in table


def test_closed_pipe_ends_quietly(workdir: Path) -> None:
    proc = subprocess.Popen([*XANET, "report", "availability", "-c", "collector.toml",
                             "--from", "-30d", "--by", "device", "--format", "csv"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141)
    assert err == ""


def test_version_and_help_without_markup(workdir: Path) -> None:
    done = xanet(workdir, "--version")
    assert done.returncode == 0 and re.fullmatch(r"xanet \S+\n", done.stdout)
    for args in (["--help"], ["report", "--help"], ["report", "availability", "--help"],
                 ["report", "outages", "--help"], ["report", "monthly", "--help"]):
        text = xanet(workdir, *args).stdout
        assert text.startswith("usage: xanet")
        for markup in ("``", "%%", ":func:", ":class:", "**"):
            assert markup not in text, (args, markup)


def test_join_dash_values_and_closest() -> None:
    assert join_dash_values(["report", "availability", "--from", "-7d", "--to", "-1h"]) == [
        "report", "availability", "--from=-7d", "--to=-1h"]
    assert join_dash_values(["--from", "--lang"]) == ["--from", "--lang"]  # not a value
    assert closest("lam binh", {"Xã Lâm Bình": "02266", "Xã Nà Hang": "02221"})[0] == "02266"
    assert closest("99999", {"02269": "02269", "00700": "00700"}) == ["02269", "00700"]


def test_maintenance_fields_are_read_where_present(influxdb: InfluxDB1, tmp_path: Path) -> None:
    """The maintenance contract: state ``maintenance`` (code -2) on element and service
    points, ``maintenance`` on outage points; absent fields mean no maintenance."""
    db = "report_maintenance"
    t0 = 1_793_466_000_000  # ms, 2026-11-01T00:00:00+07:00
    hour = 3_600_000
    el = ("element_state,province=08,commune=02266,site=hub-lam-binh,device=rtr-1,"
          "interface=xe-0/0/0,element=hub-lam-binh/rtr-1/xe-0/0/0")
    sv = "service_state,province=08,commune=02266,service=fibre"
    out = "outage,province=08,commune=02266,site=hub-lam-binh,kind=root"
    lines = [
        f'{el} state="up",code=1i {t0 - hour}', f'{sv} state="up",code=1i {t0 - hour}',
        # declared maintenance 02:00-04:00, a cut inside the work 03:00-03:30 after it
        f'{el} state="maintenance",code=-2i {t0 + 2 * hour}',
        f'{sv} state="maintenance",code=-2i {t0 + 2 * hour}',
        f'{el} state="down",code=0i {t0 + 4 * hour}', f'{sv} state="down",code=0i {t0 + 4 * hour}',
        f'{el} state="up",code=1i {t0 + 5 * hour}', f'{sv} state="up",code=1i {t0 + 5 * hour}',
        f'{out} open=1i,maintenance=true,children="",summary="x" {t0 + 4 * hour}',
        f'{out} open=0i,maintenance=true,children="",summary="x" {t0 + 5 * hour}',
        f"collector_stats,collector=t received=1i {t0 + 25 * hour}",
    ]
    influxdb.create_database(db)
    influxdb.write(lines, db=db, precision="ms")
    (tmp_path / "collector.toml").write_text(monthgen.collector_toml(
        influxdb.url, db, INVENTORY, tmp_path))
    args = ["-c", "collector.toml", "--from", "2026-11-01", "--to", "2026-11-02",
            "--format", "json"]
    report = json.loads(xanet(tmp_path, "report", "availability", "--commune", "02266",
                              *args).stdout)
    (row,) = [r for r in report["rows"] if r["service"] == "fibre"]
    assert row["maintenance_s"] == 2 * 3600 and row["down_s"] == 3600
    assert row["coverage_pct"] == 100.0  # maintenance is not missing data
    assert row["availability_pct"] == pytest.approx(100 * 21 / 22)
    outages = json.loads(xanet(tmp_path, "report", "outages", *args).stdout)["outages"]
    assert [(o["root"], o["alerted"], o["maintenance"]) for o in outages] == [
        ("hub-lam-binh", True, True)]
    table = xanet(tmp_path, "report", "availability", "--commune", "02266", "-c",
                  "collector.toml", "--from", "2026-11-01", "--to", "2026-11-02",
                  "--lang", "en").stdout
    assert "Maintenance" in table and "2h 00m" in table


def test_a_site_or_operator_filter_lists_sites(workdir: Path) -> None:
    def keys(*args: str) -> set[tuple[str, str]]:
        done = xanet(workdir, "report", "availability", "-c", "collector.toml", "--from",
                     "-30d", "--format", "json", *args)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        return {(r["group"], r["key"]) for r in doc["rows"]}

    assert keys("--site", "bts-thuong-lam-01") == {("site", "bts-thuong-lam-01")}
    assert keys("--operator", "MobiFone") == {("site", "bts-na-hang-01")}
    assert keys("--operator", "Viettel", "--by", "operator") == {("operator", "Viettel")}
