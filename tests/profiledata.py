"""Profile values and power readings for tests: Hypothesis strategies of valid ones, and the
UPS and sensor polls of a mountain site whose mains fail (values like the EAST iStars UPS
and the Palo Alto PA-5050 recordings of snmpsim-data, tests/test_profile_recordings.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import strategies as st

import lab
from xanet import wire

# -- strategies: what a valid agent may send -----------------------------------------------

metric_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
profile_names = st.sampled_from(["ups-mib", "entity-sensor", "host-resources", "vendor-x1"])
tag_text = st.text(st.characters(codec="utf-8"), max_size=24)
finite = st.floats(-1e15, 1e15, allow_nan=False, allow_infinity=False)


@st.composite
def profile_values(draw: st.DrawFn) -> wire.ProfileValue:
    """Any one of the shapes: a gauge, a counter (with a rate or why not), a label with its
    code, a text, or unknown with its reason."""
    common = {
        "metric": draw(metric_names),
        "tags": draw(st.none() | st.dictionaries(metric_names, tag_text, max_size=3)),
        "unit": draw(st.none() | st.sampled_from(["", "V", "°C", "%", "min", "s", "Hz"])),
    }
    shape = draw(st.sampled_from(["value", "counter", "text", "label", "unknown"]))
    if shape == "value":
        return wire.ProfileValue(**common, value=draw(finite | st.integers(-10**6, 10**6)))
    if shape == "counter":
        return wire.ProfileValue(
            **common, counter=draw(st.integers(0, 2**64 - 1)),
            rate=draw(st.none() | st.floats(0, 1e12)),
            rate_note=draw(st.none() | st.sampled_from(["first_poll", "reboot", "wrap"])))
    if shape == "label":
        return wire.ProfileValue(**common, text=draw(tag_text),
                                 code=draw(st.integers(-(2**31), 2**32 - 1)))
    if shape == "text":
        return wire.ProfileValue(**common, text=draw(tag_text))
    return wire.ProfileValue(**common, unknown=draw(st.sampled_from(wire.PROFILE_UNKNOWNS)))


@st.composite
def profile_readings(draw: st.DrawFn, max_values: int = 6) -> wire.ProfileReading:
    failed = draw(st.integers(0, 5)) == 0
    return wire.ProfileReading(
        profile=draw(profile_names),
        values=[] if failed else draw(st.lists(profile_values(), max_size=max_values)),
        warnings=draw(st.none() | st.lists(tag_text, max_size=2)),
        error="no response" if failed else None,
        cause=draw(st.sampled_from(wire.POLL_CAUSES)) if failed else None)


power_readings = st.builds(
    wire.PowerReading, state=st.sampled_from(wire.POWER_STATES), profile=profile_names,
    minutes_remaining=st.none() | st.floats(0, 10**6) | st.integers(0, 10**6),
    charge_pct=st.none() | st.floats(0, 100), seconds_on_battery=st.none()
    | st.integers(0, 2**31 - 1))


# -- a site whose mains fail -----------------------------------------------------------------

PA_5000 = lab.SNMPSIM_DATA_DIR / "network/firewall/paloalto-pa-5000.snmprec.bz2"
SENSOR = "1.3.6.1.2.1.99.1.1.1"
ENT_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
SENSOR_TYPES = {8: "celsius", 10: "rpm"}


def pa5000_sensors() -> list[wire.ProfileValue]:
    """The 14 sensors of the PA-5050 recording as the entity-sensor profile reports them:
    ``sensor_value`` (scale units, precision 0: the raw value) and ``sensor_status``, tagged
    with the entity index, entPhysicalName and the sensor type."""
    rec = lab.snmprec_values(PA_5000)
    out: list[wire.ProfileValue] = []
    indices = sorted(int(oid.rsplit(".", 1)[1]) for oid in rec
                     if oid.startswith(f"{SENSOR}.1.") and oid.count(".") == SENSOR.count(".") + 2)
    for i in indices:
        tags = {"entity_index": str(i), "entity": rec[f"{ENT_NAME}.{i}"][1],
                "sensor_type": SENSOR_TYPES[int(rec[f"{SENSOR}.1.{i}"][1])]}
        out.append(wire.ProfileValue(metric="sensor_value", tags=tags,
                                     value=float(rec[f"{SENSOR}.4.{i}"][1])))
        out.append(wire.ProfileValue(metric="sensor_status", tags=tags, text="ok",
                                     code=int(rec[f"{SENSOR}.5.{i}"][1])))
    return out


def ups_values(minutes: float, on_battery: bool) -> list[wire.ProfileValue]:
    """The ups-mib values of the EAST UPS (three input lines indexed ``1.0`` .. ``3.0`` as
    the recording has them), its battery voltage the sentinel -1: unknown."""
    source = (5, "battery") if on_battery else (3, "normal")
    volts = 0.0 if on_battery else 236.0
    return [
        wire.ProfileValue(metric="battery_status", text="batteryNormal", code=2),
        wire.ProfileValue(metric="seconds_on_battery", unit="s",
                          value=600.0 if on_battery else 0.0),
        wire.ProfileValue(metric="minutes_remaining", unit="min", value=minutes),
        wire.ProfileValue(metric="charge_remaining", unit="%", value=100.0),
        wire.ProfileValue(metric="battery_voltage", unit="V", unknown="sentinel"),
        wire.ProfileValue(metric="battery_temperature", unit="°C", value=36.0),
        wire.ProfileValue(metric="input_line_bads", counter=7, rate_note="first_poll"),
        wire.ProfileValue(metric="output_source", text=source[1], code=source[0]),
        *(wire.ProfileValue(metric="input_voltage", unit="V", tags={"line": f"{n}.0"},
                            value=volts) for n in (1, 2, 3)),
    ]


def ups_poll(device: str, ts: datetime, minutes: float, on_battery: bool) -> wire.DevicePoll:
    state: wire.PowerState = "on_battery" if on_battery else "mains"
    return wire.DevicePoll(
        device=device, ts=ts, reachable=True, rtt_ms=4.0,
        profiles=[wire.ProfileReading(profile="ups-mib", values=ups_values(minutes, on_battery))],
        power=wire.PowerReading(state=state, profile="ups-mib", minutes_remaining=minutes,
                                charge_pct=100.0, seconds_on_battery=600 if on_battery else 0))


def sensor_poll(device: str, ts: datetime) -> wire.DevicePoll:
    return wire.DevicePoll(device=device, ts=ts, reachable=True, rtt_ms=2.0, profiles=[
        wire.ProfileReading(profile="entity-sensor", values=pa5000_sensors())])


def mains_failure_hour(now: datetime, ups: str = "ups-1", fw: str = "fw-1"
                       ) -> list[wire.DevicePoll]:
    """An hour at a site, one poll each 5 minutes: the UPS on mains (60 minutes of battery
    in reserve) until 30 minutes ago, then on battery, its estimate falling to 40 minutes by
    the last poll (a minute ago); the firewall's sensors polled alongside."""
    out: list[wire.DevicePoll] = []
    for k in range(11):
        minutes_ago = 51 - 5 * k
        ts = now - timedelta(minutes=minutes_ago)
        on_battery = minutes_ago <= 30
        minutes = 40.0 + 20.0 * (minutes_ago - 1) / 29 if on_battery else 60.0
        out += [ups_poll(ups, ts, minutes, on_battery), sensor_poll(fw, ts)]
    return out
