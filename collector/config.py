"""Collector configuration (TOML → pydantic). See ``config/collector.example.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

# re-exported: the collector's whole configuration is read from here
from collector.config_partition import PartitionSection as PartitionSection
from collector.config_partition import StateConfig as StateConfig
from xanet.config import Secret, Strict, check_secrets
from xanet.ids import Ident
from xanet.mqtt import MqttConfig
from xanet.preflight import tls_problems
from xanet.texts import Lang


class CollectorSection(Strict):
    id: Ident = Field(
        default="core-1",
        description="collector id (MQTT client id xanet-collector-{id}, persistent session; "
        "the shipped broker uses the MQTT user name as client id instead)",
    )
    province: str = Field(default="+", description="topic filter: one province, or + for all")
    stats_interval_s: float = Field(
        description="self-metrics period (measurement collector_stats)", default=10.0, ge=1
    )
    receive_maximum: int = Field(
        default=2000,
        ge=10,
        le=65535,
        description="MQTT v5 Receive Maximum: messages the broker may have in flight to the "
        "collector before it acknowledges them (acks wait for the InfluxDB write)",
    )
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        description="how long the broker keeps the collector's session (and queues its "
        "messages) while it is away",
    )


class InfluxConfig(Strict):
    api: Literal["v1", "v2"] = Field(
        default="v1", description="v1: POST /write?db= ; v2: POST /api/v2/write (influxdb-client)"
    )
    url: str = Field(default="http://127.0.0.1:8086", description="InfluxDB base URL")
    # v1 (/write?db=): InfluxDB 1.x, and 2.x/3.x through their v1 compatibility API
    database: str | None = Field(default="xanet", description="v1 database")
    retention_policy: str | None = Field(default=None, description="v1 retention policy")
    username: str | None = Field(default=None, description="v1 basic auth user")
    password: Secret | None = Field(default=None, description="v1 basic auth password")
    # v2 (/api/v2/write through influxdb-client)
    org: str | None = Field(default=None, description="v2 organisation")
    bucket: str | None = Field(default=None, description="v2 bucket")
    token: Secret | None = Field(default=None, description="v2 API token")
    # batching and retry
    batch_lines: int = Field(
        description="flush when this many lines wait", default=5000, ge=1, le=100_000
    )
    flush_interval_s: float = Field(
        description="flush when the oldest line waited this long", default=1.0, gt=0, le=60
    )
    max_writes_in_flight: int = Field(
        default=2, ge=1, le=16,
        description="batches written at once (InfluxDB ingests more with a few in flight); "
        "MQTT acknowledgements still follow arrival order",
    )
    timeout_s: float = Field(description="per write request", default=10.0, gt=0)
    max_buffer_lines: int = Field(
        default=2_000_000, ge=1000, description="memory bound while InfluxDB is unavailable"
    )
    retry_min_s: float = Field(
        description="first retry delay while InfluxDB is unavailable", default=0.5, gt=0
    )
    retry_max_s: float = Field(description="longest retry delay", default=30.0, gt=0)

    @model_validator(mode="after")
    def _api_fields(self) -> InfluxConfig:
        if self.api == "v1" and not self.database:
            raise ValueError('api = "v1" needs database')
        if self.api == "v2":
            missing = [k for k in ("org", "bucket", "token") if getattr(self, k) is None]
            if missing:
                raise ValueError(f'api = "v2" needs {", ".join(missing)}')
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self


class IngestConfig(Strict):
    max_payload_bytes: int = Field(
        description="larger payloads are rejected (too_large)",
        default=256 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
    )
    max_future_s: float = Field(
        description="polls stamped further ahead are dropped (ts_future)", default=300.0, ge=0
    )
    max_past_s: float = Field(
        description="polls stamped further back are dropped (ts_past)", default=31 * 86400.0, gt=0
    )
    max_profile_values: int = Field(
        default=16_384, ge=1, le=10_000_000,
        description="profile values one telemetry message may carry: polls past it are "
        "stored without their profiles (too_many_values, dead-lettered). The default is "
        "above what a message of the default 256 KiB can carry",
    )
    max_profile_tag_bytes: int = Field(
        default=1024, ge=64, le=65_536,
        description="one profile value's row tags, keys and values in UTF-8 bytes: a value "
        "with longer ones is not stored (tag_too_long, dead-lettered)",
    )
    batches: bool = Field(
        default=True,
        description="announce compact batches (retained on xanet/v1/core/capabilities) and "
        "read them on the sites' .../batch topics; false: agents send JSON only",
    )
    max_batch_decompressed_bytes: int = Field(
        default=4 * 1024 * 1024, ge=4096, le=256 * 1024 * 1024,
        description="a compact batch's body once decompressed, at most (the decompression-"
        "bomb bound; too_large_decompressed). Its compressed size is max_payload_bytes",
    )
    max_batch_messages: int = Field(
        default=2000, ge=1, le=100_000,
        description="telemetry messages in one compact batch, at most (too_many_messages)",
    )
    max_batch_polls: int = Field(
        default=20_000, ge=1, le=1_000_000,
        description="device polls in one compact batch, at most (too_many_polls)",
    )
    dead_letter_dir: Path = Field(
        default=Path("/var/lib/xanet/dead-letter"),
        description="rejected payloads are kept here (JSON lines)",
    )
    dead_letter_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="the dead-letter directory's budget, today's file included: the oldest "
        "files are removed (and their records counted) beyond it",
    )
    dead_letter_max_files: int = Field(
        default=1000, ge=2, description="the oldest dead-letter files are removed beyond this"
    )


class GuardsConfig(Strict):
    """What the collector refuses from an agent that misbehaves (docs/security.md)."""

    takeover_after_s: float = Field(
        default=90.0, gt=0, description="duplicate agents: another instance of an agent id "
        "is refused while the owner was seen within this long and did not stop (keep it "
        "above the agents' poll and status intervals)"
    )
    max_clock_skew_s: float = Field(
        default=120.0, gt=0, description="clock skew alert beyond this (agent send time vs "
        "collector receive time)"
    )
    clock_alert_quiet_s: float = Field(
        default=600.0, gt=0, description="a clock skew alert resolves after this long "
        "without a skewed message"
    )
    cardinality_window_s: float = Field(
        default=3600.0, ge=60, description="new series are counted per window of this length"
    )
    max_new_interfaces_per_device: int = Field(
        default=4096, ge=1, description="new interface series one device may bring per window"
    )
    max_new_series_per_agent: int = Field(
        default=25_000, ge=1, description="new device, interface and profile series one "
        "agent may bring per window"
    )
    max_new_profile_series_per_device: int = Field(
        default=4096, ge=1, description="new profile value series (profile, metric, unit and "
        "row tags) one device may bring per window"
    )


class InventoryRef(Strict):
    path: Path = Field(description="inventory TOML file (docs/inventory.md)")


class AvailabilityConfig(Strict):
    stale_after_s: float = Field(
        default=180.0,
        gt=0,
        description="an element with no poll for this long is unknown (3 x the poll interval)",
    )
    bucket_s: float = Field(
        default=300.0, ge=10, description="roll-up bucket (measurement availability)"
    )
    emit_interval_s: float = Field(
        default=5.0, gt=0, le=300, description="how often state changes and roll-ups are written"
    )
    horizon_s: float = Field(
        default=6 * 3600.0,
        ge=60,
        description="late data older than this (a replayed spool) is stored but no longer "
        "changes availability; memory grows with it (docs/availability.md)",
    )
    maintenance_reload_s: float = Field(
        default=30.0, ge=1, le=3600,
        description="how often declared maintenance windows (xanet maintenance) are "
        "reloaded from InfluxDB",
    )


class TargetConfig(Strict):
    """A target the province declares for one service (docs/availability.md, Report)."""

    communes_pct: float = Field(
        ge=0, le=100, description="share of communes that must meet the availability target"
    )
    availability_pct: float | None = Field(
        default=None, ge=0, le=100,
        description="availability a commune must reach (default: report.target_pct)",
    )
    label: str | None = Field(
        default=None, max_length=200, description="the claim as the province words it"
    )


class ReportConfig(Strict):
    lang: Lang = Field(default="vi", description="default language of reports")
    target_pct: float = Field(
        default=99.0, ge=0, le=100, description="availability target of the KPIs"
    )
    min_coverage_pct: float = Field(
        default=90.0, ge=0, le=100,
        description="a commune meets or fails the target only with at least this data "
        "coverage; below it is 'insufficient data', counted apart",
    )
    tz: str = Field(
        default="Asia/Ho_Chi_Minh",
        description="IANA time zone of report windows and printed times",
    )
    targets: dict[str, TargetConfig] = Field(
        default_factory=dict,
        description="declared targets per service (fibre, broadband, mobile_2g/3g/4g), "
        "shown in the monthly document",
    )

    @model_validator(mode="after")
    def _known(self) -> ReportConfig:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"tz: unknown time zone {self.tz!r}") from exc
        services = ("fibre", "broadband", "mobile_2g", "mobile_3g", "mobile_4g")
        unknown = sorted(set(self.targets) - set(services))
        if unknown:
            raise ValueError(f"targets: unknown service(s) {', '.join(unknown)} "
                             f"(known: {', '.join(services)})")
        return self


class AlertsConfig(Strict):
    """Outage alerts to Alertmanager (docs/alerts.md); on when ``url`` is set."""

    url: str | None = Field(
        default=None, description="Alertmanager base URL, e.g. http://127.0.0.1:9093; "
        "alerting is off when unset (needs the inventory)"
    )
    hold_down_s: float = Field(
        default=120.0, ge=0, description="an outage opens after the condition held this long "
        "(keep it above one poll interval + the SNMP timeout, so a parent's outage is known "
        "before a child's hold-down ends)"
    )
    hold_down_polls: int | None = Field(
        default=None, ge=1, description="hold-down in polls instead (x poll_interval_s)"
    )
    clear_down_s: float = Field(
        default=180.0, ge=0, description="an outage closes after recovery held this long"
    )
    clear_down_polls: int | None = Field(
        default=None, ge=1, description="clear-down in polls instead (x poll_interval_s)"
    )
    poll_interval_s: float = Field(
        default=60.0, gt=0, description="the agents' polling interval (for *_polls)"
    )
    root_wait_s: float | None = Field(
        default=None, ge=0, description="extra wait before a unit with something above it (a "
        "device or port of a site, a site behind a parent, its agent) is alerted on its "
        "own, so a site or parent cut at the same moment is seen first and alerted as the "
        "root cause (default: one poll interval)"
    )
    agent_silent_after_s: float = Field(
        default=180.0, gt=0, description="an agent with no message for this long is silent "
        "(its Last Will makes it silent at once)"
    )
    resend_interval_s: float = Field(
        default=60.0, ge=1, description="firing alerts are re-posted this often"
    )
    expire_after_s: float = Field(
        default=900.0, ge=10, description="endsAt of a firing alert = post time + this: "
        "Alertmanager resolves it by itself if the collector stops posting; a restart "
        "quicker than this re-announces without a new notification"
    )
    timeout_s: float = Field(default=10.0, gt=0, description="per request")
    retry_min_s: float = Field(
        default=1.0, gt=0, description="first retry delay while Alertmanager is unreachable"
    )
    retry_max_s: float = Field(default=60.0, gt=0, description="longest retry delay")
    state_path: Path = Field(
        default=Path("/var/lib/xanet/outages.json"),
        description="open outages kept here across restarts",
    )

    @model_validator(mode="after")
    def _coherent(self) -> AlertsConfig:
        if self.expire_after_s <= self.resend_interval_s:
            raise ValueError("expire_after_s must be longer than resend_interval_s")
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        return self

    def hold_down(self) -> float:
        n = self.hold_down_polls
        return self.hold_down_s if n is None else n * self.poll_interval_s

    def root_wait(self) -> float:
        return self.poll_interval_s if self.root_wait_s is None else self.root_wait_s

    def clear_down(self) -> float:
        n = self.clear_down_polls
        return self.clear_down_s if n is None else n * self.poll_interval_s


class CollectorConfig(Strict):
    collector: CollectorSection = CollectorSection()
    partition: PartitionSection = PartitionSection()
    mqtt: MqttConfig = MqttConfig()
    influx: InfluxConfig = InfluxConfig()
    ingest: IngestConfig = IngestConfig()
    inventory: InventoryRef | None = Field(
        default=None, description="needed for availability (element → commune and service)"
    )
    availability: AvailabilityConfig = AvailabilityConfig()
    report: ReportConfig = ReportConfig()
    alerts: AlertsConfig = AlertsConfig()
    guards: GuardsConfig = GuardsConfig()
    state: StateConfig = StateConfig()

    def partition_id(self) -> str:
        """The partition a checkpoint is kept for: ``[partition] id``, else ``[collector] id``."""
        return self.partition.id or self.collector.id

    def checkpointing(self) -> bool:
        """Whether the checkpoint is written and restored (``[state] checkpoint``)."""
        mode = self.state.checkpoint
        return mode == "on" or (mode == "auto" and self.partition.id is not None)

    @model_validator(mode="after")
    def _one_province_setting(self) -> CollectorConfig:
        p = self.partition
        if p.provinces and self.collector.province != "+":
            raise ValueError("give the provinces read in [partition] provinces or in "
                             "[collector] province, not both")
        if p.id is not None and self.mqtt.username is not None:
            # A broker with users names sessions by user (use_username_as_clientid): the
            # data session must have a user of its own, shared by the partition's members.
            if p.username is None:
                raise ValueError("[partition] username is needed with [mqtt] username: the "
                                 "partition's data session needs its own user, shared by "
                                 "its collectors (docs/deploy-core.md)")
            if p.username == self.mqtt.username:
                raise ValueError("[partition] username must differ from [mqtt] username "
                                 "(the collector's own lease connection)")
        return self


def check_collector(cfg: CollectorConfig, environ: dict[str, str] | None = None, *,
                    secrets: bool = True, files: bool = True) -> list[str]:
    """Every problem the collector would meet at start on this machine (``key.path:
    reason``): secrets that cannot be read, TLS files missing or not PEM. ``xanet
    check-config`` and ``xanet collector`` both run it."""
    problems: list[str] = check_secrets(cfg, environ) if secrets else []
    if files:
        problems += tls_problems(cfg.mqtt)
    return problems
