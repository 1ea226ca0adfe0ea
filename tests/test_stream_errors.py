"""Errors of a query that streams: a well-formed document that says so, never a cut.

On SQLite and MariaDB: integer overflow (SQLite turns it into a REAL that
does not fit the BIGINT FIELD, MariaDB refuses it), a CAST into a too-small
type, and an integer literal beyond BIGINT.  VOTables (TABLEDATA, BINARY,
BINARY2) are parsed to the end and end in QUERY_STATUS=ERROR, or the error
comes before the table as a DALI error; CSV/TSV/FITS answer a DALI error
document.  Also: an error after the first rows closes a BINARY2 stream whole.
"""

from __future__ import annotations

import io

import pytest
import requests
from astropy.io.votable import parse as parse_votable
from conftest import LiveServer
from lxml import etree

from voservice.votable import Field, write_table

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"

OVERFLOWS = [
    "SELECT TOP 1 9223372036854775807 + 1 AS x FROM skvo.target",
    "SELECT TOP 1 9223372036854775807 * 2 AS x FROM skvo.target",
    "SELECT TOP 1 CAST(100000 AS SMALLINT) AS x FROM skvo.target",
]


def _sync(server: LiveServer, query: str, fmt: str) -> requests.Response:
    return requests.get(f"{server.url}/tap/sync", params={
        "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt}, timeout=60)


def _status(body: bytes) -> list[str]:
    """QUERY_STATUS values of a VOTable, in document order (parsed to the end)."""
    root = etree.fromstring(body)
    return [i.get("value") for i in root.iter(f"{VOT}INFO") if i.get("name") == "QUERY_STATUS"]


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/binary"])
@pytest.mark.parametrize("query", OVERFLOWS)
def test_overflow_ends_the_votable_with_an_error(server: LiveServer, query: str,
                                                 fmt: str) -> None:
    response = _sync(server, query, fmt)
    assert response.status_code in (200, 400)
    statuses = _status(response.content)
    assert statuses and statuses[-1] == "ERROR"
    if response.status_code == 200:  # streamed: the table is there and readable
        parse_votable(io.BytesIO(response.content)).get_first_table()
    assert b"Traceback" not in response.content


@pytest.mark.parametrize("fmt", ["csv", "tsv", "fits"])
@pytest.mark.parametrize("query", OVERFLOWS)
def test_overflow_in_formats_without_status_is_a_dali_error(server: LiveServer, query: str,
                                                            fmt: str) -> None:
    response = _sync(server, query, fmt)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert _status(response.content) == ["ERROR"]


def test_huge_integer_literal_is_not_a_server_error(server: LiveServer) -> None:
    query = ("SELECT target_id FROM skvo.target "
             "WHERE target_id = 99999999999999999999999999999999999999999")
    response = _sync(server, query, "votable")
    assert response.status_code < 500
    statuses = _status(response.content)
    if response.status_code == 200:
        table = parse_votable(io.BytesIO(response.content)).get_first_table()
        assert len(table.array) == 0 and "ERROR" not in statuses
    else:
        assert statuses == ["ERROR"]


@pytest.mark.parametrize("fmt", ["votable/binary2", "votable/binary", "votable/td", "json"])
def test_value_error_after_rows_closes_the_document(fmt: str) -> None:
    def chunks():
        yield [(1,), (2,)]
        yield [(3,), (100_000,)]  # does not fit a short

    body = b"".join(write_table([Field("x", "short")], chunks(), format=fmt,
                                value_errors=True))
    if fmt == "json":
        import json

        doc = json.loads(body)
        assert doc["data"] == [[1], [2]]
        assert {"name": "QUERY_STATUS", "value": "ERROR"}.items() <= doc["infos"][-1].items()
        return
    assert _status(body)[-1] == "ERROR"
    table = parse_votable(io.BytesIO(body)).get_first_table().array
    assert list(table["x"]) == [1, 2]


def test_closing_an_unread_table_closes_its_rows() -> None:
    closed = []

    class Rows:
        def __iter__(self):
            return self

        def __next__(self):
            raise AssertionError("never read")

        def close(self):
            closed.append(True)

    stream = write_table([Field("x", "int")], Rows())
    stream.close()
    assert closed
