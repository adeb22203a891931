"""The dashboards' shared vocabulary: filters, units, colours, value maps, variables and
panel shapes (grafana-foundation-sdk builders).

Column aliases keep the stored field names, so a field's unit suffix (``_bps``, ``_pct``,
``_s``, ``_ms``) also names the column's Grafana unit. Template variables: ``$province``
(one), ``$commune`` and ``$site`` (several, or All = ``.*``), ``$target`` (the KPI's
availability target, %). Queries use them as ``"commune" =~ /^$commune$/`` – Grafana
writes a multi-value as ``(a|b)`` there – and Grafana's InfluxQL macros ``$timeFilter``
and ``$__interval``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from collector import schema
from dashboards.influxql import DATASOURCE, Query

TAG = "xanet"

# -- filters and units -------------------------------------------------------

PROVINCE = '"province" =~ /^$province$/'
COMMUNE = '"commune" =~ /^$commune$/'
SITE = '"site" =~ /^$site$/'
AREA = f"{PROVINCE} AND {COMMUNE}"
AREA_SITE = f"{AREA} AND {SITE}"

#: Grafana unit of a stored field, by the suffix of its name.
UNIT_BPS, UNIT_PCT, UNIT_S, UNIT_MS = "bps", "percent", "s", "ms"
#: Bytes per second (``*_bytes_per_s``) and bytes (Grafana's names).
UNIT_BYTES_PER_S, UNIT_BYTES = "Bps", "decbytes"

AVAILABILITY_PCT = '100 * sum("up_s") / (sum("up_s") + sum("down_s"))'
COVERAGE_PCT = ('100 * (sum("up_s") + sum("down_s")) '
                '/ (sum("up_s") + sum("down_s") + sum("unknown_s"))')


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


AVAILABILITY_COLOURS = thresholds((None, "red"), (95, "orange"), (99, "green"))
UTILISATION_COLOURS = thresholds((None, "green"), (80, "orange"), (95, "red"))


def value_map(*entries: tuple[int, str, str]) -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={
        str(v): dm.ValueMappingResult(text=text, color=colour, index=i)
        for i, (v, text, colour) in enumerate(entries)})]


UP_DOWN = value_map((1, "UP", "green"), (0, "DOWN", "red"))
ONLINE = value_map((1, "online", "green"), (0, "offline", "red"))
STATE_CODES = value_map((1, "up", "green"), (0, "down", "red"), (-1, "unknown", "text"),
                     (-2, "maintenance", "blue"))
OUTAGE_OPEN = value_map((1, "opened", "red"), (0, "closed", "green"))
IF_OPER = value_map((1, "up", "green"), (2, "down", "red"), (3, "testing", "blue"),
               (4, "unknown", "text"), (5, "dormant", "purple"),
               (6, "notPresent", "text"), (7, "lowerLayerDown", "orange"))


def unit_override(name: str, unit: str) -> db.DashboardFieldConfigSourceOverrides:
    return (db.DashboardFieldConfigSourceOverrides()
            .matcher(dm.MatcherConfig(id_val="byName", options=name))
            .properties([dm.DynamicConfigValue(id_val="unit", value=unit)]))


def mapped(name: str, mappings: list[dm.ValueMapping]
            ) -> db.DashboardFieldConfigSourceOverrides:
    colour_cell = {"type": "color-background", "mode": "basic"}
    return (db.DashboardFieldConfigSourceOverrides()
            .matcher(dm.MatcherConfig(id_val="byName", options=name))
            .properties([dm.DynamicConfigValue(id_val="mappings", value=mappings),
                         dm.DynamicConfigValue(id_val="custom.cellOptions",
                                               value=colour_cell)]))


def renamed(names: dict[str, str]) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val="organize", options={"renameByName": names})


# -- variables ---------------------------------------------------------------


def tag_variable(name: str, label: str, where: str = "", *, multi: bool) -> db.QueryVariable:
    query = f'SHOW TAG VALUES FROM "{schema.DEVICE.name}" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    var = (db.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
           .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD).sort(dm.VariableSort.ALPHABETICAL_ASC))
    if multi:
        var = var.multi(True).include_all(True).all_value(".*")
    return var


def province_var() -> db.QueryVariable:
    return tag_variable("province", "Province", multi=False)


def commune_var() -> db.QueryVariable:
    return tag_variable("commune", "Commune", PROVINCE, multi=True)


def site_var() -> db.QueryVariable:
    return tag_variable("site", "Site", AREA, multi=True)


def target_var() -> db.CustomVariable:
    return (db.CustomVariable("target").label("Availability target (%)")
            .values("99,99.9,98,95")
            .current(dm.VariableOption(selected=True, text="99", value="99")))


def dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags([TAG])
            .time("now-24h", "now").refresh("1m").timezone("browser").readonly()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .link(db.DashboardLink("xanet").type(dm.DashboardLinkType.DASHBOARDS)
                  .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True)))


def trend(title: str, query: str, alias: str, unit: str | None = None
                ) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).datasource(DATASOURCE)
         .with_target(Query(query).alias(alias))
         .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                 .placement(common.LegendPlacement.BOTTOM).show_legend(True)
                 .calcs(["mean", "max", "lastNotNull"]))
         .span_nulls(False).height(9).span(12))
    return p.unit(unit) if unit else p
