"""Asynchronous TAP (UWS 1.1 under /tap/async) against the live server.

Every test runs on both databases (the ``server`` fixture).  Other tests may
share the servers, so job lists are checked for our own jobs only.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import time
from collections.abc import Iterable

import pytest
import pyvo
import requests
from astropy.io.votable import parse_single_table
from conftest import ADMIN, ALICE, BOB, LiveServer, pymysql_database
from lxml import etree

UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"uws": UWS, "xlink": XLINK, "xsi": XSI}

QUICK = "SELECT TOP 3 table_name FROM TAP_SCHEMA.tables ORDER BY table_name"
#: runs for many minutes on either database: five-fold cross join of the column
#: list (SQLite counts a four-fold one, ~5e8 rows, in seconds)
SLOW = (
    "SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
    "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d, TAP_SCHEMA.columns AS e"
)
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy", "pymysql", "sqlite3.")


def session(account: tuple[str, str] | None = None) -> requests.Session:
    """An HTTP session, logged in as ``account`` (anonymous for None)."""
    s = requests.Session()
    if account is not None:
        s.auth = account
    return s


def create_job(server: LiveServer, s: requests.Session, query: str = QUICK,
               files: dict | None = None, **params: str) -> str:
    """POST a new job; returns its URL (from the 303 Location)."""
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    r = s.post(f"{server.url}/tap/async", data=data, files=files, allow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["Location"]
    assert location.startswith(f"{server.url}/tap/async/")
    return location


def job_doc(s: requests.Session, url: str, **params: str) -> etree._Element:
    """The parsed ``<uws:job>`` document."""
    r = s.get(url, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] in ("text/xml", "application/xml")
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{UWS}}}job"
    assert root.get("version") == "1.1"
    return root


def text(root: etree._Element, tag: str) -> str | None:
    el = root.find(f"uws:{tag}", NS)
    return None if el is None else (el.text or "")


def phase(s: requests.Session, url: str) -> str:
    r = s.get(f"{url}/phase")
    assert r.status_code == 200, r.text
    return r.text.strip()


def wait_for(s: requests.Session, url: str, phases: Iterable[str], timeout: float = 90) -> str:
    """Poll (with WAIT) until the job is in one of ``phases``."""
    wanted = set(phases)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = text(job_doc(s, url, WAIT="5"), "phase")
        if current in wanted:
            return current
    raise AssertionError(f"job {url} still {current} after {timeout} s, wanted {wanted}")


def run(s: requests.Session, url: str) -> None:
    r = s.post(f"{url}/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == url
    assert phase(s, url) in ("QUEUED", "EXECUTING", "COMPLETED", "ERROR")


def no_internals(body: str) -> None:
    for marker in TRACE_MARKERS:
        assert marker not in body, body


def tap(server: LiveServer, account: tuple[str, str] | None = None) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(f"{server.url}/tap", session=session(account))


# --------------------------------------------------------------------------
# pyvo


def test_pyvo_run_async(server: LiveServer) -> None:
    result = tap(server).run_async(QUICK, timeout=120)
    assert len(result) == 3
    assert "table_name" in result.fieldnames


def test_pyvo_submit_run_wait_fetch(server: LiveServer) -> None:
    job = tap(server, ALICE).submit_job(QUICK, runid="pyvo-run")
    assert job.phase == "PENDING"
    job.run()
    assert job.phase in ("QUEUED", "EXECUTING", "COMPLETED")
    job.wait(timeout=120)
    assert job.phase == "COMPLETED"
    assert job.owner == ALICE[0]
    assert job.job.runid == "pyvo-run"
    assert job.result_uri == f"{job.url}/results/result"
    table = job.fetch_result().to_table()
    assert len(table) == 3
    url = job.url
    job.delete()
    assert session(ALICE).get(url).status_code == 404


def test_pyvo_job_list_filters(server: LiveServer) -> None:
    service = tap(server, ALICE)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    pending = service.submit_job(QUICK, runid="list-pending")
    done = service.submit_job(QUICK, runid="list-done")
    done.run().wait(timeout=120)
    ids = {pending.job_id, done.job_id}

    listed = {j.jobid: j for j in service.get_job_list()}
    assert ids <= set(listed)
    assert listed[pending.job_id].phase == "PENDING"
    assert listed[done.job_id].ownerid == ALICE[0]
    assert listed[done.job_id].runid == "list-done"

    only_pending = {j.jobid for j in service.get_job_list(phases=["PENDING"])}
    assert pending.job_id in only_pending and done.job_id not in only_pending
    both = {j.jobid for j in service.get_job_list(phases=["PENDING", "COMPLETED"])}
    assert ids <= both
    newest = service.get_job_list(last=1)
    assert [j.jobid for j in newest] == [done.job_id]
    after = {j.jobid for j in service.get_job_list(after=before)}
    assert ids <= after
    future = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
    assert service.get_job_list(after=future) == []
    listing = session(ALICE).get(f"{server.url}/tap/async", params={"PHASE": "ARCHIVED"})
    assert listing.status_code == 200
    assert session(ALICE).get(f"{server.url}/tap/async", params={"LAST": "x"}).status_code == 400
    pending.delete()
    done.delete()


# --------------------------------------------------------------------------
# The UWS resources by hand


def test_job_document_and_children(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, RUNID="doc-test", MAXREC="2", RESPONSEFORMAT="csv",
                     FOO="bar")
    job_id = url.rsplit("/", 1)[1]
    doc = job_doc(s, url)
    assert text(doc, "jobId") == job_id
    assert text(doc, "runId") == "doc-test"
    assert doc.find("uws:ownerId", NS).get(f"{{{XSI}}}nil") == "true"
    assert text(doc, "phase") == "PENDING"
    params = {p.get("id").upper(): p.text for p in doc.iterfind("uws:parameters/uws:parameter", NS)}
    assert params["REQUEST"] == "doQuery"
    assert params["LANG"] == "ADQL"
    assert params["QUERY"] == QUICK
    assert params["MAXREC"] == "2"
    assert params["RESPONSEFORMAT"] == "csv"
    assert params["FOO"] == "bar"  # unknown parameters are kept
    for child in ("phase", "executionduration", "destruction", "quote", "owner"):
        r = s.get(f"{url}/{child}")
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain")
    assert s.get(f"{url}/phase").text == "PENDING"
    assert s.get(f"{url}/executionduration").text == text(doc, "executionDuration")
    destruction = s.get(f"{url}/destruction").text
    assert destruction == text(doc, "destruction")
    assert "T" in destruction and destruction.endswith("Z")
    assert text(doc, "creationTime").endswith("Z")

    # parameters may change while PENDING
    r = s.post(f"{url}/parameters", data={"runId": "renamed", "MAXREC": "1"},
               allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == url
    assert text(job_doc(s, url), "runId") == "renamed"

    run(s, url)
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "COMPLETED"
    doc = job_doc(s, url)
    assert text(doc, "startTime") and text(doc, "endTime")
    result = doc.find("uws:results/uws:result", NS)
    assert result.get("id") == "result"
    href = result.get(f"{{{XLINK}}}href")
    assert href == f"{url}/results/result"
    r = s.get(href)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == result.get("mime-type")
    assert r.headers["Content-Type"].startswith("text/csv")
    assert len(r.content) == int(result.get("size"))
    assert len(r.text.strip().splitlines()) == 2  # header + MAXREC=1 row
    results = etree.fromstring(s.get(f"{url}/results").content)
    assert results.tag == f"{{{UWS}}}results"

    # not allowed once the job ran
    assert s.post(f"{url}/parameters", data={"QUERY": "x"}).status_code == 403
    assert s.post(f"{url}/phase", data={"PHASE": "RUN"}).status_code == 403
    assert s.post(url, data={"QUERY": "x"}).status_code == 403
    assert s.get(f"{url}/nonsense").status_code == 404
    assert s.get(f"{url}/results/other").status_code == 404
    assert s.get(f"{url}/error").status_code == 404
    assert s.get(f"{server.url}/tap/async/doesnotexist").status_code == 404
    assert s.get(f"{server.url}/tap/async/doesnotexist/phase").status_code == 404


def test_phase_run_on_creation(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, PHASE="RUN")
    assert phase(s, url) in ("QUEUED", "EXECUTING", "COMPLETED")
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "COMPLETED"
    ids = {p.get("id") for p in job_doc(s, url).iterfind(".//uws:parameter", NS)}
    assert "PHASE" not in ids


def test_failed_query_gives_error(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, "SELECT nosuchcolumn FROM nosuchschema.nosuchtable")
    run(s, url)
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "ERROR"
    doc = job_doc(s, url)
    summary = doc.find("uws:errorSummary", NS)
    assert summary.get("type") in ("fatal", "transient")
    assert summary.get("hasDetail") == "true"
    message = summary.findtext("uws:message", namespaces=NS)
    assert message.strip()
    no_internals(message)
    r = s.get(f"{url}/error")
    assert r.status_code == 200
    votable = etree.fromstring(r.content)
    infos = [
        i for i in votable.iter() if i.tag.endswith("INFO") and i.get("name") == "QUERY_STATUS"
    ]
    assert [i.get("value") for i in infos] == ["ERROR"]
    no_internals(r.text)
    assert s.get(f"{url}/results/result").status_code == 404
    with pytest.raises(pyvo.dal.DALQueryError):
        tap(server).run_async("SELECT FROM WHERE", timeout=60)


def test_bad_parameters_fail_at_execution(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, LANG="KLINGON", MAXREC="lots")
    run(s, url)
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "ERROR"
    no_internals(s.get(f"{url}/error").text)


def test_delete(server: LiveServer) -> None:
    s = session()
    for how in ("DELETE", "ACTION"):
        url = create_job(server, s)
        if how == "DELETE":
            r = s.delete(url, allow_redirects=False)
        else:
            r = s.post(url, data={"ACTION": "DELETE"}, allow_redirects=False)
        assert r.status_code == 303
        assert r.headers["Location"] == f"{server.url}/tap/async"
        assert s.get(url).status_code == 404
        assert s.get(f"{url}/phase").status_code == 404
        assert s.delete(url).status_code == 404
        listed = etree.fromstring(s.get(f"{server.url}/tap/async").content)
        assert url.rsplit("/", 1)[1] not in {j.get("id") for j in listed}


def test_wait_blocking(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s)
    start = time.monotonic()
    assert text(job_doc(s, url, WAIT="2"), "phase") == "PENDING"
    assert time.monotonic() - start >= 1.5  # blocked while nothing changed
    start = time.monotonic()
    assert text(job_doc(s, url, WAIT="30", PHASE="EXECUTING"), "phase") == "PENDING"
    assert time.monotonic() - start < 20  # not EXECUTING: returns at once
    run(s, url)
    deadline = time.monotonic() + 120
    current = phase(s, url)
    while current != "COMPLETED" and time.monotonic() < deadline:
        current = text(job_doc(s, url, WAIT="-1"), "phase")
    assert current == "COMPLETED"
    start = time.monotonic()
    job_doc(s, url, WAIT="30")  # a finished job does not block
    assert time.monotonic() - start < 20
    assert s.get(url, params={"WAIT": "soon"}).status_code == 400


def test_abort(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, SLOW)
    assert s.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "30"}).ok
    run(s, url)
    wait_for(s, url, ["EXECUTING", "COMPLETED", "ERROR"])
    r = s.post(f"{url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False)
    assert r.status_code == 303
    assert phase(s, url) == "ABORTED"
    time.sleep(2)  # the runner stops the query; it must not come back to life
    assert phase(s, url) == "ABORTED"
    assert s.get(f"{url}/results/result").status_code == 404
    pending = create_job(server, s)
    assert s.post(f"{pending}/phase", data={"PHASE": "ABORT"}).ok
    assert phase(s, pending) == "ABORTED"
    assert s.post(f"{pending}/phase", data={"PHASE": "RUN"}).status_code == 403
    assert s.post(f"{pending}/phase", data={"PHASE": "JUMP"}).status_code == 400


def _statements_like(marker: str) -> list[int]:
    """Ids of the MariaDB threads whose running statement contains ``marker``."""
    conn = pymysql_database("test")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist "
                "WHERE info LIKE %s AND info NOT LIKE '%%processlist%%'",
                (f"%{marker}%",),
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_abort_stops_the_database_statement(mariadb_server: LiveServer) -> None:
    """An aborted job leaves nothing running in MariaDB (closing its socket would not
    stop the statement: it would run on until its max_statement_time)."""
    s = session()
    marker = f"abandoned_{os.getpid()}_{time.monotonic_ns()}"
    url = create_job(mariadb_server, s, SLOW.replace("AS n ", f"AS {marker} "))
    assert s.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "600"}).ok
    run(s, url)
    assert wait_for(s, url, ["EXECUTING", "COMPLETED", "ERROR"]) == "EXECUTING"
    deadline = time.monotonic() + 30
    while not _statements_like(marker):
        assert time.monotonic() < deadline, "the job's statement never showed in MariaDB"
        time.sleep(0.2)
    assert s.post(f"{url}/phase", data={"PHASE": "ABORT"}).ok
    deadline = time.monotonic() + 20
    while _statements_like(marker):
        assert time.monotonic() < deadline, "the aborted job's statement still runs"
        time.sleep(0.2)
    assert phase(s, url) == "ABORTED"


def test_execution_duration_enforced(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, SLOW)
    r = s.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "1"},
               allow_redirects=False)
    assert r.status_code == 303
    assert s.get(f"{url}/executionduration").text == "1"
    run(s, url)
    assert wait_for(s, url, ["COMPLETED", "ERROR"], timeout=60) == "ERROR"
    message = job_doc(s, url).findtext("uws:errorSummary/uws:message", namespaces=NS)
    no_internals(message)
    lowered = message.lower()
    assert any(word in lowered for word in ("time", "duration", "long")), message


def test_destruction_in_past_removes_job(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = s.post(f"{url}/destruction", data={"DESTRUCTION": past}, allow_redirects=False)
    assert r.status_code == 303
    deadline = time.monotonic() + 30
    while s.get(url).status_code != 404:
        assert time.monotonic() < deadline, "the job outlived its destruction time"
        time.sleep(0.5)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = create_job(server, s)
    assert s.post(f"{url}/destruction", data={"DESTRUCTION": later}).ok
    assert s.get(f"{url}/destruction").text.startswith(later[:16])
    assert s.post(f"{url}/destruction", data={"DESTRUCTION": "tomorrow"}).status_code == 400


def test_owner_isolation(server: LiveServer) -> None:
    alice, bob, anon, admin = session(ALICE), session(BOB), session(), session(ADMIN)
    url = create_job(server, alice)
    job_id = url.rsplit("/", 1)[1]
    run(alice, url)
    assert wait_for(alice, url, ["COMPLETED", "ERROR"]) == "COMPLETED"
    assert text(job_doc(alice, url), "ownerId") == ALICE[0]
    assert alice.get(f"{url}/owner").text == ALICE[0]
    for other in (bob, anon):
        for suffix in ("", "/phase", "/parameters", "/results/result", "/error"):
            assert other.get(url + suffix).status_code in (401, 403, 404)
        assert other.post(f"{url}/phase", data={"PHASE": "ABORT"}).status_code in (401, 403, 404)
        assert other.delete(url).status_code in (401, 403, 404)
        listed = etree.fromstring(other.get(f"{server.url}/tap/async").content)
        assert job_id not in {j.get("id") for j in listed}
    # anonymous jobs are visible to anonymous users only (and admins)
    anon_url = create_job(server, anon)
    anon_id = anon_url.rsplit("/", 1)[1]
    assert anon.get(anon_url).status_code == 200
    assert bob.get(anon_url).status_code in (403, 404)
    all_ids = {j.get("id") for j in etree.fromstring(admin.get(f"{server.url}/tap/async").content)}
    assert {job_id, anon_id} <= all_ids
    assert admin.get(f"{url}/results/result").status_code == 200
    assert alice.get(f"{url}/results/result").status_code == 200


def test_inline_upload(server: LiveServer) -> None:
    votable = (
        b'<?xml version="1.0"?><VOTABLE version="1.4" '
        b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        b'<FIELD name="id" datatype="int"/><FIELD name="ra" datatype="double"/>'
        b"<DATA><TABLEDATA><TR><TD>1</TD><TD>10.5</TD></TR><TR><TD>2</TD><TD>20.5</TD></TR>"
        b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    )
    s = session()
    url = create_job(server, s, "SELECT id, ra FROM TAP_UPLOAD.mine ORDER BY id",
                     files={"mine": ("mine.vot", votable, "application/x-votable+xml")},
                     UPLOAD="mine,param:mine")
    doc = job_doc(s, url)
    params = {p.get("id"): p for p in doc.iterfind("uws:parameters/uws:parameter", NS)}
    assert params["UPLOAD"].text == "mine,param:mine"
    ref = params["mine"]
    assert ref.get("byReference") == "true"
    assert ref.text == f"{url}/parameters/mine"
    assert s.get(ref.text).content == votable
    run(s, url)
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "COMPLETED", s.get(f"{url}/error").text
    table = parse_single_table(io.BytesIO(s.get(f"{url}/results/result").content)).to_table()
    assert list(table["id"]) == [1, 2]


# --------------------------------------------------------------------------
# Persistence across restarts


def test_results_survive_restart(server: LiveServer) -> None:
    s = session(ALICE)
    url = create_job(server, s, PHASE="RUN")
    assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "COMPLETED"
    before = s.get(f"{url}/results/result").content
    pending = create_job(server, s)
    server.restart()
    assert phase(s, url) == "COMPLETED"
    assert s.get(f"{url}/results/result").content == before
    assert phase(s, pending) == "PENDING"
    run(s, pending)  # the runner works after the restart
    assert wait_for(s, pending, ["COMPLETED", "ERROR"]) == "COMPLETED"


def test_executing_job_fails_after_kill(server: LiveServer) -> None:
    s = session()
    url = create_job(server, s, SLOW)
    assert s.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "30"}).ok
    run(s, url)
    assert wait_for(s, url, ["EXECUTING", "COMPLETED", "ERROR"]) == "EXECUTING"
    # kill -9 the whole server (web workers, runner, job processes)
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=30)
    server.proc = None
    server.start()
    assert phase(s, url) == "ERROR"
    message = job_doc(s, url).findtext("uws:errorSummary/uws:message", namespaces=NS)
    assert "restart" in message


# --------------------------------------------------------------------------
# STILTS


def test_stilts_tapquery_async(server: LiveServer, tmp_path) -> None:
    out = tmp_path / "out.csv"
    subprocess.run(
        ["stilts", "tapquery", f"tapurl={server.url}/tap", f"adql={QUICK}", "sync=false",
         f"out={out}", "ofmt=csv"],
        check=True, capture_output=True, text=True, timeout=120,
    )
    assert len(out.read_text().strip().splitlines()) == 4


def test_taplint_uws(server: LiveServer) -> None:
    result = subprocess.run(
        ["stilts", "taplint", f"tapurl={server.url}/tap", "stages=UWS", "report=EWF"],
        capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line[:2] in ("E-", "F-", "W-")]
    assert not lines, result.stdout
    assert "Section UWS" in result.stdout
