"""The power/environment dashboard: which sites run on battery and for how long, and how
hot their equipment is.

- ``xanet-power``  sites on battery now (commune, site, device, state, minutes remaining,
  charge), the power state timeline, minutes remaining and charge over time,
  temperatures, the UPS input voltage.

From the ``power`` measurement (the agent's power reading of each poll) and the
``profile`` measurement (device profile values, docs/profiles.md): InfluxQL against the
provisioned data source, measurements named by collector/schema.py's constants, checked
against a real InfluxDB filled by the collector in tests/test_dashboards.py.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import statetimeline, table
from grafana_foundation_sdk.models import common

from collector import schema
from dashboards.influxql import DATASOURCE, Query
from dashboards.style import (
    AREA_SITE,
    UNIT_PCT,
    UNIT_S,
    commune_var,
    dashboard,
    province_var,
    renamed,
    site_var,
    thresholds,
    trend,
    unit_override,
    value_map,
)

POWER, PROFILE = schema.POWER.name, schema.PROFILE.name
T = schema.ROW_TAG_PREFIX

#: Grafana units: minutes, degrees Celsius, volts.
UNIT_MIN, UNIT_CELSIUS, UNIT_VOLT = "m", "celsius", "volt"

#: The power measurement's codes (collector/schema.py POWER_CODES), as a state timeline
#: shows them.
POWER_STATE = value_map((0, "mains", "green"), (1, "on battery", "orange"),
                        (2, "battery low", "red"), (-1, "unknown", "text"))

#: Which profile values are temperatures: an ENTITY-SENSOR-MIB sensor of type celsius
#: (entity-sensor), and any value whose profile gives it the unit °C (the ups-mib battery
#: temperature; a profile of your own that says ``unit = "°C"``).
TEMPERATURES = (f"((\"metric\" = 'sensor_value' AND \"{T}sensor_type\" = 'celsius') "
                "OR \"unit\" = '°C')")
#: The UPS input voltage (ups-mib's input table, one row per line).
INPUT_VOLTAGE = "\"metric\" = 'input_voltage'"

#: One series per device's power.
PER_DEVICE = '"commune", "site", "device"'

ON_BATTERY_NOW = (
    'SELECT "state", "minutes_remaining", "charge_pct", "on_battery_s" FROM ('
    'SELECT last("code") AS "code", "state", "minutes_remaining", "charge_pct", '
    f'"seconds_on_battery" AS "on_battery_s" FROM "{POWER}" WHERE {AREA_SITE} '
    f'GROUP BY {PER_DEVICE}) WHERE "code" >= 1 GROUP BY {PER_DEVICE}')


def power_environment() -> db.Dashboard:
    d = dashboard("xanet-power", "xanet / Power and environment",
                  "Sites on battery now and how long they have left; the power state "
                  "over time; temperatures; the UPS input voltage.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(site_var())
    d = d.with_panel(
        table.Panel().title("Sites on battery now").datasource(DATASOURCE)
        .description("Devices whose latest power reading (whatever the time range) is on "
                     "battery or battery low: the UPS's minutes remaining on the present "
                     "load, its charge, and how long it has been on battery. A site that "
                     "went dark on battery stays listed, with the time of its last poll.")
        .with_target(Query(ON_BATTERY_NOW).table())
        .with_transformation(renamed({"Time": "last poll"}))
        .overrides([unit_override("minutes_remaining", UNIT_MIN),
                    unit_override("charge_pct", UNIT_PCT),
                    unit_override("on_battery_s", UNIT_S)])
        .height(8).span(24))
    d = d.with_panel(
        statetimeline.Panel().title("Power state").datasource(DATASOURCE)
        .description("mains / on battery / battery low / unknown, per device with a power "
                     "profile (ups-mib, or any that maps to a power state).")
        .with_target(Query(f'SELECT last("code") AS "code" FROM "{POWER}" '
                           f'WHERE {AREA_SITE} AND $timeFilter '
                           'GROUP BY time($__interval), "site", "device" fill(previous)')
                     .alias("$tag_site / $tag_device"))
        .mappings(POWER_STATE).show_value(common.VisibilityMode.NEVER)
        .merge_values(True).height(8).span(24))
    d = d.with_panel(trend(
        "Minutes remaining on battery",
        f'SELECT last("minutes_remaining") AS "minutes_remaining" FROM "{POWER}" '
        f'WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "site", "device" fill(null)',
        "$tag_site / $tag_device", UNIT_MIN).min(0)
        .thresholds(thresholds((None, "red"), (15, "orange"), (30, "green"))))
    d = d.with_panel(trend(
        "Battery charge (%)",
        f'SELECT last("charge_pct") AS "charge_pct" FROM "{POWER}" '
        f'WHERE {AREA_SITE} AND $timeFilter '
        'GROUP BY time($__interval), "site", "device" fill(null)',
        "$tag_site / $tag_device", UNIT_PCT).min(0).max(100))
    d = d.with_panel(trend(
        "Temperatures",
        f'SELECT mean("value") AS "value" FROM "{PROFILE}" '
        f"WHERE {AREA_SITE} AND {TEMPERATURES} AND $timeFilter "
        f'GROUP BY time($__interval), "site", "device", "metric", "{T}entity" fill(null)',
        f"$tag_device $tag_{T}entity $tag_metric", UNIT_CELSIUS)
        .description("ENTITY-SENSOR-MIB sensors of type celsius, named by entPhysicalName, "
                     "and every profile value in °C (the UPS battery temperature)."))
    d = d.with_panel(trend(
        "UPS input voltage",
        f'SELECT mean("value") AS "value" FROM "{PROFILE}" '
        f"WHERE {AREA_SITE} AND {INPUT_VOLTAGE} AND $timeFilter "
        f'GROUP BY time($__interval), "site", "device", "{T}line" fill(null)',
        f"$tag_site / $tag_device line $tag_{T}line", UNIT_VOLT)
        .description("ups-mib upsInputVoltage per input line: 0 V when the mains are gone."))
    return d
