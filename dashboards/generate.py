"""xanet's Grafana dashboards, as code (grafana-foundation-sdk).

    python -m dashboards.generate            write dashboards/json/*.json
    python -m dashboards.generate --check    exit 1 if the committed JSON differs

Four dashboards, all InfluxQL against the provisioned data source
(uid ``xanet-influxdb``, deploy/grafana/datasources/xanet.yaml):

- ``xanet-province``  province overview: per-commune availability of every
  service (colour-coded), the province KPIs (share of communes whose
  fibre / broadband / mobile availability met ``$target``), coverage, active
  outages;
- ``xanet-commune``   commune drill-down: devices, reachability, interface
  throughput, utilisation, status, uptime, SNMP round trip;
- ``xanet-outages``   outage timeline: commune-service states, availability
  per service, the outage log;
- ``xanet-agents``    agent health: last seen, spool depth/age/drops, poll
  overruns, and the collector's own counters.

Measurements and fields are those of collector/lineproto.py (``device``,
``interface``, ``agent_status``), collector/app.py (``collector_stats``) and
collector/facts.py (``service_state``, ``availability``) and
collector/alerting.py (``outage``).
Column aliases keep the stored field names, so a field's unit suffix
(``_bps``, ``_pct``, ``_s``, ``_ms``) also names the column's Grafana unit;
tests/test_dashboards.py checks both against a real InfluxDB.

Template variables: ``$province`` (one), ``$commune`` and ``$site`` (several,
or All = ``.*``), ``$target`` (the KPI's availability target, %). Queries use
them as ``"commune" =~ /^$commune$/`` – Grafana writes a multi-value as
``(a|b)`` there – and Grafana's InfluxQL macros ``$timeFilter`` and
``$__interval``.
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

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import influxql
from dashboards.influxql import DATASOURCE, Query

JSON_DIR = Path(__file__).resolve().parent / "json"
TAG = "xanet"

# -- filters and units -------------------------------------------------------

PROVINCE = '"province" =~ /^$province$/'
COMMUNE = '"commune" =~ /^$commune$/'
SITE = '"site" =~ /^$site$/'
AREA = f"{PROVINCE} AND {COMMUNE}"
AREA_SITE = f"{AREA} AND {SITE}"

#: Grafana unit of a stored field, by the suffix of its name.
UNIT_BPS, UNIT_PCT, UNIT_S, UNIT_MS = "bps", "percent", "s", "ms"

AVAILABILITY_PCT = '100 * sum("up_s") / (sum("up_s") + sum("down_s"))'
COVERAGE_PCT = ('100 * (sum("up_s") + sum("down_s")) '
                '/ (sum("up_s") + sum("down_s") + sum("unknown_s"))')


def _steps(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


AVAILABILITY_COLOURS = _steps((None, "red"), (95, "orange"), (99, "green"))
UTILISATION_COLOURS = _steps((None, "green"), (80, "orange"), (95, "red"))


def _map(*entries: tuple[int, str, str]) -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={
        str(v): dm.ValueMappingResult(text=text, color=colour, index=i)
        for i, (v, text, colour) in enumerate(entries)})]


UP_DOWN = _map((1, "UP", "green"), (0, "DOWN", "red"))
ONLINE = _map((1, "online", "green"), (0, "offline", "red"))
SERVICE_STATE = _map((1, "up", "green"), (0, "down", "red"), (-1, "unknown", "text"),
                     (-2, "maintenance", "blue"))
OUTAGE_OPEN = _map((1, "opened", "red"), (0, "closed", "green"))
IF_OPER = _map((1, "up", "green"), (2, "down", "red"), (3, "testing", "blue"),
               (4, "unknown", "text"), (5, "dormant", "purple"),
               (6, "notPresent", "text"), (7, "lowerLayerDown", "orange"))


def _unit(name: str, unit: str) -> db.DashboardFieldConfigSourceOverrides:
    return (db.DashboardFieldConfigSourceOverrides()
            .matcher(dm.MatcherConfig(id_val="byName", options=name))
            .properties([dm.DynamicConfigValue(id_val="unit", value=unit)]))


def _mapped(name: str, mappings: list[dm.ValueMapping]
            ) -> db.DashboardFieldConfigSourceOverrides:
    colour_cell = {"type": "color-background", "mode": "basic"}
    return (db.DashboardFieldConfigSourceOverrides()
            .matcher(dm.MatcherConfig(id_val="byName", options=name))
            .properties([dm.DynamicConfigValue(id_val="mappings", value=mappings),
                         dm.DynamicConfigValue(id_val="custom.cellOptions",
                                               value=colour_cell)]))


def _renamed(names: dict[str, str]) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val="organize", options={"renameByName": names})


# -- variables ---------------------------------------------------------------


def _tag_variable(name: str, label: str, where: str = "", *, multi: bool) -> db.QueryVariable:
    query = f'SHOW TAG VALUES FROM "device" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    var = (db.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
           .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).sort(dm.VariableSort.ALPHABETICAL_ASC))
    if multi:
        var = var.multi(True).include_all(True).all_value(".*")
    return var


def province_var() -> db.QueryVariable:
    return _tag_variable("province", "Province", multi=False)


def commune_var() -> db.QueryVariable:
    return _tag_variable("commune", "Commune", PROVINCE, multi=True)


def site_var() -> db.QueryVariable:
    return _tag_variable("site", "Site", AREA, multi=True)


def target_var() -> db.CustomVariable:
    return (db.CustomVariable("target").label("Availability target (%)")
            .values("99,99.9,98,95")
            .current(dm.VariableOption(selected=True, text="99", value="99")))


def _dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags([TAG])
            .time("now-24h", "now").refresh("1m").timezone("browser").readonly()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .link(db.DashboardLink("xanet").type(dm.DashboardLinkType.DASHBOARDS)
                  .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True)))


# -- province overview -------------------------------------------------------


def _share_meeting_target(title: str, service_filter: str) -> stat.Panel:
    """Share of communes whose availability over the range met ``$target``.

    ``floor(pct / $target)`` is 1 when pct >= target and 0 below (pct <= 100
    and target > 50), so its mean over communes is the share that met it."""
    q = (f'SELECT 100 * mean("met") AS "communes_met_pct" FROM ('
         f'SELECT floor({AVAILABILITY_PCT} / $target) AS "met" FROM "availability" '
         f'WHERE {AREA} AND {service_filter} AND $timeFilter GROUP BY "commune")')
    return (stat.Panel().title(title).datasource(DATASOURCE).with_target(Query(q))
            .description("Share of communes whose availability over the time range met "
                         "the target ($target %). Communes with no known time are left out.")
            .unit(UNIT_PCT).decimals(1).min(0).max(100).thresholds(AVAILABILITY_COLOURS)
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))


#: One series per outage: the tags an outage's points share (``device`` is absent
#: for site and agent outages; two devices of a site with the same service differ
#: only by it).
OUTAGE_SERIES = '"commune", "site", "service", "kind", "device", "interface"'

ACTIVE_OUTAGES = (
    'SELECT "open", "summary", "children" FROM ('
    'SELECT last("open") AS "open", "summary", "children" FROM "outage" '
    f'WHERE {{where}} GROUP BY {OUTAGE_SERIES}) '
    f'WHERE "open" = 1 GROUP BY {OUTAGE_SERIES}')


def province_overview() -> db.Dashboard:
    d = _dashboard("xanet-province", "xanet / Province overview",
                   "Per-commune availability of fibre, broadband and mobile; the "
                   "province KPIs; coverage; active outages.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(target_var())
    d = d.with_row(db.Row("Province KPIs"))
    d = d.with_panel(_share_meeting_target("Fibre: communes meeting target",
                                           "\"service\" = 'fibre'"))
    d = d.with_panel(_share_meeting_target("Broadband: communes meeting target",
                                           "\"service\" = 'broadband'"))
    d = d.with_panel(_share_meeting_target("Mobile: communes meeting target",
                                           '"service" =~ /^mobile/'))
    d = d.with_panel(
        stat.Panel().title("Coverage").datasource(DATASOURCE)
        .description("Known time / window over every commune-service: unknown time "
                     "(agents silent, spools not replayed) is lost coverage, never down.")
        .with_target(Query(f'SELECT {COVERAGE_PCT} AS "coverage_pct" FROM "availability" '
                           f"WHERE {AREA} AND $timeFilter"))
        .unit(UNIT_PCT).decimals(1).min(0).max(100).thresholds(AVAILABILITY_COLOURS)
        .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))
    d = d.with_panel(
        stat.Panel().title("Communes measured").datasource(DATASOURCE)
        .with_target(Query('SELECT count("n") AS "communes" FROM ('
                           'SELECT count("up_s") AS "n" FROM "availability" '
                           f'WHERE {AREA} AND $timeFilter GROUP BY "commune")'))
        .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))
    d = d.with_panel(
        stat.Panel().title("Active outages").datasource(DATASOURCE)
        .description("Outages whose latest point is an opening (whatever the time range).")
        .with_target(Query('SELECT count("open") AS "active" FROM ('
                           'SELECT last("open") AS "open" FROM "outage" '
                           f'WHERE {AREA} GROUP BY {OUTAGE_SERIES}) '
                           'WHERE "open" = 1'))
        .thresholds(_steps((None, "green"), (1, "red")))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))
    d = d.with_row(db.Row("Communes"))
    d = d.with_panel(
        table.Panel().title("Availability per commune (%)").datasource(DATASOURCE)
        .description("Up / (up + down) over the time range, from the 5-minute roll-ups. "
                     "Empty: the service is not measured there, or no time was known.")
        .with_target(Query(f'SELECT {AVAILABILITY_PCT} AS "availability_pct" '
                           f'FROM "availability" WHERE {AREA} AND $timeFilter '
                           'GROUP BY "commune", "service"').table())
        .with_transformation(dm.DataTransformerConfig(
            id_val="groupingToMatrix",
            options={"columnField": "service", "rowField": "commune",
                     "valueField": "availability_pct", "emptyValue": "null"}))
        .unit(UNIT_PCT).decimals(2).min(0).max(100).thresholds(AVAILABILITY_COLOURS)
        .cell_options(common.TableColoredBackgroundCellOptions(
            mode=common.TableCellBackgroundDisplayMode.BASIC))
        .height(12).span(24))
    d = d.with_panel(
        table.Panel().title("Open outages").datasource(DATASOURCE)
        .with_target(Query(ACTIVE_OUTAGES.format(where=AREA)).table())
        .with_transformation(_renamed({"Time": "opened"}))
        .override_by_name("open", [dm.DynamicConfigValue(id_val="mappings", value=OUTAGE_OPEN)])
        .height(10).span(14))
    d = d.with_panel(
        table.Panel().title("Coverage per commune (%)").datasource(DATASOURCE)
        .with_target(Query(f'SELECT {COVERAGE_PCT} AS "coverage_pct" FROM "availability" '
                           f'WHERE {AREA} AND $timeFilter GROUP BY "commune"').table())
        .unit(UNIT_PCT).decimals(1).min(0).max(100).thresholds(AVAILABILITY_COLOURS)
        .cell_options(common.TableColoredBackgroundCellOptions(
            mode=common.TableCellBackgroundDisplayMode.BASIC))
        .height(10).span(10))
    return d


# -- commune drill-down ------------------------------------------------------


def _timeseries(title: str, query: str, alias: str, unit: str | None = None
                ) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).datasource(DATASOURCE)
         .with_target(Query(query).alias(alias))
         .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                 .placement(common.LegendPlacement.BOTTOM).show_legend(True)
                 .calcs(["mean", "max", "lastNotNull"]))
         .span_nulls(False).height(9).span(12))
    return p.unit(unit) if unit else p


def commune_drilldown() -> db.Dashboard:
    d = _dashboard("xanet-commune", "xanet / Commune drill-down",
                   "Sites and devices of a commune: reachability, interface throughput "
                   "and utilisation, uptime.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(site_var())
    d = d.with_panel(
        table.Panel().title("Devices").datasource(DATASOURCE)
        .description("Latest poll of every device in the time range.")
        .with_target(Query('SELECT last("up") AS "up", "rtt_ms", "uptime_s", "error" '
                           f'FROM "device" WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY "site", "agent", "device"').table())
        .with_transformation(_renamed({"Time": "last poll"}))
        .overrides([_mapped("up", UP_DOWN), _unit("rtt_ms", UNIT_MS),
                    _unit("uptime_s", UNIT_S)])
        .height(8).span(24))
    d = d.with_panel(
        statetimeline.Panel().title("Device reachability").datasource(DATASOURCE)
        .with_target(Query('SELECT last("up") AS "up" FROM "device" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY time($__interval), "site", "device" fill(null)')
                     .alias("$tag_site / $tag_device"))
        .mappings(UP_DOWN).show_value(common.VisibilityMode.NEVER).height(8).span(24))
    d = d.with_panel(_timeseries(
        "Interface throughput (bits/s)",
        'SELECT mean("in_bps") AS "in_bps", mean("out_bps") AS "out_bps" FROM "interface" '
        f'WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device", "ifname" fill(null)',
        "$tag_device $tag_ifname $col", UNIT_BPS))
    d = d.with_panel(_timeseries(
        "Interface utilisation (%)",
        'SELECT max("in_util_pct") AS "in_util_pct", max("out_util_pct") AS "out_util_pct" '
        f'FROM "interface" WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device", "ifname" fill(null)',
        "$tag_device $tag_ifname $col", UNIT_PCT).min(0).thresholds(UTILISATION_COLOURS)
        .thresholds_style(cb.GraphThresholdsStyleConfig()
                         .mode(common.GraphThresholdsStyleMode.LINE)))
    d = d.with_panel(
        table.Panel().title("Interfaces").datasource(DATASOURCE)
        .description("Latest poll of every interface: oper status, speed, rates.")
        .with_target(Query('SELECT last("oper") AS "oper", "speed_bps", "in_bps", "out_bps", '
                           '"in_util_pct", "out_util_pct" FROM "interface" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY "site", "device", "ifindex", "ifname"').table())
        .with_transformation(_renamed({"Time": "last poll"}))
        .overrides([_mapped("oper", IF_OPER), _unit("speed_bps", UNIT_BPS),
                    _unit("in_bps", UNIT_BPS), _unit("out_bps", UNIT_BPS),
                    _unit("in_util_pct", UNIT_PCT), _unit("out_util_pct", UNIT_PCT)])
        .height(10).span(24))
    d = d.with_panel(_timeseries(
        "Device uptime",
        f'SELECT last("uptime_s") AS "uptime_s" FROM "device" WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device" fill(null)',
        "$tag_device", UNIT_S))
    d = d.with_panel(_timeseries(
        "SNMP round trip",
        f'SELECT mean("rtt_ms") AS "rtt_ms" FROM "device" WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device" fill(null)',
        "$tag_device", UNIT_MS))
    return d


# -- outage timeline ---------------------------------------------------------


def outage_timeline() -> db.Dashboard:
    d = _dashboard("xanet-outages", "xanet / Outage timeline",
                   "State of every commune-service over time, and the outage log.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(site_var())
    d = d.with_panel(
        statetimeline.Panel().title("Service state per commune").datasource(DATASOURCE)
        .description("State changes as stored (up / down / unknown / maintenance). A state "
                     "that began before the time range shows from its first change inside it.")
        .with_target(Query('SELECT "code" FROM "service_state" '
                           f'WHERE {AREA} AND $timeFilter GROUP BY "commune", "service"')
                     .alias("$tag_commune $tag_service"))
        .mappings(SERVICE_STATE).show_value(common.VisibilityMode.NEVER)
        .merge_values(True).height(12).span(24))
    d = d.with_panel(
        _timeseries("Availability per service (%)",
                    f'SELECT {AVAILABILITY_PCT} AS "availability_pct" FROM "availability" '
                    f'WHERE {AREA} AND $timeFilter '
                    'GROUP BY time($__interval), "service" fill(null)',
                    "$tag_service", UNIT_PCT)
        .interval("5m").min(0).max(100).span(14))
    d = d.with_panel(
        timeseries.Panel().title("Outages opened").datasource(DATASOURCE)
        .with_target(Query('SELECT sum("open") AS "opened" FROM "outage" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY time($__interval), "kind" fill(null)').alias("$tag_kind"))
        .draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
        .stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
        .interval("1m").height(9).span(10))
    d = d.with_panel(
        table.Panel().title("Outage log").datasource(DATASOURCE)
        .description("Every opening and closing in the time range; kind = device_down, "
                     "root (a site behind a failed uplink: children lists the sites "
                     "behind it) or agent_silent (never counted as down).")
        .with_target(Query('SELECT "open", "summary", "children" FROM "outage" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           f'GROUP BY {OUTAGE_SERIES}').table())
        .sort_by([cb.TableSortByFieldState().display_name("Time").desc(True)])
        .overrides([_mapped("open", OUTAGE_OPEN)])
        .height(12).span(24))
    return d


# -- agent health ------------------------------------------------------------


def agent_health() -> db.Dashboard:
    d = _dashboard("xanet-agents", "xanet / Agent health",
                   "Site agents (last seen, spool, drops, overruns, refusals, monitoring "
                   "faults) and the collector.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(site_var())
    d = d.with_panel(
        table.Panel().title("Agents: last status").datasource(DATASOURCE)
        .description("Latest status message of every agent, whatever the time range: "
                     "a silent agent stays listed with the time it was last heard.")
        .with_target(Query('SELECT last("online") AS "online", "reason", "spool_depth", '
                           '"spool_oldest_age_s", "spool_dropped", "poll_overruns", "devices", '
                           '"monitoring_errors", "refused", "quarantined", "polls_dropped", '
                           '"instance" '
                           f'FROM "agent_status" WHERE {AREA_SITE} '
                           'GROUP BY "commune", "site", "agent"').table())
        .with_transformation(_renamed({"Time": "last seen"}))
        .overrides([_mapped("online", ONLINE), _unit("spool_oldest_age_s", UNIT_S)])
        .height(8).span(16))
    d = d.with_panel(
        table.Panel().title("Agents: last telemetry").datasource(DATASOURCE)
        .with_target(Query('SELECT last("seq") AS "seq" FROM "device" '
                           f'WHERE {AREA_SITE} GROUP BY "site", "agent"').table())
        .with_transformation(_renamed({"Time": "last poll"}))
        .height(8).span(8))
    d = d.with_panel(
        statetimeline.Panel().title("Agent online").datasource(DATASOURCE)
        .with_target(Query('SELECT last("online") AS "online" FROM "agent_status" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY time($__interval), "agent" fill(previous)')
                     .alias("$tag_agent"))
        .mappings(ONLINE).show_value(common.VisibilityMode.NEVER).height(7).span(24))
    per_agent = f'FROM "agent_status" WHERE {AREA_SITE} AND $timeFilter ' \
                'GROUP BY time($__interval), "agent" fill(null)'
    d = d.with_panel(_timeseries("Spool depth (messages)",
                                 f'SELECT max("spool_depth") AS "spool_depth" {per_agent}',
                                 "$tag_agent").span(8))
    d = d.with_panel(_timeseries("Oldest spooled message",
                                 f'SELECT max("spool_oldest_age_s") AS "spool_oldest_age_s" '
                                 f"{per_agent}", "$tag_agent", UNIT_S).span(8))
    d = d.with_panel(_timeseries(
        "Spool drops, polls not spooled and poll overruns per interval",
        'SELECT non_negative_difference(max("spool_dropped")) AS "spool_dropped", '
        'non_negative_difference(max("polls_dropped")) AS "polls_dropped", '
        f'non_negative_difference(max("poll_overruns")) AS "poll_overruns" {per_agent}',
        "$tag_agent $col").draw_style(common.GraphDrawStyle.BARS).span(8))
    per_collector = 'FROM "collector_stats" WHERE $timeFilter ' \
                    'GROUP BY time($__interval), "collector" fill(null)'
    d = d.with_row(db.Row("Collector"))
    d = d.with_panel(_timeseries(
        "Collector throughput",
        'SELECT non_negative_derivative(max("received"), 1s) AS "received", '
        f'non_negative_derivative(max("lines_written"), 1s) AS "lines_written" {per_collector}',
        "$tag_collector $col", "cps").span(8))
    d = d.with_panel(_timeseries(
        "Collector rejections, gaps, duplicates per interval",
        'SELECT non_negative_difference(max("rejected")) AS "rejected", '
        'non_negative_difference(max("seq_gaps")) AS "seq_gaps", '
        'non_negative_difference(max("duplicates")) AS "duplicates", '
        f'non_negative_difference(max("dead_letters")) AS "dead_letters" {per_collector}',
        "$tag_collector $col").draw_style(common.GraphDrawStyle.BARS).span(8))
    d = d.with_panel(_timeseries(
        "Collector write buffer (lines)",
        f'SELECT max("lines_buffered") AS "lines_buffered" {per_collector}',
        "$tag_collector").span(8))
    return d


# -- output ------------------------------------------------------------------

DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "province-overview": province_overview,
    "commune-drilldown": commune_drilldown,
    "outage-timeline": outage_timeline,
    "agent-health": agent_health,
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
