"""Line protocol escaping, round-tripped through a real InfluxDB 1.x: every string the
encoder is given (measurement, tag keys and values, field keys, string field values) is
written, read back over InfluxQL and compared with what docs/data.md promises (the string
itself; a newline, carriage return or trailing backslash as its visible stand-in)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lab
from collector import lineproto

_special = st.sampled_from([*',= "\\\n\r\t', "\\\\", "\\ ", "\\,", "\\=", '\\"', "\x00"])
_text = st.lists(st.one_of(_special, st.characters(exclude_categories=("Cs",))),
                 max_size=12).map("".join)
_ident = _text.filter(lambda s: s != "")


def expected(s: str, *, specials: str = "") -> str:
    """What InfluxDB gives back for ``s`` as written by collector.lineproto: the string, with
    a backslash before one of ``specials`` or at the end, a newline and a carriage return
    replaced by their visible stand-ins (docs/data.md)."""
    out = []
    for i, c in enumerate(s):
        if c == "\\" and (i + 1 == len(s) or s[i + 1] in specials) and specials:
            c = lineproto.LONE_BACKSLASH
        out.append(c)
    return "".join(out).replace("\n", lineproto.NEWLINE).replace("\r", lineproto.CARRIAGE_RETURN)


TAG = MEAS = ',= "'


_counter = itertools.count(1)


# InfluxDB skips a line's leading tabs and NULs, and "#" starts a comment: measurement
# names are the schema's constants (collector/lineproto.py), never data.
_measurement = _ident.filter(lambda s: s[0] not in "#\t\x00")


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(points=st.lists(st.tuples(_ident, _text, _ident, _text), min_size=1, max_size=8),
       measurement=_measurement)
def test_every_string_round_trips_through_influxdb(
    influxdb: lab.InfluxDB1, db: str, points: list[tuple[str, str, str, str]],
    measurement: str,
) -> None:
    run = str(next(_counter))
    lines = []
    want = {}
    for i, (tag_key, tag_value, field_key, text) in enumerate(points):
        ts = next(_counter)
        tags = {"run": run, f"t_{tag_key}": tag_value}
        ln = lineproto.line(measurement, tags, {f"f_{field_key}": text, "i": i}, ts)
        assert ln is not None and "\n" not in ln and "\r" not in ln
        lines.append(ln)
        want[ts] = (expected(f"t_{tag_key}", specials=TAG), expected(tag_value, specials=TAG),
                    expected(f"f_{field_key}", specials=TAG), expected(text))
    influxdb.write("\n".join(lines), db=db, precision="ms")  # one body: no line merges
    body = influxdb.query_raw(f"SELECT * FROM /.*/ WHERE \"run\" = '{run}'", db=db, epoch="ms")
    (result,) = body["results"]
    (series,) = result["series"]
    assert series["name"] == expected(measurement, specials=MEAS)
    cols = series["columns"]
    got = {}
    for values in series["values"]:
        row = dict(zip(cols, values, strict=True))
        got[row["time"]] = row
    assert sorted(got) == sorted(want)
    for ts, (tk, tv, fk, text) in want.items():
        row = got[ts]
        assert row[fk] == text, (fk, text, row)
        assert (row.get(tk) or "") == tv, (tk, tv, row)


def test_trailing_backslash_and_newline_are_visible_not_fatal(
    influxdb: lab.InfluxDB1, db: str,
) -> None:
    names = ["Gi0\\", "Gi0\\\\", "eth0\nvlan\r1", "C:\\ports\\1", "a\\,b", "x\\ y"]
    lines = [lineproto.line("interface", {"ifname": n}, {"v": i}, i + 1)
             for i, n in enumerate(names)]
    influxdb.write("\n".join(ln for ln in lines if ln), db=db, precision="ms")
    rows = influxdb.query('SELECT "v", "ifname" FROM "interface"', db=db, epoch="ms")
    assert [r["ifname"] for r in sorted(rows, key=lambda r: r["v"])] == [
        "Gi0\u29f5", "Gi0\\\u29f5", "eth0\u240avlan\u240d1", "C:\\ports\\1", "a\u29f5,b",
        "x\u29f5 y"]


pytestmark = pytest.mark.integration
