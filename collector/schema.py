"""What xanet stores in InfluxDB: every measurement, its tags and fields, and its lines. Pure.

The one home of the schema (docs/data.md lists it; tests/test_schema_doc.py checks that
it lists exactly this): every line the collector writes is built here, and the readers
(collector/readback.py, collector/maintenance_store.py, dashboards/) name measurements
with these constants. Identity in tags, values in fields; millisecond timestamps. The
encoding is :mod:`collector.lineproto`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from collector.lineproto import FieldValue, field_value, line, put, tag
from collector.lineproto import to_ms as to_ms  # for the writers: one import
from xanet import wire
from xanet.topics import SiteTopic


@dataclass(frozen=True, slots=True)
class Measurement:
    """A measurement's name, tag keys and field keys (``{...}``: a family of fields)."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]


DEVICE = Measurement(
    "device", ("province", "commune", "site", "device", "agent"),
    ("up", "rtt_ms", "uptime_s", "seq", "error", "cause",
     "ping_sent", "ping_received", "ping_loss_pct", "ping_rtt_ms"))
INTERFACE = Measurement(
    "interface", ("province", "commune", "site", "device", "ifindex", "ifname"),
    ("oper", "admin", "speed_bps", "hc", "in_octets", "out_octets", "in_bps", "out_bps",
     "in_util_pct", "out_util_pct", "rate_note", "alias"))
AGENT_STATUS = Measurement(
    "agent_status", ("province", "commune", "site", "agent"),
    ("online", "reason", "spool_depth", "spool_dropped", "spool_oldest_age_s",
     "poll_overruns", "devices", "refused", "quarantined", "polls_dropped",
     "monitoring_errors", "instance", "config_version", "config_refusal",
     *wire.AGENT_BYTES_FIELDS))
ELEMENT_STATE = Measurement(
    "element_state", ("province", "commune", "site", "device", "interface", "element"),
    ("state", "code", "reason"))
SERVICE_STATE = Measurement(
    "service_state", ("province", "commune", "service"), ("state", "code"))
AVAILABILITY = Measurement(
    "availability", ("province", "commune", "service"),
    ("up_s", "down_s", "unknown_s", "maintenance_s", "bucket_s", "availability_pct",
     "coverage_pct"))
MAINTENANCE = Measurement(
    "maintenance", ("province", "scope", "target"),
    ("start_ms", "end_ms", "reason", "who", "silence_id", "ended"))
OUTAGE = Measurement(
    "outage", ("province", "commune", "site", "service", "kind", "device", "interface"),
    ("open", "children", "summary", "maintenance", "cause"))
COLLECTOR_STATS = Measurement(
    "collector_stats", ("collector",),
    ("received", "accepted", "rejected", "rejected_{reason}", "polls", "lines_written",
     "lines_buffered", "write_retries", "rejected_lines", "duplicates", "seq_gaps",
     "dead_letters", "batches", "acked", "unacked", "polls_unmapped", "interfaces_missing",
     "interfaces_ambiguous",
     "monitoring_alerts_open", "monitoring_alerts_opened", "outage_state_save_failures",
     "dead_letters_dropped", "dead_letters_failed", "duplicate_agent_messages",
     "clock_ahead", "clock_behind", "polls_clock_behind", "series_refused",
     "stale_instance_messages", "backlog_of_former_instance", "facts_{outcome}",
     "alerts_faults_firing", "alerts_faults_raised", "alertmanager_posts",
     "alertmanager_failures", "alertmanager_rejected", "alerts_firing", "alerts_opened",
     "alerts_resolved", "lease_state", "lease_epoch", "takeovers", "seq_resumed",
     "checkpoints_written", "checkpoint_failures", "checkpoint_bytes"))
UNMAPPED_DEVICE = Measurement(
    "unmapped_device", ("collector", "site", "device"), ("polls",))
#: ``t_{tag}``: a profile value's row tags (its table index and tag columns), each key
#: prefixed ``t_`` so that no name a device profile chooses can be one of xanet's tags.
PROFILE = Measurement(
    "profile", ("province", "commune", "site", "device", "profile", "metric", "unit",
                "t_{tag}"),
    ("value", "counter", "rate", "rate_note", "text", "code", "unknown", "error", "cause",
     "warnings"))
POWER = Measurement(
    "power", ("province", "commune", "site", "device"),
    ("state", "code", "minutes_remaining", "charge_pct", "seconds_on_battery", "profile"))
#: A partition's checkpoint (collector/checkpoint.py), one point per chunk of base64 text.
CHECKPOINT = Measurement(
    "collector_checkpoint", ("partition", "chunk"),
    ("generation", "count", "sha", "data", "collector", "bytes"))

MEASUREMENTS: tuple[Measurement, ...] = (
    DEVICE, INTERFACE, AGENT_STATUS, ELEMENT_STATE, SERVICE_STATE, AVAILABILITY,
    MAINTENANCE, OUTAGE, COLLECTOR_STATS, UNMAPPED_DEVICE, PROFILE, POWER, CHECKPOINT)

#: A profile value's row tag ``name`` is stored as the tag ``t_name`` (:data:`PROFILE`).
ROW_TAG_PREFIX = "t_"
#: The ``power`` measurement's ``code`` of each state (a state timeline maps them back).
POWER_CODES: Mapping[wire.PowerState, int] = {
    "mains": 0, "on_battery": 1, "battery_low": 2, "unknown": -1}


# -- device, interface, profile, power, agent_status: what the agents send ----------------


def telemetry_lines(where: SiteTopic, msg: wire.Telemetry) -> list[str]:
    """The ``device``, ``interface``, ``profile`` and ``power`` lines of a message: what
    :func:`line` would write for them (byte for byte, tests/test_lineproto.py and
    tests/test_schema.py), built without the per-line tag dicts and sorting: the tags are
    in key order by construction, the field keys need no escaping, and each poll's shared
    tags are escaped once. A poll without profiles or power costs two attribute reads."""
    out: list[str] = []
    commune = tag("commune", where.commune)
    province_site = tag("province", where.province) + tag("site", msg.site)
    agent = tag("agent", msg.agent)
    seq = field_value(msg.seq)
    device_m, interface_m = DEVICE.name, INTERFACE.name
    for poll in msg.polls:
        ts = to_ms(poll.ts)
        device = tag("device", poll.device)
        fields = ["up=1i" if poll.reachable else "up=0i"]
        put(fields, "rtt_ms", poll.rtt_ms)
        if poll.uptime_cs is not None:
            put(fields, "uptime_s", poll.uptime_cs / 100)
        if seq is not None:
            fields.append(f"seq={seq}")
        put(fields, "error", poll.error)
        put(fields, "cause", poll.cause)
        if poll.ping is not None:
            _ping_fields(fields, poll.ping)
        out.append(f"{device_m}{agent}{commune}{device}{province_site} {','.join(fields)} {ts}")
        head = f"{interface_m}{commune}{device}"
        tail = f"{province_site} "
        for i in poll.interfaces:
            fields = []
            put(fields, "oper", i.oper)
            put(fields, "admin", i.admin)
            put(fields, "speed_bps", i.speed_bps)
            fields.append("hc=1i" if i.hc else "hc=0i")
            put(fields, "in_octets", i.in_octets)
            put(fields, "out_octets", i.out_octets)
            put(fields, "in_bps", i.in_bps)
            put(fields, "out_bps", i.out_bps)
            put(fields, "in_util_pct", i.in_util_pct)
            put(fields, "out_util_pct", i.out_util_pct)
            put(fields, "rate_note", i.rate_note)
            put(fields, "alias", i.alias)
            out.append(f"{head}{tag('ifindex', str(i.index))}{tag('ifname', i.name)}{tail}"
                       f"{','.join(fields)} {ts}")
        if poll.profiles:
            _profile_lines(out, commune + device, province_site, poll.profiles, ts)
        if poll.power is not None:
            out.append(_power_line(commune + device + province_site, poll.power, ts))
    return out


def _profile_lines(out: list[str], commune_device: str, province_site: str,
                   readings: list[wire.ProfileReading], ts: int) -> None:
    """One ``profile`` line per value, and one per reading that failed or has warnings
    (tags without ``metric``: fields ``error``, ``cause``, ``warnings``). Tag order: commune,
    device, metric, profile, province, site, ``t_*``, unit."""
    profile_m = PROFILE.name
    for r in readings:
        profile = tag("profile", r.profile)
        if r.error is not None or r.warnings:
            fields: list[str] = []
            put(fields, "error", r.error)
            put(fields, "cause", r.cause)
            if r.warnings:
                put(fields, "warnings", "; ".join(r.warnings))
            out.append(f"{profile_m}{commune_device}{profile}{province_site} "
                       f"{','.join(fields)} {ts}")
        for v in r.values:
            fields = []
            put(fields, "value", v.value)
            put(fields, "counter", v.counter)
            put(fields, "rate", v.rate)
            put(fields, "rate_note", v.rate_note)
            put(fields, "text", v.text)
            put(fields, "code", v.code)
            put(fields, "unknown", v.unknown)
            if not fields:  # a raw counter above 2^63-1 alone: nothing InfluxDB can store
                continue
            row = "".join(tag(ROW_TAG_PREFIX + k, v.tags[k]) for k in sorted(v.tags)
                          ) if v.tags else ""
            unit = tag("unit", v.unit) if v.unit else ""
            out.append(f"{profile_m}{commune_device}{tag('metric', v.metric)}{profile}"
                       f"{province_site}{row}{unit} {','.join(fields)} {ts}")


def _power_line(tags: str, power: wire.PowerReading, ts: int) -> str:
    fields = [f"state={field_value(power.state)}", f"code={POWER_CODES[power.state]}i"]
    put(fields, "minutes_remaining", power.minutes_remaining)
    put(fields, "charge_pct", power.charge_pct)
    put(fields, "seconds_on_battery", power.seconds_on_battery)
    put(fields, "profile", power.profile)
    return f"{POWER.name}{tags} {','.join(fields)} {ts}"



def _ping_fields(parts: list[str], ping: wire.PingResult) -> None:
    parts.append(f"ping_sent={ping.sent}i")
    parts.append(f"ping_received={ping.received}i")
    parts.append(f"ping_loss_pct={ping_loss_pct(ping)!r}")
    put(parts, "ping_rtt_ms", ping.rtt_ms)


def ping_loss_pct(ping: wire.PingResult) -> float:
    return 100.0 * (ping.sent - ping.received) / ping.sent


def status_line(where: SiteTopic, msg: wire.Status, received: datetime) -> str:
    h = msg.health
    ln = line(
        AGENT_STATUS.name,
        {"province": where.province, "commune": where.commune, "site": msg.site,
         "agent": msg.agent},
        {
            "online": 1 if msg.state == "online" else 0,
            "reason": msg.reason,
            "spool_depth": h.spool_depth if h else None,
            "spool_dropped": h.spool_dropped if h else None,
            "spool_oldest_age_s": h.spool_oldest_age_s if h else None,
            "poll_overruns": h.poll_overruns if h else None,
            "devices": h.devices if h else None,
            "refused": h.refused if h else None,
            "quarantined": h.quarantined if h else None,
            "polls_dropped": h.polls_dropped if h else None,
            "monitoring_errors": h.monitoring_errors if h else None,
            "instance": msg.instance,
            "config_version": h.config_version if h else None,
            "config_refusal": h.config_refusal if h else None,
            **{name: getattr(h, name) if h else None for name in wire.AGENT_BYTES_FIELDS},
        },
        to_ms(msg.ts or received),
    )
    assert ln is not None  # "online" always has a value
    return ln


# -- element_state, service_state, availability: what the availability engine says -------


def element_state_line(province: str, commune: str, site: str, device: str, interface: str,
                       element: str, state: str, code: int, reason: str | None,
                       ts_ms: int) -> str | None:
    """A change of an element's state (or of the reason of an unknown)."""
    return line(
        ELEMENT_STATE.name,
        {"province": province, "commune": commune, "site": site, "device": device,
         "interface": interface, "element": element},
        {"state": state, "code": code, "reason": reason},
        ts_ms,
    )


def service_state_line(province: str, commune: str, service: str, state: str, code: int,
                       ts_ms: int) -> str | None:
    """A change of a commune's service state."""
    return line(SERVICE_STATE.name, {"province": province, "commune": commune, "service": service},
                {"state": state, "code": code}, ts_ms)


def availability_line(province: str, commune: str, service: str,
                      fields: Mapping[str, float | None], ts_ms: int) -> str | None:
    """One roll-up bucket of a commune's service (``fields``: :data:`AVAILABILITY`'s)."""
    return line(AVAILABILITY.name, {"province": province, "commune": commune, "service": service},
                fields, ts_ms)


# -- outage, maintenance: alerts raised and windows declared ------------------------------


def outage_line(tags: Mapping[str, str], is_open: int, children: str, summary: str,
                maintenance: bool, ts_ms: int, cause: str = "") -> str | None:
    """One opening (``is_open`` 1) or closing (0) of an outage; ``tags``: :data:`OUTAGE`'s,
    the empty ones left out; ``cause`` (power, transmission, site) left out when empty."""
    fields: dict[str, FieldValue | None] = {
        "open": is_open, "children": children, "summary": summary, "maintenance": maintenance,
        "cause": cause or None}
    return line(OUTAGE.name, {k: v for k, v in tags.items() if v}, fields, ts_ms)


def maintenance_line(province: str, scope: str, target: str, start_ms: int, end_ms: int,
                     reason: str, who: str, silence_id: str, ended: bool) -> str | None:
    """One declared maintenance window, at its start (rewritten by ``end``)."""
    return line(MAINTENANCE.name, {"province": province, "scope": scope, "target": target},
                {"start_ms": start_ms, "end_ms": end_ms, "reason": reason, "who": who,
                 "silence_id": silence_id, "ended": ended},
                start_ms)


# -- collector_stats, unmapped_device: the collector about itself -------------------------


def collector_stats_line(collector: str, stats: Mapping[str, FieldValue | None],
                         ts_ms: int) -> str | None:
    return line(COLLECTOR_STATS.name, {"collector": collector}, stats, ts_ms)


def unmapped_device_line(collector: str, site: str, device: str, polls: int,
                         ts_ms: int) -> str | None:
    return line(UNMAPPED_DEVICE.name, {"collector": collector, "site": site, "device": device},
                {"polls": polls}, ts_ms)


def checkpoint_line(partition: str, chunk: int, count: int, generation: int, sha: str,
                    data: str, collector: str, size: int, ts_ms: int) -> str:
    """One chunk of a checkpoint (``data``: base64 text, nothing to escape)."""
    ln = line(CHECKPOINT.name, {"partition": partition, "chunk": str(chunk)},
              {"generation": generation, "count": count, "sha": sha, "data": data,
               "collector": collector, "bytes": size}, ts_ms)
    assert ln is not None  # it has fields
    return ln
