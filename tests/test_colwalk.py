"""agent.snmp.colwalk without sockets: the walk of a profile's columns, whatever their
index, fed by the GETBULK emulation of tests/test_walk.py; loop protection and bounds."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import SnmpLimitError
from agent.snmp import ber
from agent.snmp.ber import VarBind
from agent.snmp.colwalk import ColumnWalk
from agent.snmp.table import ROWS_OVER_BOUND, Warnings
from tests.test_walk import TARGET, Device, Mib, bulk_of

A = (1, 3, 6, 1, 2, 1, 33, 1, 3, 3, 1, 2)
B = (1, 3, 6, 1, 2, 1, 33, 1, 3, 3, 1, 3)
NAME = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 7)


def run(walk: ColumnWalk, device: Device, max_repetitions: int = 3) -> list[VarBind]:
    while (request := walk.next_request()) is not None:
        walk.receive(device(request, max_repetitions))
    return walk.var_binds


INDICES = st.lists(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3).map(tuple),
                   min_size=0, max_size=12, unique=True)


@given(a=INDICES, b=INDICES, names=INDICES, reps=st.integers(1, 8))
def test_every_cell_of_every_column_once_whatever_the_index(
    a: list[tuple[int, ...]], b: list[tuple[int, ...]], names: list[tuple[int, ...]], reps: int
) -> None:
    mib: Mib = {(*A, *i): (ber.INTEGER, 1) for i in a}
    mib |= {(*B, *i): (ber.GAUGE32, 2) for i in b}
    mib |= {(*NAME, *i): (ber.OCTET_STRING, b"x") for i in names}
    mib[(1, 3, 6, 1, 2, 1, 33, 1, 3, 3, 1, 4, 1)] = (ber.INTEGER, 9)  # a column not asked
    warnings = Warnings()
    got = run(ColumnWalk(TARGET, [A, B, NAME], warnings), bulk_of(mib), reps)
    want = {oid: cell for oid, cell in mib.items() if oid[:len(A)] in (A, B, NAME)}
    assert {oid: (tag, value) for oid, tag, value in got} == want
    assert len(got) == len(want)
    assert warnings.render() == ()


def test_a_column_going_backwards_stops_with_a_warning() -> None:
    def device(request: object, max_repetitions: int) -> list[VarBind]:
        return [((*A, 2), ber.INTEGER, 1), ((*A, 1), ber.INTEGER, 1)]

    warnings = Warnings()
    got = run(ColumnWalk(TARGET, [A], warnings), device)
    assert got == [((*A, 2), ber.INTEGER, 1)]
    assert warnings.render() == (
        f"{'.'.join(map(str, A))}: non-increasing OID after {'.'.join(map(str, A))}.2; "
        f"column walk stopped at {'.'.join(map(str, A))}.1",)


def test_rows_beyond_the_bound_are_discarded_and_counted() -> None:
    mib: Mib = {(*A, i): (ber.INTEGER, i) for i in range(1, 11)}
    warnings = Warnings()
    target = dataclasses.replace(TARGET, max_rows=4)
    got = run(ColumnWalk(target, [A], warnings), bulk_of(mib))
    assert [oid[-1] for oid, _, _ in got] == [1, 2, 3, 4]
    assert warnings.contained[ROWS_OVER_BOUND] == 1


def test_an_endless_column_hits_the_request_bound() -> None:
    def device(request: list[tuple[int, ...]], max_repetitions: int) -> list[VarBind]:
        return [((*request[0], 1), ber.INTEGER, 1)]  # always one deeper: never ends

    # One new row per answer: the request bound (2 x 4096 rows / 3 + 16) comes first.
    with pytest.raises(SnmpLimitError, match="profile walk did not end after 2748 GETBULK"):
        run(ColumnWalk(TARGET, [A], Warnings()), device)  # type: ignore[arg-type]
