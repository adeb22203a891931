"""Loading TOML config files into pydantic models, and secrets from env/files.

Every problem of a file is reported at once, each naming the file, the key
path and the reason::

    agent.toml: devices[2].port: Input should be less than or equal to 65535
    agent.toml: mqtt.pasword: unknown key (typo?)

Secrets never sit inline in a config: a secret field takes a table
``{ env = "NAME" }`` or ``{ file = "/path" }``. A secret file readable by
group or others is refused.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


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


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = format_loc(tuple(err["loc"]))
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


def read_toml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from exc


def load_model(path: Path | str, model: type[M]) -> M:
    """Parse ``path`` into ``model``; raise :class:`ConfigError` listing every problem."""
    data = read_toml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, format_validation_error(exc)) from exc


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
