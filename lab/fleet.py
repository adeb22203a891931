"""What a simulated fleet is configured with: agent, collector and inventory configs as TOML.

The configs point at the lab's daemons on 127.0.0.1 with short timers (status every
5 s, reconnects within 2 s, flushes every 0.2 s), so tests, benches and the demo see
a whole pipeline move in seconds. :func:`to_toml` and :func:`inventory_text` check what
they write with ``tomllib``: a wrong writer fails here, not in the program.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def agent_config(
    *,
    agent_id: str,
    site: str,
    commune: str,
    province: str,
    mqtt_port: int,
    devices: list[dict[str, Any]],
    spool_path: Path,
    interval_s: float = 2.0,
    snmp: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "agent": {"id": agent_id, "province": province, "commune": commune, "site": site,
                  "status_interval_s": 5},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive_s": 5,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 2},
        "polling": {"interval_s": interval_s, "timeout_s": 1.0, "retries": 0, "jitter": 0.2},
        "spool": {"path": str(spool_path), "fsync": "batch", "replay_rate_per_s": 200},
        # The simulated fleets here live on 127.0.0.1 and are "cut off" by stopping their
        # SNMP simulator; the host itself keeps answering ICMP, which would (rightly) make
        # such a cut a monitoring fault (snmp_silent), not downtime. Without the ICMP
        # witness an SNMP timeout is `down`, as the tests of the cut expect. The witness
        # itself is tested with real cuts in network namespaces (tests/test_ping_netns.py,
        # tests/test_field_truth.py); pass icmp={"enabled": True} to use it.
        "icmp": {"enabled": False},
        "devices": devices,
    }
    if snmp:
        cfg["snmp"] = snmp
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    return cfg


def collector_config(
    *,
    mqtt_port: int,
    influx_url: str,
    dead_letter_dir: Path,
    collector_id: str = "test",
    database: str = "xanet",
    **sections: dict[str, Any],
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "collector": {"id": collector_id, "stats_interval_s": 1},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_min_s": 0.2,
                 "reconnect_max_s": 2},
        "influx": {"api": "v1", "url": influx_url, "database": database,
                   "flush_interval_s": 0.2, "retry_min_s": 0.1, "retry_max_s": 1},
        "ingest": {"dead_letter_dir": str(dead_letter_dir)},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    return cfg


def toml_value(v: Any) -> str:
    """A TOML value: scalars, strings, inline tables and arrays."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def to_toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the shapes above (tables, arrays of tables, inline tables)."""
    out: list[str] = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                out.append(f"[[{section}]]")
                out.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
        else:
            out.append(f"[{section}]")
            out.extend(f"{k} = {toml_value(v)}" for k, v in body.items())
        out.append("")
    text = "\n".join(out)
    tomllib.loads(text)  # fail here, not in the program, if the writer is wrong
    return text


def inventory_text(raw: dict[str, Any]) -> str:
    """Write the inventory shape (province, communes, sites with devices) as TOML."""
    out = ["[province]", *(f"{k} = {toml_value(v)}" for k, v in raw["province"].items()), ""]
    for c in raw["communes"]:
        out += ["[[communes]]", *(f"{k} = {toml_value(v)}" for k, v in c.items()), ""]
    for s in raw["sites"]:
        out.append("[[sites]]")
        out += [f"{k} = {toml_value(v)}" for k, v in s.items() if k != "devices"]
        for dev in s.get("devices", []):
            out.append("  [[sites.devices]]")
            out += [f"  {k} = {toml_value(v)}" for k, v in dev.items()]
        out.append("")
    text = "\n".join(out)
    tomllib.loads(text)  # fail here, not in the program under test, if the writer is wrong
    return text
