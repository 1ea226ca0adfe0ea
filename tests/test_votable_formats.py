"""RESPONSEFORMAT resolution, CSV/TSV/JSON/FITS output and encoding helpers."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import math
import os

import numpy as np
import pytest
from astropy.io import fits

from voservice.votable import FORMATS, Columns, Field, Info, resolve_format, write_table
from voservice.votable.binary import Base64Stream
from voservice.votable.timefmt import iso_from_datetime64, iso_strings

FIELDS = [
    Field("id", "long"),
    Field("x", "double", unit="deg", ucd="pos.eq.ra"),
    Field("name", "char", "*", description="object name"),
    Field("t", "char", "*", xtype="timestamp"),
    Field("ok", "boolean"),
    Field("p", "double", "2", xtype="point"),
    Field("poly", "double", "*"),
    Field("u", "unicodeChar", "*"),
]
ROWS = [
    (1, 10.5, "plain", dt.datetime(2020, 1, 2, 3, 4, 5), True, (1.0, 2.0), [1.0, 2.0, 3.0], "é"),
    (None, None, None, None, None, None, None, None),
    (
        3,
        math.nan,
        'a,b "q"\nline',
        dt.datetime(2020, 1, 2, 3, 4, 5, 500),
        False,
        [3, 4],
        [],
        "\t\\",
    ),
]


def render(fmt: str, rows=ROWS, **kw) -> bytes:
    return b"".join(write_table(FIELDS, [rows], format=fmt, **kw))


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("given", "canonical", "mime"),
    [
        (None, "votable/binary2", "application/x-votable+xml"),
        ("", "votable/binary2", "application/x-votable+xml"),
        ("votable", "votable/binary2", "application/x-votable+xml"),
        ("VOTable", "votable/binary2", "application/x-votable+xml"),
        ("votable/b2", "votable/binary2", "application/x-votable+xml"),
        ("votable/td", "votable/td", "application/x-votable+xml;serialization=TABLEDATA"),
        ("votabletd", "votable/td", "application/x-votable+xml;serialization=TABLEDATA"),
        ("votable_td", "votable/td", "application/x-votable+xml;serialization=TABLEDATA"),
        ("votable/b", "votable/binary", "application/x-votable+xml;serialization=BINARY"),
        ("application/x-votable+xml", "votable/binary2", "application/x-votable+xml"),
        (
            "application/x-votable+xml;serialization=TABLEDATA",
            "votable/td",
            "application/x-votable+xml;serialization=TABLEDATA",
        ),
        (
            "application/x-votable+xml; serialization=tabledata",
            "votable/td",
            "application/x-votable+xml; serialization=tabledata",
        ),
        (
            "application/x-votable+xml;serialization=BINARY",
            "votable/binary",
            "application/x-votable+xml;serialization=BINARY",
        ),
        (
            "application/x-votable+xml;serialization=binary2",
            "votable/binary2",
            "application/x-votable+xml;serialization=binary2",
        ),
        (
            "application/x-votable+xml;content=datalink",
            "votable/binary2",
            "application/x-votable+xml;content=datalink",
        ),
        ("text/xml", "votable/binary2", "text/xml"),
        ("csv", "csv", "text/csv;header=present"),
        ("text/csv", "csv", "text/csv"),
        ("tsv", "tsv", "text/tab-separated-values"),
        ("text/tab-separated-values", "tsv", "text/tab-separated-values"),
        ("json", "json", "application/json"),
        ("application/json", "json", "application/json"),
        ("fits", "fits", "application/fits"),
        ("application/fits", "fits", "application/fits"),
    ],
)
def test_resolve_format(given, canonical, mime) -> None:
    assert resolve_format(given) == (canonical, mime)
    assert canonical in FORMATS


@pytest.mark.parametrize(
    "bad", ["votable/xx", "text/html", "application/x-votable+xml;serialization=FITS", "csv;x"]
)
def test_resolve_format_rejects_unknown(bad: str) -> None:
    with pytest.raises(ValueError, match="RESPONSEFORMAT|serialization"):
        resolve_format(bad)


def test_write_table_accepts_shorthand_and_mime_as_format() -> None:
    a = b"".join(write_table([Field("a", "int")], [[(1,)]], format="votable/td"))
    b = b"".join(
        write_table(
            [Field("a", "int")],
            [[(1,)]],
            format="application/x-votable+xml;serialization=TABLEDATA",
        )
    )
    assert a == b and b"<TABLEDATA>" in a


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_rfc4180() -> None:
    data = render("csv")
    assert data.startswith(b"id,x,name,t,ok,p,poly,u\r\n")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == ["id", "x", "name", "t", "ok", "p", "poly", "u"]
    assert rows[1] == [
        "1",
        "10.5",
        "plain",
        "2020-01-02T03:04:05",
        "true",
        "1.0 2.0",
        "1.0 2.0 3.0",
        "é",
    ]
    assert rows[2] == [""] * 8
    assert rows[3][2] == 'a,b "q"\nline'
    assert rows[3][1] == ""  # NaN is NULL
    assert rows[3][3] == "2020-01-02T03:04:05.000500"
    assert len(rows) == 4


def test_tsv_escapes_tabs_and_newlines() -> None:
    lines = render("tsv").decode("utf-8").split("\n")
    assert lines[0] == "id\tx\tname\tt\tok\tp\tpoly\tu"
    assert lines[2] == "\t" * 7
    cells = lines[3].split("\t")
    assert len(cells) == 8
    assert cells[2] == 'a,b "q"\\nline'
    assert cells[7] == "\\t\\\\"
    assert lines[-1] == "" and len(lines) == 5


def test_csv_error_in_chunks_propagates() -> None:
    class Boom(Exception):
        pass

    def chunks():
        yield [(1, 1.0, "a", None, True, None, None, None)]
        raise Boom("late")

    it = write_table(FIELDS, chunks(), format="csv", catch=(Boom,))
    with pytest.raises(Boom):
        b"".join(it)


# --------------------------------------------------------------------------- JSON


def test_json_document() -> None:
    doc = json.loads(render("json", trailer=lambda: [Info("QUERY_STATUS", "OVERFLOW")]))
    assert [c["name"] for c in doc["columns"]] == [f.name for f in FIELDS]
    assert doc["columns"][1] == {
        "name": "x",
        "datatype": "double",
        "unit": "deg",
        "ucd": "pos.eq.ra",
    }
    assert doc["columns"][3]["xtype"] == "timestamp"
    assert doc["data"][0] == [1, 10.5, "plain", "2020-01-02T03:04:05", True, [1.0, 2.0],
                              [1.0, 2.0, 3.0], "é"]  # fmt: skip
    assert doc["data"][1] == [None] * 8
    assert doc["data"][2][1] is None and doc["data"][2][2] == 'a,b "q"\nline'
    assert doc["infos"] == [{"name": "QUERY_STATUS", "value": "OVERFLOW"}]


def test_json_many_chunks_and_empty() -> None:
    chunks = [[(i, float(i), "s", None, True, None, None, None)] for i in range(5)]
    doc = json.loads(b"".join(write_table(FIELDS, chunks, format="json")))
    assert [r[0] for r in doc["data"]] == [0, 1, 2, 3, 4]
    assert json.loads(b"".join(write_table(FIELDS, [], format="json")))["data"] == []


# --------------------------------------------------------------------------- FITS


def test_fits_bintable() -> None:
    data = render("fits", infos=[Info("QUERY_STATUS", "OK")])
    assert len(data) % 2880 == 0
    with fits.open(io.BytesIO(data)) as hdul:
        hdul.verify("exception")
        tab = hdul[1]
        assert tab.header["NAXIS2"] == 3
        assert tab.columns["x"].unit == "deg"
        d = tab.data
        assert list(d["id"]) == [1, tab.columns["id"].null, 3]
        assert d["x"][0] == 10.5 and math.isnan(d["x"][1])
        assert list(d["name"]) == ["plain", "", 'a,b "q"\nline']
        assert d["t"][2] == "2020-01-02T03:04:05.000500"
        assert list(d["p"][0]) == [1.0, 2.0]
        assert list(d["poly"][0]) == [1.0, 2.0, 3.0] and len(d["poly"][2]) == 0
        assert "QUERY_STATUS=OK" in str(tab.header["COMMENT"])


def test_fits_keeps_long_infos_whole() -> None:
    did = "ivo://a.rather.long.authority.example.org/skvo?" + "0f3c2a5e-7d1b-4c9a-9e2f-1234567890ab"
    status = "the query hit MAXREC; " + "more rows exist, " * 8
    data = render("fits", infos=[Info("publisher_did", did),
                                 Info("QUERY_STATUS", "OVERFLOW", status)])
    with fits.open(io.BytesIO(data)) as hdul:
        hdul.verify("exception")
        header = hdul[1].header
        assert len(did) > 68 and header["DS_IDPUB"] == did  # a long-string CONTINUE keyword
        assert "CONTINUE" in header.tostring()
        comment = "".join(c.strip() for c in header["COMMENT"])
        assert comment.replace(" ", "") == f"QUERY_STATUS=OVERFLOW: {status}".replace(" ", "")


def test_fits_many_chunks_with_heap() -> None:
    fields = [Field("i", "int"), Field("v", "float", "*"), Field("s", "char", "*")]
    chunks = ([(k * 10 + j, [float(j)] * j, "x" * (k + j)) for j in range(10)] for k in range(30))
    data = b"".join(write_table(fields, chunks, format="fits"))
    with fits.open(io.BytesIO(data)) as hdul:
        d = hdul[1].data
        assert len(d) == 300
        assert list(d["i"]) == list(range(300))
        assert list(d["v"][299]) == [9.0] * 9 and len(d["v"][290]) == 0
        assert d["s"][299] == "x" * 38


# --------------------------------------------------------------------------- helpers


def test_base64_stream_is_valid_for_any_chunking() -> None:
    rng = np.random.default_rng(3)
    payload = os.urandom(10_000)
    for _ in range(20):
        cuts = sorted(rng.integers(0, len(payload), 15).tolist())
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        enc = Base64Stream()
        text = b"".join([enc.feed(p) for p in pieces]) + enc.finish()
        assert base64.b64decode(text.replace(b"\n", b"")) == payload
        assert text.count(b"=") <= 2


def test_timestamp_formatting_matches_isoformat() -> None:
    rng = np.random.default_rng(1)
    us = rng.integers(-62_135_596_800 * 10**6, 253_402_300_799 * 10**6, 20_000)
    values = us.astype("datetime64[us]")
    expect = np.array([v.isoformat() for v in values.astype(dt.datetime).tolist()], dtype="S")
    got, nat = iso_from_datetime64(values)
    assert nat is None and (got == expect).all()
    assert (iso_strings(values.astype(dt.datetime).tolist()) == expect).all()
    whole = [dt.datetime(2020, 2, 29, 23, 59, 59), dt.datetime(1, 1, 1)]
    assert iso_strings(whole).tolist() == [b"2020-02-29T23:59:59", b"0001-01-01T00:00:00"]
    assert iso_strings([dt.date(2024, 12, 31)]).tolist() == [b"2024-12-31"]


def test_columns_masks_and_masked_arrays() -> None:
    fields = [Field("a", "int"), Field("b", "double"), Field("s", "char", "*")]
    cols = Columns(
        [np.ma.masked_array([1, 2], mask=[True, False]), np.array([np.nan, 2.5]), ["x", "y"]],
        masks=[None, None, np.array([False, True])],
    )
    doc = json.loads(b"".join(write_table(fields, [cols], format="json")))
    assert doc["data"] == [[None, None, "x"], [2, 2.5, None]]
