"""Through TAP on SQLite and MariaDB: a query that SQL says fails (division by zero,
SQRT of a negative number, a cast that does not fit) answers a DALI error document
naming the problem, never NULLs; found after rows went out, the streamed VOTable
ends with QUERY_STATUS=ERROR (DALI), parseable to its end (issue 18)."""

from __future__ import annotations

import io

import pytest
from astropy.io.votable import parse as parse_votable
from conftest import LiveServer
from lxml import etree
from test_tap_async import NS, create_job, job_doc, no_internals, run, session, wait_for
from test_tap_sync import TRACE_MARKERS, status, sync

OBS = "FROM ivoa.obscore"

#: (query, words of the error): on column values, found when the database runs
RUNTIME = [
    (f"SELECT TOP 5 obs_id, 1 / (s_ra - s_ra) AS x {OBS} WHERE s_ra IS NOT NULL",
     "division by zero"),
    (f"SELECT obs_id, SQRT(s_dec - 100) AS x {OBS} WHERE s_dec IS NOT NULL",
     "SQRT of a negative number"),
    (f"SELECT obs_id, ACOS(s_ra + 2) AS x {OBS} WHERE s_ra IS NOT NULL",
     "ACOS of a number outside [-1, 1]"),
    (f"SELECT obs_id, MOD(1, s_ra - s_ra) AS x {OBS} WHERE s_ra IS NOT NULL",
     "division by zero"),
    (f"SELECT CAST(obs_id AS INTEGER) AS x {OBS}", "invalid input for CAST to INTEGER"),
    (f"SELECT CAST(s_ra + 100000 AS SMALLINT) AS x {OBS} WHERE s_ra IS NOT NULL",
     "value out of range for SMALLINT"),
    (f"SELECT obs_id {OBS} WHERE LOG(s_ra - s_ra) < 1 AND s_ra IS NOT NULL",
     "LOG of zero or a negative number"),
]
#: constants: refused when the query is translated
CONSTANT = [
    (f"SELECT TOP 1 1 / 0 AS x {OBS}", "division by zero"),
    (f"SELECT TOP 1 SQRT(-1) AS x {OBS}", "SQRT of a negative number"),
    (f"SELECT TOP 1 POWER(0, -1) AS x {OBS}", "zero raised to a negative power"),
]


def _statuses(body: bytes) -> list[tuple[str, str]]:
    """(value, text) of each QUERY_STATUS INFO of a (large) VOTable, in order."""
    root = etree.fromstring(body, etree.XMLParser(huge_tree=True))
    return [(i.get("value"), i.text or "") for i in root.iter("{*}INFO")
            if i.get("name") == "QUERY_STATUS"]


def _dali_error(server: LiveServer, query: str, words: str) -> None:
    response = sync(server, query)
    value, text = status(response.content)
    assert response.status_code == 400 and value == "ERROR", (query, response.text[:500])
    assert words in text, (query, text)
    assert not any(m in text for m in TRACE_MARKERS), text
    assert b"<TABLEDATA>" not in response.content and b"<TR>" not in response.content


@pytest.mark.parametrize("query,words", RUNTIME + CONSTANT, ids=[q[:50] for q, _ in
                                                                 RUNTIME + CONSTANT])
def test_errors_are_dali_error_documents(server: LiveServer, query: str, words: str) -> None:
    _dali_error(server, query, words)


def test_the_same_queries_without_the_fault_answer_rows(server: LiveServer) -> None:
    """The failing queries are fine where the values are inside the domain."""
    for query in (f"SELECT TOP 5 obs_id, 1 / (s_ra - s_ra + 1) AS x {OBS}",
                  f"SELECT obs_id, SQRT(s_dec + 100) AS x {OBS}",
                  f"SELECT CAST(s_ra AS SMALLINT) AS x {OBS}"):
        response = sync(server, query)
        value, _ = status(response.content)
        table = parse_votable(io.BytesIO(response.content)).get_first_table().array
        assert response.status_code == 200 and value == "OK" and len(table) > 0, query


def test_error_after_streamed_rows_ends_the_votable(server: LiveServer) -> None:
    """More rows than one fetch (10,000), the division by zero on the last one: the
    rows before it are sent, the document ends with QUERY_STATUS=ERROR."""
    join = f"{OBS} AS a, ivoa.obscore AS b, ivoa.obscore AS c"
    ids = "a.obs_id AS a_id, b.obs_id AS b_id, c.obs_id AS c_id"
    first = sync(server, f"SELECT TOP 15000 {ids} {join}", MAXREC="20000")
    rows = parse_votable(io.BytesIO(first.content)).get_first_table().array
    assert _statuses(first.content)[-1][0] == "OK" and len(rows) == 15_000
    last = rows[-1]
    fault = (f"CASE WHEN a.obs_id = '{last['a_id']}' AND b.obs_id = '{last['b_id']}' AND "
             f"c.obs_id = '{last['c_id']}' THEN 0 ELSE 1 END")
    response = sync(server, f"SELECT TOP 15000 {ids}, 1 / {fault} AS x {join}",
                    MAXREC="20000")
    assert response.status_code == 200
    value, text = _statuses(response.content)[-1]  # well-formed to its end
    assert value == "ERROR" and "division by zero" in text
    streamed = parse_votable(io.BytesIO(response.content)).get_first_table().array
    assert 10_000 <= len(streamed) < len(rows)


def test_async_job_fails_with_the_reason(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, f"SELECT CAST(obs_id AS INTEGER) AS x {OBS}")
    run(s, url)
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "ERROR"
    message = job_doc(s, url).find("uws:errorSummary", NS).findtext("uws:message",
                                                                     namespaces=NS)
    assert "invalid input for CAST to INTEGER" in message
    no_internals(message)
