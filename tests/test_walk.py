"""agent.snmp.walk and agent.snmp.table without sockets: the GETBULK walk fed by a device
emulated in a few lines (a sorted MIB and GETBULK's semantics), table-driven.

Columns ending at different rows, sparse tables, non-increasing OIDs, endOfMibView,
the row, byte and request bounds, the sysUpTime answer and error-statuses.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Sequence

import pytest

from agent.credentials import SnmpV2c
from agent.errors import SnmpAccessError, SnmpLimitError, SnmpProtocolError
from agent.snmp import ber, oids
from agent.snmp.ber import VarBind
from agent.snmp.oids import Oid
from agent.snmp.poller import shipped_interface_columns
from agent.snmp.table import (
    ROWS_OVER_BOUND,
    RawInterface,
    Table,
    Warnings,
    assemble,
)
from agent.snmp.target import SnmpTarget
from agent.snmp.walk import Walk, raise_for_status, read_uptime

#: the interface engine's columns, from the shipped if-mib profile
ENGINE = shipped_interface_columns()
COLUMNS = ENGINE.walked
TARGET = SnmpTarget(device="site/dev", host="192.0.2.1", credentials=SnmpV2c("public"),
                    max_repetitions=3)
END: VarBind = ((1, 3, 6, 1, 9, 9), ber.END_OF_MIB_VIEW, None)

Mib = dict[Oid, tuple[int, ber.Value]]
#: A GETBULK answerer: (request OIDs, max-repetitions) -> var-binds
Device = Callable[[Sequence[Oid], int], list[VarBind]]


def bulk_of(mib: Mib) -> Device:
    """GETBULK over ``mib`` as an honest agent answers it (non-repeaters 0): rows of
    lexicographic successors, one per requested OID, endOfMibView past the end."""
    keys = sorted(mib)

    def answer(request: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        cursors = list(request)
        out: list[VarBind] = []
        for _ in range(max_repetitions):
            for i, cursor in enumerate(cursors):
                at = bisect.bisect_right(keys, cursor)
                if at == len(keys):
                    out.append((cursor, ber.END_OF_MIB_VIEW, None))
                    continue
                oid = keys[at]
                cursors[i] = oid
                out.append((oid, *mib[oid]))
        return out

    return answer


def interface(index: int, *, name: bool = True, hc: bool = True) -> Mib:
    """One interface's cells: ifTable always, ifXTable if ``name``/``hc``: a gigabit port
    (ifSpeed and ifHighSpeed agree, RFC 2863) with ifXTable, else 10 Mbit/s."""
    mib: Mib = {
        (*oids.IF_DESCR, index): (ber.OCTET_STRING, f"descr {index}".encode()),
        (*oids.IF_SPEED, index): (ber.GAUGE32, 1_000_000_000 if hc else 10_000_000),
        (*oids.IF_ADMIN_STATUS, index): (ber.INTEGER, 1),
        (*oids.IF_OPER_STATUS, index): (ber.INTEGER, 1),
        (*oids.IF_IN_OCTETS, index): (ber.COUNTER32, 100 * index),
        (*oids.IF_OUT_OCTETS, index): (ber.COUNTER32, 200 * index),
    }
    if name:
        mib[(*oids.IF_NAME, index)] = (ber.OCTET_STRING, f"ge-{index}".encode())
    if hc:
        mib[(*oids.IF_HC_IN_OCTETS, index)] = (ber.COUNTER64, 2**40 + index)
        mib[(*oids.IF_HC_OUT_OCTETS, index)] = (ber.COUNTER64, 2**41 + index)
        mib[(*oids.IF_HIGH_SPEED, index)] = (ber.GAUGE32, 1000)
    return mib


def mib_of(*parts: Mib) -> Mib:
    merged: Mib = {}
    for part in parts:
        merged.update(part)
    return merged


def walk(device: Device, target: SnmpTarget = TARGET) -> tuple[Table, Warnings, int]:
    warnings = Warnings()
    state = Walk(target, COLUMNS, warnings)
    requests = 0
    while (request := state.next_request()) is not None:
        requests += 1
        state.receive(device(request, target.max_repetitions))
    return state.cells, warnings, requests


def interfaces(device: Device, target: SnmpTarget = TARGET) -> tuple[RawInterface, ...]:
    cells, warnings, _ = walk(device, target)
    return assemble(cells, ENGINE, warnings)


# ------------------------------------------------------------------ honest tables


def test_an_honest_table_is_walked_whole() -> None:
    got = interfaces(bulk_of(mib_of(*(interface(i) for i in (1, 2, 3, 7)))))
    assert [i.index for i in got] == [1, 2, 3, 7]
    assert got[3] == RawInterface(index=7, name="ge-7", descr="descr 7", oper_status=1,
                                  admin_status=1, speed_bps=1_000_000_000,
                                  in_octets=2**40 + 7, out_octets=2**41 + 7, hc=True,
                                  discontinuity_cs=None)


@pytest.mark.parametrize("n_rows", [0, 1, 2, 3, 4, 5, 6, 7, 10])
def test_requests_needed_follow_rows_over_max_repetitions(n_rows: int) -> None:
    _, _, requests = walk(bulk_of(mib_of(*(interface(i) for i in range(1, n_rows + 1)))))
    assert requests == n_rows // TARGET.max_repetitions + 1


def test_columns_ending_at_different_rows_are_each_walked_to_their_end() -> None:
    # ifTable has 5 rows, ifXTable only the first 2: the ifX columns leave early.
    mib = mib_of(*(interface(i, name=i <= 2, hc=i <= 2) for i in range(1, 6)))
    got = interfaces(bulk_of(mib))
    assert [i.index for i in got] == [1, 2, 3, 4, 5]
    assert [i.name for i in got] == ["ge-1", "ge-2", "descr 3", "descr 4", "descr 5"]
    assert [i.hc for i in got] == [True, True, False, False, False]
    assert got[4].in_octets == 500 and got[4].speed_bps == 10_000_000


def test_sparse_tables_give_the_union_of_indices() -> None:
    only_x: Mib = {(*oids.IF_NAME, 9): (ber.OCTET_STRING, b"x9")}
    only_if: Mib = {(*oids.IF_OPER_STATUS, 4): (ber.INTEGER, 2)}
    got = interfaces(bulk_of(mib_of(interface(1), only_x, only_if)))
    assert [(i.index, i.name, i.oper_status) for i in got] == [
        (1, "ge-1", 1), (4, "if4", 2), (9, "x9", None)]


def test_an_empty_table_ends_at_once() -> None:
    cells, warnings, requests = walk(bulk_of({}))
    assert requests == 1 and all(not c for c in cells.values())
    assert warnings.render() == ()


# ------------------------------------------------------------------ lying devices

# (name, what the device answers, what the walk keeps, a warning it must say)
def _backwards(request: Sequence[Oid], reps: int) -> list[VarBind]:
    """Every column answers its first row again: the walk goes backwards."""
    return [((*column[: len(oids.IF_DESCR)], 1) if column[-1] != 1 or len(column) > 10
             else (*column, 1), ber.INTEGER, 1) for column in request]


def _end_of_mib(request: Sequence[Oid], reps: int) -> list[VarBind]:
    return [END for _ in request]


def _no_such(request: Sequence[Oid], reps: int) -> list[VarBind]:
    return [(oid, ber.NO_SUCH_OBJECT, None) for oid in request]


def _not_an_index(request: Sequence[Oid], reps: int) -> list[VarBind]:
    out: list[VarBind] = []
    for oid in request:
        if len(oid) == len(oids.IF_DESCR):  # the first request: a two-part instance
            out.append(((*oid, 1, 2), ber.INTEGER, 1))
        else:
            out.append(END)
    return out


@pytest.mark.parametrize(
    ("device", "rows", "warning"),
    [
        pytest.param(_end_of_mib, [], None, id="endOfMibView-at-once"),
        pytest.param(_no_such, [], None, id="noSuchObject"),
        pytest.param(_not_an_index, [], "instance is not an ifIndex; dropped", id="bad-instance"),
    ],
)
def test_columns_that_end_or_lie(device: Device, rows: list[int], warning: str | None) -> None:
    cells, warnings, requests = walk(device)
    got = sorted({index for c in cells.values() for index in c})
    assert got == rows
    assert requests <= 2
    if warning is not None:
        assert any(warning in line for line in warnings.render())


def test_a_non_increasing_oid_stops_the_column_and_keeps_what_came_in_order() -> None:
    honest = bulk_of(mib_of(*(interface(i) for i in (1, 2, 3, 4, 5, 6))))

    def looping(request: Sequence[Oid], reps: int) -> list[VarBind]:
        answer = honest(request, reps)
        # ifDescr (the first column) jumps back to row 1 after row 2
        for position in range(0, len(answer), len(request)):
            oid = answer[position][0]
            if oid[: len(oids.IF_DESCR)] == oids.IF_DESCR and oid[-1] == 3:
                answer[position] = ((*oids.IF_DESCR, 1), ber.OCTET_STRING, b"again")
        return answer

    cells, warnings, _ = walk(looping)
    descr = next(c for c in COLUMNS if c.name == "ifDescr")
    assert cells[descr] == {1: "descr 1", 2: "descr 2"}
    assert any("ifDescr: non-increasing OID after 1.3.6.1.2.1.2.2.1.2.2; column walk stopped"
               in line for line in warnings.render())
    oper = next(c for c in COLUMNS if c.name == "ifOperStatus")
    assert sorted(cells[oper]) == [1, 2, 3, 4, 5, 6]  # the other columns go on


def test_a_column_that_goes_backwards_at_once_keeps_nothing() -> None:
    cells, warnings, requests = walk(_backwards)
    assert requests <= 2
    assert sum(len(c) for c in cells.values()) <= len(COLUMNS)
    assert any("non-increasing OID" in line for line in warnings.render())


def test_a_bad_cell_is_dropped_and_the_rest_of_the_row_stands() -> None:
    mib = mib_of(interface(1), interface(2))
    mib[(*oids.IF_OPER_STATUS, 2)] = (ber.INTEGER, 42)  # out of 1..7
    mib[(*oids.IF_HC_IN_OCTETS, 1)] = (ber.OCTET_STRING, b"lies")
    got = interfaces(bulk_of(mib))
    assert got[1].oper_status is None and got[1].admin_status == 1
    assert (got[0].in_octets, got[0].hc) == (100, False)  # 32-bit counters instead


# ------------------------------------------------------------------ bounds


def test_rows_beyond_the_row_bound_are_discarded_and_counted() -> None:
    target = dataclasses.replace(TARGET, max_rows=4)
    cells, warnings, _ = walk(bulk_of(mib_of(*(interface(i) for i in range(1, 11)))), target)
    assert sorted({index for c in cells.values() for index in c}) == [1, 2, 3, 4]
    assert warnings.contained[ROWS_OVER_BOUND] == 1
    assert any("rows beyond 4 discarded; column walk stopped" in line
               for line in warnings.render())


def test_a_walk_holding_more_than_the_byte_bound_fails() -> None:
    mib = {(*oids.IF_DESCR, i): (ber.OCTET_STRING, b"x" * 200) for i in range(1, 50)}
    target = dataclasses.replace(TARGET, max_walk_bytes=2000)
    with pytest.raises(SnmpLimitError, match="holds more than 2000 bytes"):
        walk(bulk_of(mib), target)


def test_an_endless_table_fails_at_the_request_bound() -> None:
    def endless(request: Sequence[Oid], reps: int) -> list[VarBind]:
        # every column advances through ever larger nested instances: rows that are not rows
        out: list[VarBind] = []
        for r in range(1, reps + 1):
            for oid in request:
                column = next(c.oid for c in COLUMNS if oid[: len(c.oid)] == c.oid)
                last = oid[len(column) + 1] if len(oid) > len(column) + 1 else 0
                out.append(((*column, 1, last + r), ber.INTEGER, 1))
        return out

    target = dataclasses.replace(TARGET, max_rows=30)
    with pytest.raises(SnmpLimitError,
                       match=f"did not end after {target.max_walk_requests} GETBULK"):
        walk(endless, target)


def test_the_request_bound_admits_an_honest_walk_of_max_rows() -> None:
    target = dataclasses.replace(TARGET, max_rows=30, max_repetitions=3)
    _, _, requests = walk(bulk_of(mib_of(*(interface(i) for i in range(1, 31)))), target)
    assert requests <= target.max_walk_requests


# ------------------------------------------------------------------ sysUpTime, error-status


@pytest.mark.parametrize(
    ("var_binds", "ticks", "problem"),
    [
        ([(oids.SYS_UPTIME, ber.TIMETICKS, 4242)], 4242, None),
        ([(oids.SYS_UPTIME, ber.GAUGE32, 17)], 17, None),  # the wrong type, usable: warned
        ([(oids.SYS_UPTIME, ber.OCTET_STRING, b"x")], None, "expected TimeTicks"),
        ([(oids.SYS_UPTIME, ber.NO_SUCH_OBJECT, None)], None, "No Such Object"),
        ([((1, 3, 6, 1, 2, 1, 1, 5, 0), ber.TIMETICKS, 1)], None, "with OID 1.3.6.1.2.1.1.5.0"),
        ([], None, "with 0 varbinds"),
    ],
)
def test_read_uptime(var_binds: list[VarBind], ticks: int | None, problem: str | None) -> None:
    warnings = Warnings()
    if problem is None:
        assert read_uptime(TARGET, 0, 0, var_binds, warnings) == ticks
        assert bool(warnings.render()) == (var_binds[0][1] != ber.TIMETICKS)
        return
    with pytest.raises(SnmpProtocolError, match=problem):
        read_uptime(TARGET, 0, 0, var_binds, warnings)


@pytest.mark.parametrize(
    ("status", "index", "error", "text"),
    [
        (0, 0, None, None),
        (6, 2, SnmpAccessError, "error-status noAccess at 1.3.6.1.2.1.2.2.1.5"),
        (16, 0, SnmpAccessError, "error-status authorizationError"),
        (2, 1, SnmpAccessError, "error-status noSuchName at 1.3.6.1.2.1.2.2.1.2"),
        (5, 0, SnmpProtocolError, "error-status genErr"),
        (99, 0, SnmpProtocolError, "error-status 99"),
    ],
)
def test_error_statuses(status: int, index: int, error: type[Exception] | None,
                        text: str | None) -> None:
    request = (oids.IF_DESCR, oids.IF_SPEED)
    if error is None:
        raise_for_status(TARGET, "GETBULK", request, status, index)
        return
    with pytest.raises(error) as info:
        raise_for_status(TARGET, "GETBULK", request, status, index)
    assert info.value.args and text is not None and text in str(info.value)
    assert "site/dev" in str(info.value)
