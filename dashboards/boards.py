"""The four availability dashboards: what each shows and how it asks InfluxDB for it
(the fifth, power and environment, is :mod:`dashboards.power`).

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

All InfluxQL against the provisioned data source (uid ``xanet-influxdb``,
deploy/grafana/datasources/xanet.yaml); measurements named by collector/schema.py's
constants; tests/test_dashboards.py checks fields and units against a real InfluxDB.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from collector import schema
from dashboards.influxql import DATASOURCE, Query
from dashboards.style import (
    AREA,
    AREA_SITE,
    AVAILABILITY_COLOURS,
    AVAILABILITY_PCT,
    COVERAGE_PCT,
    IF_OPER,
    ONLINE,
    OUTAGE_OPEN,
    STATE_CODES,
    UNIT_BPS,
    UNIT_BYTES,
    UNIT_BYTES_PER_S,
    UNIT_MS,
    UNIT_PCT,
    UNIT_S,
    UP_DOWN,
    UTILISATION_COLOURS,
    commune_var,
    dashboard,
    mapped,
    province_var,
    renamed,
    site_var,
    target_var,
    thresholds,
    trend,
    unit_override,
)

DEVICE, INTERFACE, AGENT_STATUS = schema.DEVICE.name, schema.INTERFACE.name, \
    schema.AGENT_STATUS.name
SERVICE_STATE, AVAILABILITY = schema.SERVICE_STATE.name, schema.AVAILABILITY.name
OUTAGE, COLLECTOR_STATS = schema.OUTAGE.name, schema.COLLECTOR_STATS.name


# -- province overview -------------------------------------------------------


def _share_meeting_target(title: str, service_filter: str) -> stat.Panel:
    """Share of communes whose availability over the range met ``$target``.

    ``floor(pct / $target)`` is 1 when pct >= target and 0 below (pct <= 100
    and target > 50), so its mean over communes is the share that met it."""
    q = (f'SELECT 100 * mean("met") AS "communes_met_pct" FROM ('
         f'SELECT floor({AVAILABILITY_PCT} / $target) AS "met" FROM "{AVAILABILITY}" '
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
    f'SELECT last("open") AS "open", "summary", "children" FROM "{OUTAGE}" '
    f'WHERE {{where}} GROUP BY {OUTAGE_SERIES}) '
    f'WHERE "open" = 1 GROUP BY {OUTAGE_SERIES}')


def province_overview() -> db.Dashboard:
    d = dashboard("xanet-province", "xanet / Province overview",
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
        .with_target(Query(f'SELECT {COVERAGE_PCT} AS "coverage_pct" FROM "{AVAILABILITY}" '
                           f"WHERE {AREA} AND $timeFilter"))
        .unit(UNIT_PCT).decimals(1).min(0).max(100).thresholds(AVAILABILITY_COLOURS)
        .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))
    d = d.with_panel(
        stat.Panel().title("Communes measured").datasource(DATASOURCE)
        .with_target(Query('SELECT count("n") AS "communes" FROM ('
                           f'SELECT count("up_s") AS "n" FROM "{AVAILABILITY}" '
                           f'WHERE {AREA} AND $timeFilter GROUP BY "commune")'))
        .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))
    d = d.with_panel(
        stat.Panel().title("Active outages").datasource(DATASOURCE)
        .description("Outages whose latest point is an opening (whatever the time range).")
        .with_target(Query('SELECT count("open") AS "active" FROM ('
                           f'SELECT last("open") AS "open" FROM "{OUTAGE}" '
                           f'WHERE {AREA} GROUP BY {OUTAGE_SERIES}) '
                           'WHERE "open" = 1'))
        .thresholds(thresholds((None, "green"), (1, "red")))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE).height(5).span(4))
    d = d.with_row(db.Row("Communes"))
    d = d.with_panel(
        table.Panel().title("Availability per commune (%)").datasource(DATASOURCE)
        .description("Up / (up + down) over the time range, from the 5-minute roll-ups. "
                     "Empty: the service is not measured there, or no time was known.")
        .with_target(Query(f'SELECT {AVAILABILITY_PCT} AS "availability_pct" '
                           f'FROM "{AVAILABILITY}" WHERE {AREA} AND $timeFilter '
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
        .with_transformation(renamed({"Time": "opened"}))
        .override_by_name("open", [dm.DynamicConfigValue(id_val="mappings", value=OUTAGE_OPEN)])
        .height(10).span(14))
    d = d.with_panel(
        table.Panel().title("Coverage per commune (%)").datasource(DATASOURCE)
        .with_target(Query(f'SELECT {COVERAGE_PCT} AS "coverage_pct" FROM "{AVAILABILITY}" '
                           f'WHERE {AREA} AND $timeFilter GROUP BY "commune"').table())
        .unit(UNIT_PCT).decimals(1).min(0).max(100).thresholds(AVAILABILITY_COLOURS)
        .cell_options(common.TableColoredBackgroundCellOptions(
            mode=common.TableCellBackgroundDisplayMode.BASIC))
        .height(10).span(10))
    return d


# -- commune drill-down ------------------------------------------------------




def commune_drilldown() -> db.Dashboard:
    d = dashboard("xanet-commune", "xanet / Commune drill-down",
                   "Sites and devices of a commune: reachability, interface throughput "
                   "and utilisation, uptime.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(site_var())
    d = d.with_panel(
        table.Panel().title("Devices").datasource(DATASOURCE)
        .description("Latest poll of every device in the time range.")
        .with_target(Query('SELECT last("up") AS "up", "rtt_ms", "uptime_s", "error" '
                           f'FROM "{DEVICE}" WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY "site", "agent", "device"').table())
        .with_transformation(renamed({"Time": "last poll"}))
        .overrides([mapped("up", UP_DOWN), unit_override("rtt_ms", UNIT_MS),
                    unit_override("uptime_s", UNIT_S)])
        .height(8).span(24))
    d = d.with_panel(
        statetimeline.Panel().title("Device reachability").datasource(DATASOURCE)
        .with_target(Query(f'SELECT last("up") AS "up" FROM "{DEVICE}" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY time($__interval), "site", "device" fill(null)')
                     .alias("$tag_site / $tag_device"))
        .mappings(UP_DOWN).show_value(common.VisibilityMode.NEVER).height(8).span(24))
    d = d.with_panel(trend(
        "Interface throughput (bits/s)",
        f'SELECT mean("in_bps") AS "in_bps", mean("out_bps") AS "out_bps" FROM "{INTERFACE}" '
        f'WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device", "ifname" fill(null)',
        "$tag_device $tag_ifname $col", UNIT_BPS))
    d = d.with_panel(trend(
        "Interface utilisation (%)",
        'SELECT max("in_util_pct") AS "in_util_pct", max("out_util_pct") AS "out_util_pct" '
        f'FROM "{INTERFACE}" WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device", "ifname" fill(null)',
        "$tag_device $tag_ifname $col", UNIT_PCT).min(0).thresholds(UTILISATION_COLOURS)
        .thresholds_style(cb.GraphThresholdsStyleConfig()
                         .mode(common.GraphThresholdsStyleMode.LINE)))
    d = d.with_panel(
        table.Panel().title("Interfaces").datasource(DATASOURCE)
        .description("Latest poll of every interface: oper status, its label (ifAlias), "
                     "speed, rates.")
        .with_target(Query('SELECT last("oper") AS "oper", "alias", "speed_bps", "in_bps", '
                           '"out_bps", '
                           f'"in_util_pct", "out_util_pct" FROM "{INTERFACE}" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY "site", "device", "ifindex", "ifname"').table())
        .with_transformation(renamed({"Time": "last poll"}))
        .overrides([mapped("oper", IF_OPER), unit_override("speed_bps", UNIT_BPS),
                    unit_override("in_bps", UNIT_BPS), unit_override("out_bps", UNIT_BPS),
                    unit_override("in_util_pct", UNIT_PCT),
                    unit_override("out_util_pct", UNIT_PCT)])
        .height(10).span(24))
    d = d.with_panel(trend(
        "Device uptime",
        f'SELECT last("uptime_s") AS "uptime_s" FROM "{DEVICE}" WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device" fill(null)',
        "$tag_device", UNIT_S))
    d = d.with_panel(trend(
        "SNMP round trip",
        f'SELECT mean("rtt_ms") AS "rtt_ms" FROM "{DEVICE}" WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "device" fill(null)',
        "$tag_device", UNIT_MS))
    return d


# -- outage timeline ---------------------------------------------------------


def outage_timeline() -> db.Dashboard:
    d = dashboard("xanet-outages", "xanet / Outage timeline",
                   "State of every commune-service over time, and the outage log.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(site_var())
    d = d.with_panel(
        statetimeline.Panel().title("Service state per commune").datasource(DATASOURCE)
        .description("State changes as stored (up / down / unknown / maintenance). A state "
                     "that began before the time range shows from its first change inside it.")
        .with_target(Query(f'SELECT "code" FROM "{SERVICE_STATE}" '
                           f'WHERE {AREA} AND $timeFilter GROUP BY "commune", "service"')
                     .alias("$tag_commune $tag_service"))
        .mappings(STATE_CODES).show_value(common.VisibilityMode.NEVER)
        .merge_values(True).height(12).span(24))
    d = d.with_panel(
        trend("Availability per service (%)",
                    f'SELECT {AVAILABILITY_PCT} AS "availability_pct" FROM "{AVAILABILITY}" '
                    f'WHERE {AREA} AND $timeFilter '
                    'GROUP BY time($__interval), "service" fill(null)',
                    "$tag_service", UNIT_PCT)
        .interval("5m").min(0).max(100).span(14))
    d = d.with_panel(
        timeseries.Panel().title("Outages opened").datasource(DATASOURCE)
        .with_target(Query(f'SELECT sum("open") AS "opened" FROM "{OUTAGE}" '
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
        .with_target(Query(f'SELECT "open", "summary", "children" FROM "{OUTAGE}" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           f'GROUP BY {OUTAGE_SERIES}').table())
        .sort_by([cb.TableSortByFieldState().display_name("Time").desc(True)])
        .overrides([mapped("open", OUTAGE_OPEN)])
        .height(12).span(24))
    return d


# -- agent health ------------------------------------------------------------


def agent_health() -> db.Dashboard:
    d = dashboard("xanet-agents", "xanet / Agent health",
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
                           '"backlog_bytes", "drain_eta_s", "stretch_factor", "instance" '
                           f'FROM "{AGENT_STATUS}" WHERE {AREA_SITE} '
                           'GROUP BY "commune", "site", "agent"').table())
        .with_transformation(renamed({"Time": "last seen"}))
        .overrides([mapped("online", ONLINE), unit_override("spool_oldest_age_s", UNIT_S),
                    unit_override("backlog_bytes", UNIT_BYTES),
                    unit_override("drain_eta_s", UNIT_S)])
        .height(8).span(16))
    d = d.with_panel(
        table.Panel().title("Agents: last telemetry").datasource(DATASOURCE)
        .with_target(Query(f'SELECT last("seq") AS "seq" FROM "{DEVICE}" '
                           f'WHERE {AREA_SITE} GROUP BY "site", "agent"').table())
        .with_transformation(renamed({"Time": "last poll"}))
        .height(8).span(8))
    d = d.with_panel(
        statetimeline.Panel().title("Agent online").datasource(DATASOURCE)
        .with_target(Query(f'SELECT last("online") AS "online" FROM "{AGENT_STATUS}" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY time($__interval), "agent" fill(previous)')
                     .alias("$tag_agent"))
        .mappings(ONLINE).show_value(common.VisibilityMode.NEVER).height(7).span(24))
    per_agent = f'FROM "{AGENT_STATUS}" WHERE {AREA_SITE} AND $timeFilter '\
                'GROUP BY time($__interval), "agent" fill(null)'
    d = d.with_panel(trend("Spool depth (messages)",
                                 f'SELECT max("spool_depth") AS "spool_depth" {per_agent}',
                                 "$tag_agent").span(8))
    d = d.with_panel(trend("Oldest spooled message",
                                 f'SELECT max("spool_oldest_age_s") AS "spool_oldest_age_s" '
                                 f"{per_agent}", "$tag_agent", UNIT_S).span(8))
    d = d.with_panel(trend(
        "Spool drops, polls not spooled and poll overruns per interval",
        'SELECT non_negative_difference(max("spool_dropped")) AS "spool_dropped", '
        'non_negative_difference(max("polls_dropped")) AS "polls_dropped", '
        f'non_negative_difference(max("poll_overruns")) AS "poll_overruns" {per_agent}',
        "$tag_agent $col").draw_style(common.GraphDrawStyle.BARS).span(8))
    d = uplink_bytes(d, per_agent)
    per_collector = f'FROM "{COLLECTOR_STATS}" WHERE $timeFilter '\
                    'GROUP BY time($__interval), "collector" fill(null)'
    d = d.with_row(db.Row("Collector"))
    d = d.with_panel(trend(
        "Collector throughput",
        'SELECT non_negative_derivative(max("received"), 1s) AS "received", '
        f'non_negative_derivative(max("lines_written"), 1s) AS "lines_written" {per_collector}',
        "$tag_collector $col", "cps").span(8))
    d = d.with_panel(trend(
        "Collector rejections, gaps, duplicates per interval",
        'SELECT non_negative_difference(max("rejected")) AS "rejected", '
        'non_negative_difference(max("seq_gaps")) AS "seq_gaps", '
        'non_negative_difference(max("duplicates")) AS "duplicates", '
        f'non_negative_difference(max("dead_letters")) AS "dead_letters" {per_collector}',
        "$tag_collector $col").draw_style(common.GraphDrawStyle.BARS).span(8))
    d = d.with_panel(trend(
        "Collector write buffer (lines)",
        f'SELECT max("lines_buffered") AS "lines_buffered" {per_collector}',
        "$tag_collector").span(8))
    return d.with_panel(
        table.Panel().title("Partitions: who owns, since which epoch").datasource(DATASOURCE)
        .description("Each collector's last report (a standby writes none: the newest row "
                     "of a partition is its owner). Epoch and takeovers come from the lease "
                     "(docs/deploy-core.md, \"Two collectors per partition\"); checkpoints "
                     "are what a new owner would restore.")
        .with_target(Query('SELECT last("lease_state") AS "lease_state", '
                           'last("lease_epoch") AS "lease_epoch", '
                           'last("takeovers") AS "takeovers", '
                           'last("checkpoints_written") AS "checkpoints_written", '
                           'last("checkpoint_failures") AS "checkpoint_failures", '
                           'last("seq_resumed") AS "seq_resumed" '
                           f'FROM "{COLLECTOR_STATS}" WHERE $timeFilter '
                           'GROUP BY "collector"').table())
        .with_transformation(renamed({"Time": "last report"}))
        .height(6).span(24))


def uplink_bytes(d: db.Dashboard, per_agent: str) -> db.Dashboard:
    """The agents' uplinks in bytes: by lane against the budget, per poll and interface
    sample, compression, the backlog and its drain ETA, profiles stretched
    (docs/delivery.md, "Live first")."""
    d = d.with_row(db.Row("Uplink bytes"))
    d = d.with_panel(trend(
        "Uplink bytes/s: live, backlog, and the backlog's budget",
        'SELECT non_negative_derivative(max("bytes_live"), 1s) AS "live_bytes_per_s", '
        'non_negative_derivative(max("bytes_backlog"), 1s) AS "backlog_bytes_per_s", '
        f'max("budget_bytes_per_s") AS "budget_bytes_per_s" {per_agent}',
        "$tag_agent $col", UNIT_BYTES_PER_S).span(8))
    d = d.with_panel(trend(
        "Bytes per poll and per interface sample (on the wire)",
        'SELECT mean("bytes_per_poll") AS "bytes_per_poll", '
        f'mean("bytes_per_interface") AS "bytes_per_interface" {per_agent}',
        "$tag_agent $col", UNIT_BYTES).span(8))
    d = d.with_panel(trend(
        "Compression ratio (JSON bytes / wire bytes)",
        f'SELECT mean("compression_ratio") AS "compression_ratio" {per_agent}',
        "$tag_agent").span(8))
    d = d.with_panel(trend(
        "Backlog to send (bytes)",
        f'SELECT max("backlog_bytes") AS "backlog_bytes" {per_agent}',
        "$tag_agent", UNIT_BYTES).span(8))
    d = d.with_panel(trend(
        "Backlog drain ETA",
        f'SELECT max("drain_eta_s") AS "drain_eta_s" {per_agent}',
        "$tag_agent", UNIT_S).span(8))
    return d.with_panel(trend(
        "Saturated uplink: profiles stretched, and by how much",
        'SELECT max("profiles_stretched") AS "profiles_stretched", '
        f'max("stretch_factor") AS "stretch_factor" {per_agent}',
        "$tag_agent $col").span(8))
