"""The id grammar: what may name a province, commune, site, device, agent or instance. Pure.

Ids appear verbatim as MQTT topic levels (``xanet/v1/{province}/{commune}/{site}/...``),
InfluxDB tag values and Alertmanager labels, so one grammar serves all of them:

* an **ident** is 1 to 64 ASCII letters, digits, ``_``, ``.``, ``:`` or ``-``, starting
  with a letter or digit (:data:`IDENT_PATTERN`). Topics, payloads (:mod:`xanet.wire`) and
  the agent's and collector's configs accept any ident;
* a **canonical id** is an ident in its narrowest spelling: lowercase letters, digits and
  inner ``-`` only (:data:`CANONICAL_ID_PATTERN`). The inventory declares canonical ids,
  so a name the province writes reads the same in every topic, tag, label and report.

Every canonical id is an ident (a property test checks it). Python code tests a value
with :func:`is_ident` / :func:`is_canonical` (``fullmatch``: a trailing newline is not
an id); pydantic models use :data:`Ident` / :data:`CanonicalId`.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, StringConstraints

#: The characters an ident may contain (also what :mod:`agent.instance` keeps of a host name).
IDENT_CHARS: Final = "A-Za-z0-9_.:-"
#: Max. length of an id (a topic level, a tag value).
MAX_ID_CHARS: Final = 64

IDENT_PATTERN: Final = rf"^[A-Za-z0-9][{IDENT_CHARS}]{{0,{MAX_ID_CHARS - 1}}}$"
CANONICAL_ID_PATTERN: Final = rf"^[a-z0-9](?:[a-z0-9-]{{0,{MAX_ID_CHARS - 2}}}[a-z0-9])?$"

IDENT_RULE: Final = (
    "use letters, digits, '_', '.', ':' or '-' (at most 64, no '/', '+', '#' or spaces)"
)
CANONICAL_RULE: Final = (
    "use 1-64 lowercase ASCII letters, digits and '-', not at the start or end "
    "(ids appear in MQTT topics, tags and labels)"
)

_IDENT = re.compile(IDENT_PATTERN)
_CANONICAL = re.compile(CANONICAL_ID_PATTERN)


def is_ident(value: str) -> bool:
    """True if ``value`` may be a topic level, a tag value or a config's id."""
    return _IDENT.fullmatch(value) is not None


def is_canonical(value: str) -> bool:
    """True if ``value`` is a canonical id (what the inventory declares)."""
    return _CANONICAL.fullmatch(value) is not None


def _check_canonical(value: str) -> str:
    if not is_canonical(value):
        raise ValueError(f"not a valid id: {CANONICAL_RULE}")
    return value


Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
CanonicalId = Annotated[str, AfterValidator(_check_canonical)]
