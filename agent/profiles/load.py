"""The profile catalog: the shipped profiles and a user directory, read and checked together.

Shipped profiles are ``agent/profiles/shipped/*.toml`` (package data); a user directory
(``[profiles] dir`` in the agent config) adds its ``*.toml`` files, one profile each. A
user profile may add a new name; reusing a shipped name is an error unless the file says
``override = true`` (then it replaces the shipped one) - except ``if-mib``, which the
interface engine runs on (:func:`agent.snmp.table.engine_problems` checks it fits). Two
files naming the same profile are an error. Every file is read with the one TOML loader
and error format of :mod:`xanet.config`, and every problem of every file is reported at
once::

    /etc/xanet/profiles/ups.toml: scalars[2].oid: not a numeric OID (...)
    /etc/xanet/profiles/ups.toml: name: 'ups-mib' is a shipped profile (write override = ...)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from agent.profiles.model import IF_MIB, Profile
from agent.snmp.table import engine_problems
from xanet.config import ConfigError, parse_model, read_toml

SHIPPED_PACKAGE = "agent.profiles"
SHIPPED_DIR = "shipped"

#: Profiles by name.
Catalog = dict[str, Profile]


class ProfileError(ConfigError):
    """Profile files that cannot be used; one line per problem, each naming its file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("profiles", problems)
        self.lines = problems

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _read(path: Path, problems: list[str]) -> Profile | None:
    try:
        profile = parse_model(read_toml(path), Profile, path)
    except ConfigError as exc:
        problems += [f"{path}: {problem}" for problem in exc.problems]
        return None
    if profile.engine == "interfaces":
        engine = engine_problems(profile)
        problems += [f"{path}: {problem}" for problem in engine]
        return None if engine else profile
    return profile


def _files(directory: Path, problems: list[str]) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".toml")
    except OSError as exc:
        problems.append(f"{directory}: cannot read the profile directory: "
                        f"{exc.strerror or exc}")
        return []


def shipped_profile(name: str) -> Profile:
    """One shipped profile (``shipped/<name>.toml``); :class:`ProfileError` if unreadable."""
    problems: list[str] = []
    root = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_DIR)
    profile = _read(Path(str(root.joinpath(f"{name}.toml"))), problems)
    if profile is None:
        raise ProfileError(problems)
    return profile


def shipped_files() -> list[Path]:
    """The shipped profile files, by name."""
    root = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_DIR)
    return sorted(Path(str(entry)) for entry in root.iterdir() if entry.name.endswith(".toml"))


def catalog_problems(user_dir: Path | None = None) -> tuple[Catalog, list[str]]:
    """The catalog (shipped, then ``user_dir``'s additions and overrides) and every
    problem found (``file: key.path: reason``); the catalog holds what could be read."""
    problems: list[str] = []
    catalog: Catalog = {}
    origin: dict[str, Path] = {}
    for path in shipped_files():
        profile = _read(path, problems)
        if profile is None:
            continue
        if profile.name in catalog:
            problems.append(f"{path}: name: {profile.name!r} is also shipped in "
                            f"{origin[profile.name]}")
            continue
        catalog[profile.name], origin[profile.name] = profile, path
    shipped = set(catalog)
    seen_user: dict[str, Path] = {}
    for path in _files(user_dir, problems) if user_dir is not None else []:
        profile = _read(path, problems)
        if profile is None:
            continue
        name = profile.name
        if name in seen_user:
            problems.append(f"{path}: name: {name!r} is also defined in {seen_user[name]}")
            continue
        seen_user[name] = path
        if name == IF_MIB:
            problems.append(f"{path}: name: {IF_MIB!r} is the interface engine's definition "
                            "and cannot be replaced; poll more IF-MIB objects in a profile of "
                            "another name")
            continue
        if name in shipped and not profile.override:
            problems.append(f"{path}: name: {name!r} is a shipped profile (write override = "
                            "true to replace it, or choose another name)")
            continue
        if name not in shipped and profile.override:
            problems.append(f"{path}: override: there is no shipped profile {name!r} to "
                            "replace")
            continue
        catalog[name] = profile
    return catalog, problems


def load_catalog(user_dir: Path | None = None) -> Catalog:
    """The catalog; :class:`ProfileError` listing every problem of every file."""
    catalog, problems = catalog_problems(user_dir)
    if problems:
        raise ProfileError(problems)
    return catalog
