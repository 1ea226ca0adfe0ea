"""write_tables: several TABLEs in one results RESOURCE (IVOA time-series note, case 2)."""

from __future__ import annotations

import inspect
import io
import warnings
from pathlib import Path

import astropy.io.votable
import numpy as np
import pytest
from astropy.io.votable import parse
from lxml import etree
from test_votable import votlint, votlint_report

from voservice.votable import (
    CooSys,
    Field,
    Group,
    Info,
    Param,
    Resource,
    TablePart,
    TimeSys,
    write_table,
    write_tables,
)

VOTABLE_FORMATS = ["votable/binary2", "votable/binary", "votable/td"]
NS = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
XSD = Path(astropy.io.votable.__file__).parent / "data" / "VOTable.v1.4.xsd"

TIMESYS = [
    TimeSys("ts_g", timescale="TDB", refposition="BARYCENTER", timeorigin="MJD-origin"),
    TimeSys("ts_r", timescale="TT", refposition="TOPOCENTER", timeorigin=2400000.5),
    TimeSys("ts_i", timescale="UTC", refposition="TOPOCENTER", timeorigin="JD-origin"),
]
COOSYS = [CooSys("icrs", "ICRS", epoch="J2000")]

# three bands, each with its own columns and its own TIMESYS
BANDS = {
    "g": (
        [
            Field("obs_time", "double", unit="d", ucd="time.epoch", ref="ts_g", id="g_time"),
            Field("mag", "float", unit="mag", ucd="phot.mag"),
            Field("flag", "boolean"),
        ],
        [[(59000.125, 17.5, True), (59000.25, None, False)], [(59001.5, 17.75, None)]],
    ),
    "r": (
        [
            Field("obs_time", "double", unit="d", ucd="time.epoch", ref="ts_r", id="r_time"),
            Field("flux", "double", unit="mJy"),
            Field("n_obs", "int"),
            Field("note", "unicodeChar", "*"),
        ],
        [
            [(2459000.5, 1e-300, 3, "clear ☀"), (2459001.0, -2.5, None, "")],
            [(2459002.75, float("inf"), -(2**31) + 1, "<cloud> & rain")],
        ],
    ),
    "i": (
        [
            Field("obs_time", "double", unit="d", ucd="time.epoch", ref="ts_i", id="i_time"),
            Field("mag", "double", unit="mag"),
            Field("quality", "short", values_null=-1),
            Field("pos", "double", "2", xtype="point", unit="deg", ref="icrs"),
        ],
        [[(2459000.5, 18.0, 1, (10.0, 20.0)), (2459003.5, 18.25, None, (10.5, -20.0))]],
    ),
}


def rows_of(band: str) -> list[tuple]:
    return [row for chunk in BANDS[band][1] for row in chunk]


def part(band: str, chunks=None, **kw) -> TablePart:
    fields, data = BANDS[band]
    return TablePart(
        fields,
        data if chunks is None else chunks,
        params=[Param("band", "char", "*", value=band, ucd="instr.bandpass")],
        groups=[Group(name="time", field_refs=[f"{band}_time"])],
        name=f"lc_{band}",
        description=f"light curve in {band} & co",
        trailer=kw.pop("trailer", lambda: [Info("ROWS", str(len(rows_of(band))))]),
        **kw,
    )


def render(parts, **kw) -> bytes:
    kw.setdefault("timesys", TIMESYS)
    kw.setdefault("coosys", COOSYS)
    return b"".join(write_tables(parts, **kw))


def document(fmt: str) -> bytes:
    descriptor = Resource(
        type="meta",
        utype="adhoc:service",
        params=[Param("standardID", "char", "*", value="ivo://ivoa.net/std/DataLink#links-1.1")],
    )
    return render(
        [part("g"), part("r"), part("i")],
        format=fmt,
        infos=[Info("REQUEST", "queryData"), Info("QUERY_STATUS", "OK")],
        resources=[descriptor],
        resource_name="lightcurves",
        trailer=lambda: [Info("DONE", "yes")],
    )


def read(data: bytes):
    """Parse with astropy, failing on any VOTable warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse(io.BytesIO(data), verify="exception")


def assert_rows(table, band: str, rows: list[tuple]) -> None:
    """The table holds exactly ``rows`` (None = NULL, NaN/Inf/extremes bit-exact)."""
    fields = BANDS[band][0]
    assert [f.name for f in table.fields] == [f.name for f in fields]
    arr = table.array
    assert len(arr) == len(rows)
    for j, f in enumerate(fields):
        for k, row in enumerate(rows):
            got, mask, want = arr[f.name][k], np.ma.getmaskarray(arr[f.name])[k], row[j]
            if want is None:
                assert np.all(mask), (band, f.name, k)
            elif f.arraysize:
                assert list(got) == list(want), (band, f.name, k)
            else:
                assert not mask and got == want, (band, f.name, k, got, want)


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_astropy_reads_every_table_with_its_own_timesys(fmt: str) -> None:
    vot = read(document(fmt))
    tables = list(vot.iter_tables())
    assert [t.name for t in tables] == ["lc_g", "lc_r", "lc_i"]
    assert len(vot.resources) == 2 and vot.resources[0].type == "results"
    assert not vot.resources[0].resources  # case 2: all tables in the one RESOURCE
    for band, table in zip("gri", tables, strict=True):
        assert_rows(table, band, rows_of(band))
        assert table.description == f"light curve in {band} & co"
        assert {p.name: p.value for p in table.params}["band"] == band
        ref = table.get_field_by_id(f"{band}_time").ref
        ts = vot.get_timesys_by_id(ref)
        want = next(t for t in TIMESYS if t.id == f"ts_{band}")
        assert (ts.ID, ts.timescale, ts.refposition) == (want.id, want.timescale, want.refposition)
        assert table.groups[0].entries[0].ref == f"{band}_time"
    assert vot.get_timesys_by_id("ts_r").timeorigin == 2400000.5
    assert vot.get_coosys_by_id("icrs").system == "ICRS"
    assert tables[2].get_field_by_id_or_name("pos").ref == "icrs"


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votlint_astropy_validator_and_schema_find_no_error(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "multi.vot"
    path.write_bytes(document(fmt))
    votlint(path)
    report = astropy.io.votable.validate(str(path), output=None)
    assert "astropy.io.votable found no violations" in report, report
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.parse(str(path))), schema.error_log


def test_schema_check_detects_problems() -> None:
    """Guard: the XSD check fails on a misplaced element."""
    data = document("votable/td").replace(b'<TIMESYS ID="ts_g"', b'<TIMESYS ID="9"')
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert not schema.validate(etree.fromstring(data))


def test_document_layout_and_info_order() -> None:
    root = etree.fromstring(document("votable/binary2"))
    assert [etree.QName(c).localname for c in root] == [
        "COOSYS",
        "TIMESYS",
        "TIMESYS",
        "TIMESYS",
        "RESOURCE",
        "RESOURCE",
    ]
    results, descriptor = root.findall("v:RESOURCE", NS)
    assert results.get("type") == "results" and results.get("name") == "lightcurves"
    assert descriptor.get("utype") == "adhoc:service"
    layout = [(etree.QName(c).localname, c.get("name"), c.get("value")) for c in results]
    assert layout == [
        ("INFO", "QUERY_STATUS", "OK"),  # moved first, as write_table does
        ("INFO", "REQUEST", "queryData"),
        ("TABLE", "lc_g", None),
        ("INFO", "ROWS", "3"),
        ("TABLE", "lc_r", None),
        ("INFO", "ROWS", "3"),
        ("TABLE", "lc_i", None),
        ("INFO", "ROWS", "2"),
        ("INFO", "DONE", "yes"),
    ]


def test_integer_null_sentinel_declared_per_table_for_binary() -> None:
    root = etree.fromstring(document("votable/binary"))
    nulls = {
        f"{t.get('name')}.{f.get('name')}": f.find("v:VALUES", NS).get("null")
        for t in root.iterfind(".//v:TABLE", NS)
        for f in t.iterfind("v:FIELD", NS)
        if f.find("v:VALUES", NS) is not None
    }
    assert nulls == {"lc_r.n_obs": str(-(2**31)), "lc_i.quality": "-1"}


def test_single_votable_part_equals_write_table() -> None:
    fields, data = BANDS["r"]
    kw = dict(
        infos=[Info("REQUEST", "queryData")],
        timesys=TIMESYS,
        coosys=COOSYS,
        resource_name="lc",
        version="1.5",
    )
    for fmt in VOTABLE_FORMATS:
        one = b"".join(
            write_table(
                fields,
                data,
                format=fmt,
                params=[Param("band", "char", "*", value="r")],
                table_name="lc_r",
                trailer=lambda: [Info("ROWS", "3")],
                **kw,
            )
        )
        many = render(
            [
                TablePart(
                    fields,
                    data,
                    params=[Param("band", "char", "*", value="r")],
                    name="lc_r",
                    trailer=lambda: [Info("ROWS", "3")],
                )
            ],
            format=fmt,
            **kw,
        )
        assert many == one


# --------------------------------------------------------------------------- streaming


def test_tables_are_streamed_one_after_another() -> None:
    events: list[str] = []
    n_chunks, per_chunk = 20, 20_000

    def band_chunks(band: str):
        events.append(f"{band} start")
        try:
            for k in range(n_chunks):
                events.append(f"{band} chunk")
                yield [(float(k * per_chunk + i), 1.0, True) for i in range(per_chunk)]
        finally:
            events.append(f"{band} end")

    fields = BANDS["g"][0]
    parts = [
        TablePart(
            [Field(f.name, f.datatype, f.arraysize, ref=f.ref) for f in fields],
            band_chunks(b),
            name=b,
        )
        for b in "gri"
    ]
    stream = write_tables(parts, timesys=TIMESYS)
    first = next(stream)
    assert b"<TABLE" in first and events == []  # header before any chunk is read
    largest, seen_while_g = 0, 0
    blocks = [first]
    for block in stream:
        blocks.append(block)
        largest = max(largest, len(block))
        if events[-1] == "g chunk":
            seen_while_g += 1
    # output left while the first table was still being read, in bounded blocks
    assert seen_while_g > 5
    assert largest < (256 << 10) + per_chunk * 14 * 4 // 3 + 100  # flush size + one chunk
    assert events == [
        e for b in "gri" for e in [f"{b} start", *[f"{b} chunk"] * n_chunks, f"{b} end"]
    ]
    tables = list(read(b"".join(blocks)).iter_tables())
    assert [len(t.array) for t in tables] == [n_chunks * per_chunk] * 3
    assert tables[2].array["obs_time"][-1] == n_chunks * per_chunk - 1


class QueryTimeout(Exception):
    pass


def failing(rows: list[tuple], flags: dict[str, bool], key: str):
    try:
        yield rows[:2]
        raise QueryTimeout("query timed out in <r> & beyond")
    finally:
        flags[key] = True


class Recorder:
    """An iterable of chunks that records close() (a generator closed before its
    start runs no finally)."""

    def __init__(self, chunks) -> None:
        self.chunks = chunks
        self.started = self.closed = False

    def __iter__(self):
        self.started = True
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_failure_in_second_table_ends_document_cleanly(tmp_path: Path, fmt: str) -> None:
    flags: dict[str, bool] = {}
    third = Recorder(BANDS["i"][1])
    data = render(
        [part("g"), part("r", failing(rows_of("r"), flags, "r")), part("i", third)],
        format=fmt,
        catch=(QueryTimeout,),
        trailer=lambda: [Info("DONE", "yes")],
    )
    assert flags == {"r": True}
    assert not third.started and third.closed  # never read, but released
    root = etree.fromstring(data)
    results = root.find("v:RESOURCE", NS)
    layout = [(etree.QName(c).localname, c.get("name"), c.get("value")) for c in results]
    assert layout == [
        ("INFO", "QUERY_STATUS", "OK"),
        ("TABLE", "lc_g", None),
        ("INFO", "ROWS", "3"),
        ("TABLE", "lc_r", None),
        ("INFO", "QUERY_STATUS", "ERROR"),
        ("INFO", "ROWS", "3"),
        ("INFO", "DONE", "yes"),
    ]
    assert results[4].text == "query timed out in <r> & beyond"
    assert data.endswith(b"</RESOURCE>\n</VOTABLE>\n")
    tables = list(read(data).iter_tables())
    assert len(tables) == 2
    assert_rows(tables[0], "g", rows_of("g"))
    assert_rows(tables[1], "r", rows_of("r")[:2])  # the whole first chunk
    path = tmp_path / "partial.vot"
    path.write_bytes(data)
    # the TIMESYS of the table never written is the only remark
    assert votlint_report(path) == ['WARNING: TIMESYS element with ID="ts_i" never referenced']


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_unwritable_value_in_second_table(fmt: str) -> None:
    fields = [Field("obs_time", "double", ref="ts_r"), Field("n", "short")]
    bad = TablePart(fields, [[(1.0, 1), (2.0, 2)], [(3.0, 3), (4.0, 100_000)]], name="bad")
    data = render([part("g"), bad, part("i")], format=fmt, value_errors=True)
    root = etree.fromstring(data)
    statuses = root.findall(".//v:INFO[@name='QUERY_STATUS']", NS)
    assert [s.get("value") for s in statuses] == ["OK", "ERROR"]
    assert "out of range" in statuses[1].text
    assert root.find(".//v:TABLE[@name='bad']", NS).getnext() is statuses[1]
    tables = list(read(data).iter_tables())
    assert [t.name for t in tables] == ["lc_g", "bad"]
    assert list(tables[1].array["n"]) == [1, 2]  # whole chunks only
    with pytest.raises(ValueError, match="out of range"):
        render([part("g"), bad, part("i")], format=fmt)


def test_uncaught_error_propagates_and_closes_the_rest() -> None:
    flags: dict[str, bool] = {}
    third = Recorder(BANDS["i"][1])
    with pytest.raises(QueryTimeout):
        render([part("g"), part("r", failing(rows_of("r"), flags, "r")), part("i", third)])
    assert flags == {"r": True} and third.closed and not third.started


def test_close_closes_every_part_even_unstarted() -> None:
    flags: dict[str, bool] = {}

    def big(band: str):
        try:
            for k in range(50):
                yield [(float(k), 1.0, True)] * 50_000
        finally:
            flags[band] = True

    unstarted = big("r")
    third = Recorder(BANDS["i"][1])
    stream = write_tables([part("g", big("g")), part("r", unstarted), part("i", third)])
    next(stream)
    next(stream)  # a block of the first table's rows
    assert flags == {}
    stream.close()
    assert flags == {"g": True}  # started: its finally ran
    assert inspect.getgeneratorstate(unstarted) == inspect.GEN_CLOSED
    assert third.closed and not third.started
    stream.close()  # idempotent

    never = [Recorder([[(1.0, 2.0, True)]]) for _ in range(3)]
    write_tables([part(band, r) for band, r in zip("gri", never, strict=True)]).close()
    assert all(r.closed and not r.started for r in never)


# --------------------------------------------------------------------------- other formats


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "fits"])
def test_single_part_other_formats_equal_write_table(fmt: str) -> None:
    fields, data = BANDS["r"]
    one = b"".join(
        write_table(
            fields,
            data,
            format=fmt,
            infos=[Info("REQUEST", "q")],
            trailer=lambda: [Info("ROWS", "3"), Info("DONE", "yes")],
        )
    )
    many = render(
        [TablePart(fields, data, trailer=lambda: [Info("ROWS", "3")])],
        format=fmt,
        infos=[Info("REQUEST", "q")],
        trailer=lambda: [Info("DONE", "yes")],
    )
    assert many == one
    if fmt == "csv":
        assert many.decode().splitlines()[0] == "obs_time,flux,n_obs,note"
        assert len(many.decode().splitlines()) == 4


@pytest.mark.parametrize("fmt", ["csv", "text/csv", "tsv", "json", "fits"])
def test_several_parts_in_single_table_format_fail_before_any_byte(fmt: str) -> None:
    started = []

    def chunks():
        started.append(True)
        yield BANDS["g"][1][0]

    with pytest.raises(ValueError, match="holds a single table but this result has 2 tables"):
        write_tables([part("g", chunks()), part("r")], format=fmt)
    assert started == []


def test_invalid_arguments_fail_before_streaming() -> None:
    with pytest.raises(ValueError, match="at least one TablePart"):
        write_tables([])
    with pytest.raises(ValueError, match="table 2 .*lc_r.* at least one field"):
        write_tables([part("g"), TablePart([], [], name="lc_r")])
    with pytest.raises(ValueError, match="datatype"):
        write_tables([part("g"), TablePart([Field("a", "integer")], [])])
    with pytest.raises(ValueError, match="TIMESYS needs VOTable version 1.4"):
        write_tables([part("g")], timesys=TIMESYS, version="1.3")
    with pytest.raises(ValueError, match="RESPONSEFORMAT"):
        write_tables([part("g")], format="votable/xyz")
    same = TablePart(BANDS["g"][0], [], name="again")  # the same FIELD IDs twice
    with pytest.raises(ValueError, match="ID 'g_time' is used more than once"):
        write_tables([part("g"), same])
