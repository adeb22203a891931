"""Polls one device for its profiles: GETs the scalars, walks the columns, judges the values.

The SNMP side of device profiles (:mod:`agent.profiles`): for a target and a profile,
the scalars are fetched with GETs (:data:`SCALARS_PER_GET` at a time) and the columns
walked with one GETBULK loop (:class:`agent.snmp.colwalk.ColumnWalk`), through the
backend the poller chooses for the target (:meth:`agent.snmp.poller.SnmpPoller.backend`,
the same as the interface poll's); the var-binds are judged by
:func:`agent.profiles.evaluate.evaluate`. ``profiles = ["auto"]`` first GETs
sysObjectID (:func:`read_sys_object_id`).

Called by the agent's poll loop through :class:`agent.profilepoll.SnmpProfileReader`
(docs/profiles.md, "When a profile is polled").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from agent.errors import SnmpProtocolError
from agent.profiles.evaluate import ProfileSample, evaluate
from agent.profiles.model import Profile
from agent.profiles.select import needs_sys_object_id, select_profiles
from agent.snmp import ber
from agent.snmp.ber import VarBind
from agent.snmp.colwalk import ColumnWalk
from agent.snmp.oids import Oid
from agent.snmp.poller import SnmpPoller, get, walk_all
from agent.snmp.table import Warnings
from agent.snmp.target import SnmpTarget

#: Scalars asked in one GET (a UPS profile has about ten; small enough for any agent).
SCALARS_PER_GET: Final = 16
SYS_OBJECT_ID: Final = (1, 3, 6, 1, 2, 1, 1, 2, 0)
_SCALARS_WHAT: Final = "GET profile scalars"
_SYS_OBJECT_ID_WHAT: Final = "GET sysObjectID"


async def read_sys_object_id(poller: SnmpPoller, target: SnmpTarget) -> Oid | None:
    """The device's sysObjectID, or None when it has none (or not an OID)."""
    var_binds = await get(poller.backend(target), target, (SYS_OBJECT_ID,),
                          _SYS_OBJECT_ID_WHAT)
    if len(var_binds) != 1:
        raise SnmpProtocolError(target.device, f"{target.address} answered "
                                f"{_SYS_OBJECT_ID_WHAT} with {len(var_binds)} varbinds")
    oid, tag, value = var_binds[0]
    if oid != SYS_OBJECT_ID or tag != ber.OBJECT_IDENTIFIER or not isinstance(value, tuple):
        return None
    return value


async def poll_profile(poller: SnmpPoller, target: SnmpTarget,
                       profile: Profile) -> ProfileSample:
    """One profile's values of ``target``; raises the agent's SnmpError subclasses for
    what fails the whole exchange (timeouts, error-status, walk bounds)."""
    backend = poller.backend(target)
    warnings = Warnings()
    var_binds: list[VarBind] = []
    scalars = [metric.oid_tuple for metric in profile.scalars]
    for start in range(0, len(scalars), SCALARS_PER_GET):
        chunk = tuple(scalars[start:start + SCALARS_PER_GET])
        var_binds += await get(backend, target, chunk, _SCALARS_WHAT)
    columns = [column.oid_tuple for table in profile.tables for column in table.columns]
    walk = ColumnWalk(target, columns, warnings)
    await walk_all(backend, target, walk)
    return evaluate(profile, [*var_binds, *walk.var_binds], warnings, device=target.device)


async def poll_profiles(poller: SnmpPoller, target: SnmpTarget, requested: Sequence[str],
                        catalog: Mapping[str, Profile]) -> list[ProfileSample]:
    """Every profile ``requested`` names (``"auto"``: by the device's sysObjectID)."""
    sys_object_id = (await read_sys_object_id(poller, target)
                     if needs_sys_object_id(requested) else None)
    return [await poll_profile(poller, target, profile)
            for profile in select_profiles(requested, catalog, sys_object_id)]
