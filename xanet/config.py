"""The one TOML loader and error format of every xanet file: configs and the inventory.

Every problem of a file is reported at once, each naming the file, the key
path and the reason::

    agent.toml: devices[2].port: Input should be less than or equal to 65535
    agent.toml: mqtt.pasword: unknown key (typo, or not valid here)
    inventory.toml: sites[12].parent: unknown site 'hub-0227' (site bts-02269-03)

A model's own cross-checks raise :class:`Problems` (each problem with its key
path) so they are listed one per line like pydantic's.

Secrets never sit inline in a config: a secret field takes a table
``{ env = "NAME" }`` or ``{ file = "/path" }``. A secret file readable by
group or others is refused. A host to connect to (:data:`Host`) is an IP
literal or an RFC 1123 name, checked for its syntax only. What a config needs of
the machine (secrets readable, TLS files, paths) is checked by
:func:`load_checked` with each program's check (:mod:`xanet.preflight`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Tag,
    ValidationError,
    model_validator,
)

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A file that cannot be used; ``problems`` lists every reason (``key.path: reason``),
    the message one line per problem prefixed with the file."""

    def __init__(self, path: Path | str, problems: Iterable[str]) -> None:
        self.path = Path(path)
        self.source = str(path)
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(f"{self.source}: {p}" for p in self.problems))


class Problems(ValueError):
    """Raised by a model validator: several problems, each starting with its key path
    (relative to the validated model). Survives pydantic's wrapping; see
    :func:`format_validation_error`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Strict(BaseModel):
    """Base for config models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretError(ValueError):
    """A secret that cannot be read (unset variable, missing or too-open file)."""


class Secret(Strict):
    """Where a secret comes from: exactly one of ``env`` or ``file``."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env = \"VARIABLE\" or file = \"/path\"")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def reveal(self, environ: dict[str, str] | None = None) -> str:
        """Read the secret now. Raises :class:`SecretError` naming the source."""
        if self.env is not None:
            env = os.environ if environ is None else environ
            value = env.get(self.env)
            if value is None or value == "":
                raise SecretError(f"environment variable {self.env} is not set (or empty)")
            return value
        assert self.file is not None
        try:
            st = self.file.stat()
        except OSError as exc:
            raise SecretError(f"secret file {self.file}: {exc.strerror}") from exc
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"secret file {self.file} is accessible by group or others "
                f"(mode {stat.filemode(st.st_mode)}): chmod 600 it"
            )
        value = self.file.read_text(encoding="utf-8").strip()
        if not value:
            raise SecretError(f"secret file {self.file} is empty")
        return value


def format_loc(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a TOML key path: ``devices[2].snmp.community``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """``tp`` without ``Annotated`` layers and ``| None``, and the metadata it carried."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(tp) is Annotated:
            tp, *extra = typing.get_args(tp)
            metadata += extra
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp, metadata
            tp = members[0]
        else:
            return tp, metadata


def _tags(tp: Any) -> dict[str, Any]:
    """The members of a union told apart by a callable ``Discriminator``, by ``Tag``."""
    union, metadata = _unwrap(tp)
    if not any(isinstance(m, Discriminator) for m in metadata):
        return {}
    out: dict[str, Any] = {}
    for member in typing.get_args(union):
        for meta in typing.get_args(member)[1:] if typing.get_origin(member) is Annotated else ():
            if isinstance(meta, Tag):
                out[meta.tag] = typing.get_args(member)[0]
    return out


def _child(tp: Any, part: int | str) -> Any:
    inner, _ = _unwrap(tp)
    if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(part, str):
        info = inner.model_fields.get(part)
        if info is None:
            return Any
        return Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    args = typing.get_args(inner)
    if isinstance(part, int) and typing.get_origin(inner) in (list, tuple) and args:
        return args[0]
    if isinstance(part, str) and typing.get_origin(inner) is dict and len(args) == 2:
        return args[1]
    return Any


def key_path(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A pydantic error location as the TOML key path a person wrote: without the tags
    pydantic inserts for a tagged union (``snmp.3.priv_key`` is ``snmp.priv_key``)."""
    if model is None:
        return loc
    out: list[int | str] = []
    tp: Any = model
    for part in loc:
        tags = _tags(tp)
        if isinstance(part, str) and part in tags:
            tp = tags[part]
            continue
        out.append(part)
        tp = _child(tp, part)
    return tuple(out)


def format_validation_error(exc: ValidationError,
                            model: type[BaseModel] | None = None) -> list[str]:
    """Every error of ``exc`` as ``key.path: reason`` (the one format of every file);
    ``model``, the validated one, lets key paths leave out union tags."""
    problems = []
    for err in exc.errors():
        loc = key_path(model, tuple(err["loc"]))
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, Problems):
            prefix = format_loc(loc) if loc else ""
            problems += [f"{prefix}.{p}" if prefix else p for p in cause.problems]
            continue
        where = format_loc(loc)
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key (typo, or not valid here)")
        elif err["type"] == "missing":
            problems.append(f"{where}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg} (got {err.get('input')!r})"
                            if not isinstance(err.get("input"), dict | list)
                            else f"{where}: {msg}")
    return problems


def read_toml(path: Path | str, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The TOML table of ``path``; ``error`` (a :class:`ConfigError`) when it cannot be
    read or is not TOML (naming the line and column)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise error(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(path, [f"not valid TOML: {exc}"]) from exc


def parse_model(data: Mapping[str, Any], model: type[M], source: Path | str,
                error: type[ConfigError] = ConfigError) -> M:
    """Validate parsed TOML into ``model``; ``error`` lists every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(source, format_validation_error(exc, model)) from exc


def load_model(path: Path | str, model: type[M],
               error: type[ConfigError] = ConfigError) -> M:
    """Parse ``path`` into ``model``; raise ``error`` listing every problem."""
    return parse_model(read_toml(path, error), model, path, error)


def load_checked(path: Path | str, model: type[M],
                 check: Callable[[M], list[str]] | None = None) -> M:
    """:func:`load_model`, then ``check`` (what the config needs of this machine:
    secrets, files, directories); one :class:`ConfigError` lists every problem. A program
    starts only through this, so it refuses exactly what ``xanet check-config`` reports."""
    cfg = load_model(path, model)
    problems = check(cfg) if check is not None else []
    if problems:
        raise ConfigError(path, problems)
    return cfg


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def host_problem(value: str) -> str | None:
    """Why ``value`` is not an IP literal or an RFC 1123 host name (no look-up), or None."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return None
    name = value.removesuffix(".")
    if not name or len(name) > 253:
        return "a host name has 1 to 253 characters"
    if all(part.isdigit() for part in name.split(".")):
        return "not a valid IPv4 address"
    if not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return ("not an IP address or a host name (RFC 1123: labels of letters, digits "
                "and inner '-', at most 63 each, separated by '.')")
    return None


def _check_host(value: str) -> str:
    problem = host_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A host to connect to: an IP literal or a syntactically valid host name. Checked
#: without any DNS look-up (a name that does not resolve today may resolve at start).
Host = Annotated[str, AfterValidator(_check_host)]


def check_secrets(model: BaseModel, environ: dict[str, str] | None = None) -> list[str]:
    """Try to read every :class:`Secret` reachable from ``model``; return the problems."""
    problems: list[str] = []

    def walk(obj: Any, where: str) -> None:
        if isinstance(obj, Secret):
            try:
                obj.reveal(environ)
            except SecretError as exc:
                problems.append(f"{where}: {exc}")
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{where}.{name}" if where else name)
        elif isinstance(obj, list | tuple):
            for i, item in enumerate(obj):
                walk(item, f"{where}[{i}]")

    walk(model, "")
    return problems
