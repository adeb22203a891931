"""Generate docs/configuration.md from the config models, so the reference cannot drift.

python -m xanet.configdoc > docs/configuration.md     (tests/test_configdoc.py checks it)
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from xanet.ids import IDENT_PATTERN

HEADER = """# Configuration reference

Generated from the pydantic models by `python -m xanet.configdoc`; do not edit by hand.
Every file is TOML; an unknown key, a wrong type or a value out of range is an error naming
the file, the key and the reason, and `xanet check-config FILE...` reports every problem of
every file at once (exit status 1), including what the config needs of the machine it runs
on: secrets that cannot be read, SNMPv3 keys shorter than 8 characters, TLS files
(`ca_file`, `cert_file`, `key_file`) missing, unreadable or not PEM, a spool that cannot be
created (`--no-secrets` skips these and checks the text alone). `xanet agent` and
`xanet collector` run the same checks at start and exit with the same lines (status 2, no
traceback). Host names are checked for their syntax only (an IP address or an RFC 1123
name), never looked up.

A **secret** is never written inline: it is a table `{ env = "VARIABLE" }` (read from the
environment) or `{ file = "/etc/xanet/secret" }` (first line of the file; the file must not be
readable by group or others, or the program refuses it).

An **id** (agent, province, commune, site and device ids) is 1 to 64 ASCII letters, digits,
`_`, `.`, `:` or `-`, starting with a letter or digit: it appears verbatim in MQTT topics and
InfluxDB tags (`xanet/ids.py`, the one id grammar). The inventory declares its ids in the
lowercase canonical form (letters, digits, inner `-`; docs/inventory.md), so an agent's ids
that the inventory knows are written that way too.

Commented examples: `config/agent.example.toml`, `config/collector.example.toml`,
`config/inventory.example.toml` (the inventory format is in `docs/inventory.md`).
"""


def _is_ident(metadata: Any) -> bool:
    return any(getattr(m, "pattern", None) == IDENT_PATTERN for m in metadata)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        if _is_ident(typing.get_args(tp)[1:]):
            return "id"
        return _type_name(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " \\| ".join(
            f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in typing.get_args(tp)
        )
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "none"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "secret" if tp.__name__ == "Secret" else f"table ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _field_type(info: FieldInfo) -> str:
    return "id" if _is_ident(info.metadata) else _type_name(info.annotation)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "**required**"
    if info.default_factory is not None:
        return "(empty)"
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "(table defaults)"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _constraints(info: FieldInfo) -> str:
    parts = []
    for m in info.metadata:
        for attr, sym in (
            ("ge", "≥"),
            ("gt", ">"),
            ("le", "≤"),
            ("lt", "<"),
            ("min_length", "min length"),
            ("max_length", "max length"),
        ):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def _nested_models(tp: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    for arg in (tp, *typing.get_args(tp)):
        if isinstance(arg, type) and issubclass(arg, BaseModel) and arg.__name__ != "Secret":
            out.append(arg)
        elif typing.get_args(arg) and arg is not tp:
            out.extend(_nested_models(arg))
    return out


def document(title: str, model: type[BaseModel]) -> str:
    lines = [f"## {title}", ""]
    lines.extend(_table(model, ""))
    return "\n".join(lines)


def _table(model: type[BaseModel], prefix: str) -> list[str]:
    simple: list[str] = []
    sections: list[str] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _nested_models(info.annotation)
        if nested:
            is_list = typing.get_origin(info.annotation) is list
            for sub in nested:
                variant = f" — {sub.__name__}" if len(nested) > 1 else ""
                head = f"[[{key}]]" if is_list else f"[{key}]"
                sections.append(f"### `{head}`{variant}")
                if info.description:
                    sections.append(info.description)
                sections.append("")
                sections.extend(_table(sub, f"{key}."))
            continue
        doc = (info.description or "").replace("|", "\\|")
        simple.append(
            f"| `{name}` | {_field_type(info)} | {_default(info)} | "
            f"{_constraints(info)} | {doc} |"
        )
    out: list[str] = []
    if simple:
        out += ["| key | type | default | limits | meaning |", "|---|---|---|---|---|", *simple, ""]
    return out + sections


def render() -> str:
    from agent.config import AgentConfig
    from collector.config import CollectorConfig

    return "\n".join(
        [
            HEADER,
            document("Agent (`xanet agent --config FILE`)", AgentConfig),
            document("Collector (`xanet collector --config FILE`)", CollectorConfig),
        ]
    )


if __name__ == "__main__":
    print(render(), end="")
