"""VOTable output of voservice.votable: validity (stilts votlint) and round trips."""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import re
import shutil
import subprocess
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from astropy.io.votable import parse
from lxml import etree

from voservice.votable import (
    Columns,
    Field,
    Group,
    Info,
    Param,
    Resource,
    TimeSys,
    error_document,
    write_table,
)

VOTABLE_FORMATS = ["votable/binary2", "votable/binary", "votable/td"]
NS = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}


def votlint_report(path: Path) -> list[str]:
    """ERROR/WARNING lines of `stilts votlint` (fails, never skips, without stilts)."""
    exe = shutil.which("stilts") or "/usr/bin/stilts"
    assert Path(exe).exists(), "stilts is required for these tests (apt-get install stilts)"
    r = subprocess.run(
        [exe, "votlint", f"votable={path}"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    return [
        line
        for line in (r.stdout + r.stderr).splitlines()
        if "ERROR" in line or "WARNING" in line or line.startswith(("FATAL", "Exception"))
    ]


def votlint(path: Path) -> None:
    """Fail unless `stilts votlint` reports no error and no warning."""
    report = votlint_report(path)
    assert not report, "\n".join(report)


def render(fields, chunks, **kw) -> bytes:
    return b"".join(write_table(fields, chunks, **kw))


def read(data: bytes):
    """Parse with astropy, failing on any VOTable warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vot = parse(io.BytesIO(data), verify="exception")
    return vot


# --------------------------------------------------------------------------- data

TS = TimeSys("mjd_tt", timescale="TT", refposition="TOPOCENTER", timeorigin="MJD-origin")

FIELDS = [
    Field("id", "long", ucd="meta.id;meta.main", description="row <id> & co", id="col_id"),
    Field("i", "int"),
    Field("sh", "short"),
    Field("ub", "unsignedByte"),
    Field("x", "double", unit="deg", ucd="pos.eq.ra"),
    Field("f", "float"),
    Field("s", "char", "*"),
    Field("u", "unicodeChar", "*"),
    Field("t", "char", "*", xtype="timestamp"),
    Field("b", "boolean"),
    Field("p", "double", "2", xtype="point", unit="deg"),
    Field("v", "double", "*", unit="deg"),
    Field("c3", "char", "3"),
    Field("mjd", "double", unit="d", ref="mjd_tt", ucd="time.epoch"),
    Field("ia", "int", "3"),
    Field("bounded", "char", "8*"),
]

ROWS = [
    (
        1,
        2,
        3,
        4,
        3.5,
        1.25,
        "abc <&> \"'",
        "héllo ☃ 中文",
        dt.datetime(2020, 1, 2, 3, 4, 5, 6),
        True,
        (10.5, -20.25),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "xyz",
        59000.5,
        [1, 2, 3],
        "short",
    ),
    (None,) * 16,
    (
        2**62,
        -(2**31) + 1,
        -(2**15) + 1,
        0,
        -1e300,
        -0.1,
        "",
        "",
        dt.datetime(1999, 12, 31, 23, 59, 59),
        False,
        [0.0, 90.0],
        [],
        "a",
        Decimal("60000.25"),
        np.array([4, 5, 6]),
        "much too long string",
    ),
    (
        np.int64(7),
        np.int32(8),
        np.int16(9),
        np.uint8(10),
        np.float64(1e-300),
        np.float32(3.0),
        "tab\there\nnewline",
        "𝄞 astral",
        dt.date(2001, 2, 3),
        np.bool_(True),
        np.array([1.0, 2.0]),
        np.array([7.0, 8.0, 9.0]),
        "",
        float("nan"),
        (7, 8, 9),
        "ok",
    ),
]


def expected_column(name: str) -> list:
    j = [f.name for f in FIELDS].index(name)
    return [r[j] for r in ROWS]


def full_doc(fmt: str, version: str = "1.4") -> bytes:
    descriptor = Resource(
        type="meta",
        utype="adhoc:service",
        name="links",
        id="dl_service",
        description="DataLink service for this table",
        params=[
            Param("standardID", "char", "*", value="ivo://ivoa.net/std/DataLink#links-1.1"),
            Param("accessURL", "char", "*", value="https://skvo.example/dl/links?a=1&b=2"),
        ],
        groups=[
            Group(
                name="inputParams",
                params=[Param("ID", "char", "*", value="", ref="col_id", ucd="meta.id")],
            )
        ],
    )
    inner = Resource(type="meta", name="inner", params=[Param("note", "char", "*", value="x")])
    return render(
        FIELDS,
        [ROWS[:2], ROWS[2:]],
        format=fmt,
        version=version,
        infos=[
            Info("QUERY", "SELECT * FROM t WHERE a < 3 & b", id="q"),
            Info("REQUEST", "doQuery"),
        ],
        params=[
            Param("radius", "double", value=0.5, unit="deg"),
            Param("center", "double", "2", value=[10.0, 20.0], xtype="point"),
            Param("band", "char", value="g r"),
            Param("flag", "boolean", value=True),
            Param("nothing", "int", value=None, values_null=-1),
        ],
        timesys=[TS],
        resources=[descriptor],
        meta_resources_inside=[inner],
        table_name="results",
        table_description="A test table with <special> & characters\x01",
        resource_name="skvo",
        trailer=lambda: [Info("QUERY_STATUS", "OVERFLOW")],
    )


# --------------------------------------------------------------------------- votlint


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votlint_clean(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "t.vot"
    path.write_bytes(full_doc(fmt))
    votlint(path)


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_version_1_5(fmt: str) -> None:
    """stilts 3.4.7 predates VOTable 1.5, so 1.5 output is checked with astropy."""
    vot = read(full_doc(fmt, "1.5"))
    assert vot.version == "1.5"
    assert vot.get_first_table().array["u"][0] == "héllo ☃ 中文"


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votlint_empty_table_and_column_input(tmp_path: Path, fmt: str) -> None:
    fields = [
        Field("a", "int"),
        Field("s", "char", "*"),
        Field("t", "char", "*", xtype="timestamp"),
    ]
    path = tmp_path / "empty.vot"
    path.write_bytes(render(fields, [], format=fmt))
    votlint(path)
    cols = Columns(
        [
            np.ma.masked_array([1, 2, 3], mask=[False, True, False]),
            np.array(["a", "bb", ""]),
            np.array(["2020-01-01T00:00:01", "NaT", "1900-06-01"], dtype="datetime64[s]"),
        ]
    )
    path.write_bytes(render(fields, [cols], format=fmt))
    votlint(path)


def test_raw_xml_block_mivot(tmp_path: Path) -> None:
    """raw_xml is inserted verbatim; votlint only notes the foreign namespace."""
    mivot = Resource(
        type="meta",
        raw_xml='<VODML xmlns="http://www.ivoa.net/xml/mivot"><REPORT status="OK"/></VODML>',
    )
    data = render([Field("a", "int")], [[(1,)]], meta_resources_inside=[mivot])
    root = etree.fromstring(data)
    meta = root.find("v:RESOURCE/v:RESOURCE[@type='meta']", NS)
    assert meta[0].tag == "{http://www.ivoa.net/xml/mivot}VODML"
    assert meta.getnext().tag.endswith("TABLE")
    path = tmp_path / "mivot.vot"
    path.write_bytes(data)
    report = votlint_report(path)
    assert len(report) == 1 and report[0].startswith("WARNING")
    assert "foreign namespace (http://www.ivoa.net/xml/mivot)" in report[0]


def test_polygon_xtype(tmp_path: Path) -> None:
    """DALI polygons as double[*].  votlint 3.4.7 (STIL 4.1.3) mis-reads any
    xtype="polygon" column in BINARY/BINARY2 ("Apparent negative element
    count") even for the identical bytes that it accepts without the xtype,
    so only TABLEDATA is linted; binary output is checked with astropy."""
    fields = [Field("id", "int"), Field("s_region", "double", "*", xtype="polygon", unit="deg")]
    rows = [
        (1, [10.0, 20.0, 11.0, 20.0, 11.0, 21.0]),
        (2, np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0])),
    ]
    path = tmp_path / "poly.vot"
    path.write_bytes(render(fields, [rows], format="votable/td"))
    votlint(path)
    for fmt in VOTABLE_FORMATS:
        t = read(render(fields, [rows], format=fmt)).get_first_table()
        assert t.get_field_by_id_or_name("s_region").xtype == "polygon"
        assert list(t.array["s_region"][1]) == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]


def test_error_document_votlint(tmp_path: Path) -> None:
    data = error_document("bad ADQL: unexpected '<' & more", infos=[Info("REQUEST", "doQuery")])
    path = tmp_path / "err.vot"
    path.write_bytes(data)
    votlint(path)
    root = etree.fromstring(data)
    info = root.find("v:RESOURCE[@type='results']/v:INFO[@name='QUERY_STATUS']", NS)
    assert info.get("value") == "ERROR"
    assert info.text == "bad ADQL: unexpected '<' & more"
    assert root.find(".//v:TABLE", NS) is None


def test_votlint_detects_problems(tmp_path: Path) -> None:
    """Guard: the votlint helper really fails on a broken document."""
    path = tmp_path / "bad.vot"
    path.write_bytes(full_doc("votable/td").replace(b'ref="mjd_tt"', b'ref="nowhere"'))
    with pytest.raises(AssertionError):
        votlint(path)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_astropy_round_trip(fmt: str) -> None:
    vot = read(full_doc(fmt))
    table = vot.get_first_table()
    t = table.to_table(use_names_over_ids=True)
    assert len(t) == len(ROWS)
    assert t.colnames == [f.name for f in FIELDS]

    assert list(t["id"].mask) == [False, True, False, False]
    assert t["id"][2] == 2**62 and t["id"][3] == 7
    assert t["i"][2] == -(2**31) + 1 and t["sh"][2] == -(2**15) + 1
    assert t["ub"][0] == 4 and t["ub"][2] == 0
    assert t["x"][2] == -1e300 and t["x"][3] == 1e-300
    assert t["f"][0] == np.float32(1.25) and t["f"][2] == np.float32(-0.1)
    assert t["s"][0] == "abc <&> \"'" and t["s"][3] == "tab\there\nnewline"
    assert t["u"][0] == "héllo ☃ 中文" and t["u"][3] == "𝄞 astral"
    assert list(t["t"][[0, 2, 3]]) == [
        "2020-01-02T03:04:05.000006",
        "1999-12-31T23:59:59",
        "2001-02-03",
    ]
    assert list(t["b"].filled(False)) == [True, False, False, True]
    assert t["b"].mask[1]
    assert list(t["p"][0]) == [10.5, -20.25] and list(t["p"][2]) == [0.0, 90.0]
    assert t["p"].mask[1].all()
    assert list(t["v"][0]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and len(t["v"][2]) == 0
    assert list(t["c3"])[0] == "xyz" and t["c3"][2] == "a"
    assert t["mjd"][0] == 59000.5 and t["mjd"][2] == 60000.25
    assert t["mjd"].mask[1] and t["mjd"].mask[3]  # NaN is NULL
    assert list(t["ia"][0]) == [1, 2, 3] and list(t["ia"][3]) == [7, 8, 9]
    assert t["bounded"][0] == "short" and t["bounded"][2] == "much too"  # arraysize 8*
    # (astropy ignores BINARY2 NULL flags of strings, see the test below)
    for name in ("i", "sh", "x", "f", "mjd", "ia"):
        assert np.all(table.array.mask[name][1]), name

    field = table.get_field_by_id("col_id")
    assert field.description == "row <id> & co"
    assert table.get_field_by_id_or_name("p").xtype == "point"
    assert table.get_field_by_id_or_name("x").unit == "deg"
    assert table.get_field_by_id_or_name("mjd").ref == "mjd_tt"
    ts = vot.time_systems[0]
    assert (ts.ID, ts.timescale, ts.refposition, ts.timeorigin) == (
        "mjd_tt",
        "TT",
        "TOPOCENTER",
        "MJD-origin",
    )
    params = {p.name: p.value for p in table.params}
    assert params["radius"] == 0.5 and list(params["center"]) == [10.0, 20.0]
    assert params["band"] == "g r" and bool(params["flag"]) is True


def test_binary2_distinguishes_empty_string_from_null() -> None:
    """Only BINARY2 can tell NULL from "" (astropy and stilts both read "" as
    NULL), so check the encoded bytes: NULL flag bit set, zero length."""
    data = render(
        [Field("s", "char", "*"), Field("u", "unicodeChar", "*")], [[(None, None), ("", "")]]
    )
    stream = re.search(rb'<STREAM encoding="base64">(.*)</STREAM>', data, re.S).group(1)
    raw = base64.b64decode(stream)
    assert raw == bytes([0b11000000]) + bytes(8) + bytes([0]) + bytes(8)


def test_pyvo_reads_status_infos_and_service_descriptor() -> None:
    import pyvo

    for fmt in VOTABLE_FORMATS:
        res = pyvo.dal.TAPResults(read(full_doc(fmt)))
        assert res.query_status == "OVERFLOW"  # the late trailer INFO wins
        assert len(res) == len(ROWS)
        assert res.fieldname_with_ucd("pos.eq.ra") == "x"
        assert res[0]["u"] == "héllo ☃ 中文"
        svc = res.get_adhocservice_by_ivoid("ivo://ivoa.net/std/DataLink#links-1.1")
        params = {p.name: p.value for p in svc.params}
        assert params["accessURL"] == "https://skvo.example/dl/links?a=1&b=2"
        assert res.infos["QUERY"] == "SELECT * FROM t WHERE a < 3 & b"


def test_structure_order_of_infos_and_resources() -> None:
    root = etree.fromstring(full_doc("votable/binary2"))
    assert root.get("version") == "1.4"
    assert root[0].tag.endswith("TIMESYS")
    results = root.find("v:RESOURCE[@type='results']", NS)
    assert results.get("name") == "skvo"
    children = [etree.QName(c).localname for c in results]
    assert children[:3] == ["INFO", "INFO", "INFO"]
    assert results[0].get("name") == "QUERY_STATUS" and results[0].get("value") == "OK"
    assert children.index("RESOURCE") < children.index("TABLE")  # MIVOT-style meta inside
    # trailer INFO comes after the TABLE
    assert children[-1] == "INFO" and results[-1].get("value") == "OVERFLOW"
    # service descriptor after the results resource
    tail = root.findall("v:RESOURCE", NS)[-1]
    assert tail.get("utype") == "adhoc:service"
    assert tail.find("v:GROUP/v:PARAM", NS).get("ref") == "col_id"
    assert "\x01" not in etree.tostring(root, encoding="unicode")


def test_integer_null_sentinel_declared_for_binary_only() -> None:
    def null_of(fmt: str) -> str | None:
        root = etree.fromstring(full_doc(fmt))
        v = root.find(".//v:FIELD[@name='i']/v:VALUES", NS)
        return None if v is None else v.get("null")

    assert null_of("votable/binary") == str(-(2**31))
    assert null_of("votable/binary2") is None
    assert null_of("votable/td") is None


def test_explicit_values_null_is_used() -> None:
    fields = [Field("q", "short", values_null=-999)]
    for fmt in VOTABLE_FORMATS:
        t = read(render(fields, [[(1,), (None,)]], format=fmt)).get_first_table().array
        assert t["q"][0] == 1 and t.mask["q"][1]


def test_user_supplied_query_status_is_not_duplicated() -> None:
    data = render([Field("a", "int")], [[(1,)]], infos=[Info("QUERY_STATUS", "OVERFLOW")])
    root = etree.fromstring(data)
    statuses = root.findall(".//v:INFO[@name='QUERY_STATUS']", NS)
    assert [s.get("value") for s in statuses] == ["OVERFLOW"]


# --------------------------------------------------------------------------- streaming


def test_streams_lazily_and_chunks_are_bytes() -> None:
    consumed = []

    def chunks():
        for k in range(5):
            consumed.append(k)
            yield [(k, float(k))] * 100_000

    it = write_table([Field("a", "int"), Field("b", "double")], chunks())
    first = next(it)
    assert isinstance(first, bytes) and b"<FIELD" in first
    assert consumed == []  # header comes before any data is pulled
    rest = list(it)
    assert consumed == [0, 1, 2, 3, 4]
    assert all(isinstance(b, bytes) for b in rest)
    t = read(first + b"".join(rest)).get_first_table().array
    assert len(t) == 500_000 and t["a"][-1] == 4


def test_caught_error_becomes_late_query_status() -> None:
    class QueryTimeout(Exception):
        pass

    def chunks():
        yield [(1,), (2,)]
        raise QueryTimeout("query timed out after 60 s")

    for fmt in VOTABLE_FORMATS:
        data = render([Field("a", "int")], chunks(), format=fmt, catch=(QueryTimeout,))
        root = etree.fromstring(data)
        late = root.find("v:RESOURCE/v:TABLE", NS).getnext()
        assert late.get("name") == "QUERY_STATUS" and late.get("value") == "ERROR"
        assert late.text == "query timed out after 60 s"
        assert len(read(data).get_first_table().array) == 2

    with pytest.raises(RuntimeError):
        render([Field("a", "int")], _raising(), format="votable/td", catch=(KeyError,))


def _raising():
    yield [(1,)]
    raise RuntimeError("boom")


def test_invalid_arguments_fail_before_streaming() -> None:
    with pytest.raises(ValueError, match="datatype"):
        write_table([Field("a", "integer")], [])
    with pytest.raises(ValueError, match="RESPONSEFORMAT"):
        write_table([Field("a", "int")], [], format="votable/xyz")
    with pytest.raises(ValueError, match="version"):
        write_table([Field("a", "int")], [], version="2.0")


def test_bad_rows_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="row length"):
        render([Field("a", "int"), Field("b", "int")], [[(1, 2), (3,)]])
    with pytest.raises(ValueError, match="out of range"):
        render([Field("a", "short")], [[(1,), (100_000,)]])
    with pytest.raises(ValueError, match="arraysize"):
        render([Field("p", "double", "2")], [[((1.0, 2.0, 3.0),)]])


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_rows_and_columns_give_identical_documents(fmt: str) -> None:
    fields = [
        Field("a", "long"),
        Field("x", "double"),
        Field("s", "char", "*"),
        Field("t", "char", "*", xtype="timestamp"),
        Field("b", "boolean"),
    ]
    times = [dt.datetime(2021, 5, 6, 7, 8, 9), None, dt.datetime(1970, 1, 1)]
    rows = [
        (1, 0.5, "a", times[0], True),
        (None, None, None, None, None),
        (3, 2.5, "ccc", times[2], False),
    ]
    cols = Columns(
        {
            "a": np.array([1, 0, 3]),
            "x": np.array([0.5, np.nan, 2.5]),
            "s": ["a", None, "ccc"],
            "t": np.array(["2021-05-06T07:08:09", "NaT", "1970-01-01T00:00:00"], "datetime64[us]"),
            "b": np.array([True, False, False]),
        },
        masks={"a": [False, True, False], "b": [False, True, False]},
    )
    assert render(fields, [rows], format=fmt) == render(fields, [cols], format=fmt)


def test_large_chunk_with_one_huge_string_is_split_not_padded() -> None:
    rows = [(i, "x") for i in range(20_000)]
    rows[123] = (123, "y" * 3_000_000)
    fields = [Field("i", "int"), Field("s", "char", "*")]
    t = read(render(fields, [rows])).get_first_table().array
    assert len(t["s"][123]) == 3_000_000 and t["s"][124] == "x" and t["i"][-1] == 19_999


def test_non_ascii_in_char_field() -> None:
    fields = [Field("s", "char", "*")]
    for fmt in VOTABLE_FORMATS:
        t = read(render(fields, [[("café",)]], format=fmt)).get_first_table().array
        assert t["s"][0] == "caf?"  # VOTable 1.4 char is ASCII; use unicodeChar for Unicode
    data = render(fields, [[("café",)]], format="votable/td", version="1.5")
    assert "café".encode() in data


def test_float_specials_and_timestamps_with_timezone() -> None:
    utc_plus_2 = dt.timezone(dt.timedelta(hours=2))
    fields = [Field("x", "double"), Field("t", "char", "*", xtype="timestamp")]
    rows = [
        (math.inf, dt.datetime(2020, 1, 1, 2, 0, tzinfo=utc_plus_2)),
        (-math.inf, dt.datetime(2020, 1, 1)),
    ]
    for fmt in VOTABLE_FORMATS:
        t = read(render(fields, [rows], format=fmt)).get_first_table().array
        assert t["x"][0] == math.inf and t["x"][1] == -math.inf
        assert t["t"][0] == "2020-01-01T00:00:00"
