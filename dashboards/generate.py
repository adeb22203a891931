"""xanet's Grafana dashboards, as code (grafana-foundation-sdk): generated and checked.

    python -m dashboards.generate            write dashboards/json/*.json
    python -m dashboards.generate --check    exit 1 if the committed JSON differs

The dashboards are in :mod:`dashboards.boards` and :mod:`dashboards.power` (what each
shows), their shared
vocabulary in :mod:`dashboards.style`; this module renders them to JSON in the SDK's
canonical form.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python dashboards/generate.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import influxql
from dashboards.boards import agent_health, commune_drilldown, outage_timeline, province_overview
from dashboards.power import power_environment

JSON_DIR = Path(__file__).resolve().parent / "json"

# -- output ------------------------------------------------------------------

DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "province-overview": province_overview,
    "commune-drilldown": commune_drilldown,
    "outage-timeline": outage_timeline,
    "agent-health": agent_health,
    "power-environment": power_environment,
}


def to_data(model: dm.Dashboard) -> Any:
    return json.loads(json.dumps(model, cls=JSONEncoder))


def from_data(data: Any) -> dm.Dashboard:
    """Decode dashboard JSON into the SDK's models (InfluxQL targets included)."""
    plugins.register_default_plugins()
    influxql.register()
    return dm.Dashboard.from_json(data)


def render(build: Callable[[], db.Dashboard]) -> str:
    """The dashboard's JSON text, as committed (stable key order, trailing newline).

    The builder's output is passed once through the SDK's decoder, which fills
    in the panel plugins' defaults: what is committed is the SDK's canonical
    form, so it round-trips through ``from_data`` unchanged."""
    data = to_data(from_data(to_data(build().build())))
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[Path, str]:
    return {JSON_DIR / f"{name}.json": render(build) for name, build in DASHBOARDS.items()}


def stale(files: dict[Path, str]) -> list[Path]:
    """Files whose committed text differs from the generated one, plus strays."""
    out = [p for p, text in files.items()
           if not p.exists() or p.read_text(encoding="utf-8") != text]
    out += sorted(p for p in JSON_DIR.glob("*.json") if p not in files)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboards.generate", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if dashboards/json differs from what the code generates")
    args = parser.parse_args(argv)
    files = rendered()
    if args.check:
        drift = stale(files)
        for p in drift:
            print(f"{p}: out of date; run python -m dashboards.generate", file=sys.stderr)
        return 1 if drift else 0
    JSON_DIR.mkdir(exist_ok=True)
    for p, text in files.items():
        p.write_text(text, encoding="utf-8")
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
