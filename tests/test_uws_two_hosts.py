"""Two web hosts, one archive: async TAP (UWS) served by two ``skvo serve``.

Hosts A and B are two real ``skvo serve`` processes on different ports over
one MariaDB database and one jobs folder (what an NFS mount gives several
machines), each with its own job runner.  Any host answers any job URL, each
job runs once, and a host killed with SIGKILL mid-job leaves the job in
ERROR once its lease has passed, as seen from the other host.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvo
import requests
import sqlalchemy as sa
from conftest import (
    ADMIN,
    ALICE,
    BOB,
    DB_PREFIX,
    MARIADB_URL,
    Deployment,
    LiveServer,
    free_port,
    mariadb_database,
    pymysql_database,
    write_ini,
)
from lxml import etree
from sqlalchemy.engine import make_url

from voservice.jobs import JobStore
from voservice.stores.metadata import make_engine

UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
NS = {"uws": UWS, "xlink": XLINK}
QUICK = "SELECT TOP 3 table_name FROM TAP_SCHEMA.tables ORDER BY table_name"
#: runs for many minutes (five-fold cross join of the column list)
SLOW = (
    "SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
    "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d, TAP_SCHEMA.columns AS e"
)
LEASE = 4  # [server] job_lease of both hosts, seconds
STARTED = re.compile(r"async job ([0-9a-f]{32}) started on (host-[ab])")


def host(root: Path, url: str, node: str, query_url: str = "", **server: str) -> Deployment:
    """A host's configuration: its port and node name, the archive's database."""
    port = free_port()
    config = write_ini(root, url, port, metadata={"url": url, "query_url": query_url},
                       server={"node": node, "job_workers": "2", "job_lease": str(LEASE),
                               **server})
    return Deployment(root=root, config=config, port=port)


def select_only_account(database: str) -> str:
    """A MariaDB account with SELECT on every table but the job tables (and CREATE
    TEMPORARY TABLES for uploads); returns its URL."""
    name, password = f"{DB_PREFIX}uws_ro"[-80:], "ro-secret"
    conn = pymysql_database(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            db = cur.fetchone()[0]
            cur.execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")
            cur.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT CREATE TEMPORARY TABLES ON `{db}`.* TO '{name}'@'127.0.0.1'")
            cur.execute("SHOW TABLES")
            for (table,) in cur.fetchall():
                if not table.startswith("skvo_uws_"):
                    cur.execute(f"GRANT SELECT ON `{db}`.`{table}` TO '{name}'@'127.0.0.1'")
    finally:
        conn.close()
    server = make_url(MARIADB_URL)
    return (f"mysql+pymysql://{name}:{password}@127.0.0.1:{server.port or 3306}/{db}"
            "?charset=utf8mb4")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    """Hosts A and B: one MariaDB database, one jobs folder (the UWS tests query
    TAP_SCHEMA only, so the archive holds no observations)."""
    root_a = tmp_path_factory.mktemp("host-a")
    dep_a = host(root_a, mariadb_database("uws_two_hosts"), "host-a")
    dep_a.skvo("initdb")
    for name, password in (ALICE, BOB):
        dep_a.skvo("user", "add", name, "--password", password)
    dep_a.skvo("user", "add", ADMIN[0], "--password", ADMIN[1], "--admin")
    # an archive made before jobs lived in the database: `skvo serve` adds the tables
    conn = pymysql_database("uws_two_hosts")
    with conn.cursor() as cur:
        cur.execute("DROP TABLE skvo_uws_job, skvo_uws_owner")
    conn.close()
    # B's endpoints query with an account that cannot even read the job tables:
    # the job state goes through the writer engine
    dep_b = host(tmp_path_factory.mktemp("host-b"), dep_a.settings().metadata_url,
                 "host-b", query_url=select_only_account("uws_two_hosts"),
                 jobs_path=str(root_a / "jobs"))
    servers = {"a": LiveServer(dep_a), "b": LiveServer(dep_b)}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def on(server: LiveServer, url: str) -> str:
    """The same job URL on another host."""
    path = url.split("/tap/async", 1)[1]
    return f"{server.url}/tap/async{path}"


def session(account: tuple[str, str] | None = None) -> requests.Session:
    s = requests.Session()
    if account is not None:
        s.auth = account
    return s


def create(server: LiveServer, s: requests.Session, query: str = QUICK, **params: str) -> str:
    """POST a new job to ``server``; returns its URL there."""
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    r = s.post(f"{server.url}/tap/async", data=data, allow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["Location"].startswith(f"{server.url}/tap/async/")
    return r.headers["Location"]


def phase(s: requests.Session, url: str) -> str:
    r = s.get(f"{url}/phase")
    assert r.status_code == 200, r.text
    return r.text.strip()


def wait_for(s: requests.Session, url: str, wanted: set[str], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    current = phase(s, url)
    while current not in wanted:
        assert time.monotonic() < deadline, f"{url} still {current}, wanted {wanted}"
        s.get(url, params={"WAIT": "2"})
        current = phase(s, url)
    return current


def stored(hosts: dict[str, LiveServer], url: str):  # noqa: ANN201 - voservice.jobs.Job
    """The job's row, read directly from the shared database."""
    settings = hosts["a"].dep.settings()
    engine = make_engine(settings.metadata_url)
    try:
        return JobStore(engine, settings.get("server", "jobs_path")).get(url.rsplit("/", 1)[1])
    finally:
        engine.dispose()


def started_jobs(hosts: dict[str, LiveServer]) -> list[tuple[str, str]]:
    """(job id, node) of every job start the runners of both hosts logged."""
    return [match.groups() for server in hosts.values()
            for match in STARTED.finditer(server.log.read_text(errors="replace"))]


def _statements_like(marker: str) -> list[int]:
    """Ids of the MariaDB threads whose running statement contains ``marker``."""
    conn = pymysql_database("test")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist "
                        "WHERE info LIKE %s AND info NOT LIKE '%%processlist%%'",
                        (f"%{marker}%",))
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


# --------------------------------------------------------------------------


def test_job_made_on_a_is_run_and_fetched_on_b(hosts: dict[str, LiveServer]) -> None:
    a, b = hosts["a"], hosts["b"]
    alice = session(ALICE)
    url_a = create(a, alice, RUNID="two-hosts", RESPONSEFORMAT="csv", PHASE="RUN")
    url_b = on(b, url_a)
    assert wait_for(alice, url_b, {"COMPLETED", "ERROR"}) == "COMPLETED"
    doc = etree.fromstring(alice.get(url_b).content)
    assert doc.findtext("uws:runId", namespaces=NS) == "two-hosts"
    assert doc.findtext("uws:ownerId", namespaces=NS) == ALICE[0]
    href = doc.find("uws:results/uws:result", NS).get(f"{{{XLINK}}}href")
    assert href == f"{url_b}/results/result"  # B names itself in what it answers
    from_b, from_a = alice.get(href), alice.get(f"{url_a}/results/result")
    assert from_b.status_code == from_a.status_code == 200
    assert from_b.content == from_a.content
    assert from_b.headers["Content-Type"].startswith("text/csv")
    assert len(from_b.text.strip().splitlines()) == 4  # header + TOP 3
    # the owner's privacy holds on every host
    for server in (a, b):
        assert session(BOB).get(on(server, url_a)).status_code == 404
        listed = etree.fromstring(alice.get(f"{server.url}/tap/async").content)
        assert url_a.rsplit("/", 1)[1] in {ref.get("id") for ref in listed}
    # deleted on B: gone on A, with its files
    folder = Path(a.dep.settings().get("server", "jobs_path")) / url_a.rsplit("/", 1)[1]
    assert (folder / "result").is_file()
    assert alice.delete(url_b, allow_redirects=False).status_code == 303
    assert alice.get(url_a).status_code == 404
    assert not folder.exists()


def test_error_made_on_b_is_read_on_a(hosts: dict[str, LiveServer]) -> None:
    a, b = hosts["a"], hosts["b"]
    s = session()
    url_b = create(b, s, "SELECT nosuchcolumn FROM nosuchschema.nosuchtable", PHASE="RUN")
    url_a = on(a, url_b)
    assert wait_for(s, url_a, {"COMPLETED", "ERROR"}) == "ERROR"
    message = etree.fromstring(s.get(url_a).content).findtext(
        "uws:errorSummary/uws:message", namespaces=NS)
    assert "nosuchtable" in message.lower()
    r = s.get(f"{url_a}/error")
    assert r.status_code == 200 and b'value="ERROR"' in r.content
    assert s.get(f"{url_b}/results/result").status_code == 404


def test_abort_on_one_host_stops_the_job_on_the_other(hosts: dict[str, LiveServer]) -> None:
    s = session()
    marker = f"twohosts_{os.getpid()}_{time.monotonic_ns()}"
    url = create(hosts["a"], s, SLOW.replace("AS n ", f"AS {marker} "), PHASE="RUN")
    assert wait_for(s, url, {"EXECUTING", "COMPLETED", "ERROR"}) == "EXECUTING"
    runs_on = stored(hosts, url).node
    other = hosts["b"] if runs_on == "host-a" else hosts["a"]
    deadline = time.monotonic() + 30
    while not _statements_like(marker):
        assert time.monotonic() < deadline, "the job's statement never showed in MariaDB"
        time.sleep(0.2)
    r = s.post(f"{on(other, url)}/phase", data={"PHASE": "ABORT"}, allow_redirects=False)
    assert r.status_code == 303
    deadline = time.monotonic() + 20
    while _statements_like(marker):  # the runner of the host running it stopped it
        assert time.monotonic() < deadline, "the aborted job's statement still runs"
        time.sleep(0.2)
    assert phase(s, url) == phase(s, on(other, url)) == "ABORTED"
    s.delete(url)


def test_each_job_runs_once_on_some_host(hosts: dict[str, LiveServer]) -> None:
    a, b = hosts["a"], hosts["b"]
    admin = session(ADMIN)  # no quotas
    urls = {}
    for i in range(24):
        server = a if i % 2 else b
        query = f"SELECT TOP 1 'job{i}' AS marker, table_name FROM TAP_SCHEMA.tables"
        urls[i] = create(server, admin, query, RESPONSEFORMAT="csv", PHASE="RUN")
    ids = {url.rsplit("/", 1)[1] for url in urls.values()}
    for i, url in urls.items():
        assert wait_for(admin, on(b if i % 2 else a, url), {"COMPLETED", "ERROR"}) == "COMPLETED"
        rows = admin.get(f"{url}/results/result").text.strip().splitlines()
        assert rows[1].split(",")[0] == f"job{i}"  # its own result
    starts = [(job_id, node) for job_id, node in started_jobs(hosts) if job_id in ids]
    assert sorted(job_id for job_id, _ in starts) == sorted(ids)  # each once, none twice
    nodes = {node for _, node in starts}
    assert nodes == {"host-a", "host-b"}  # both runners took work
    for job_id, node in starts:
        assert stored(hosts, f"/{job_id}").node == node
    for url in urls.values():
        admin.delete(url)


@pytest.mark.parametrize("name", ["a", "b"])
def test_pyvo_async_against_each_host(hosts: dict[str, LiveServer], name: str) -> None:
    here = hosts[name]
    there = hosts["b" if name == "a" else "a"]
    service = pyvo.dal.TAPService(f"{here.url}/tap", session=session(ALICE))
    assert len(service.run_async(QUICK, timeout=120)) == 3
    job = service.submit_job(QUICK, runid=f"pyvo-{name}")
    job.run()
    elsewhere = pyvo.dal.AsyncTAPJob(on(there, job.url), session=session(ALICE))
    elsewhere.wait(timeout=120)
    assert elsewhere.phase == "COMPLETED" and elsewhere.owner == ALICE[0]
    assert elsewhere.job.runid == f"pyvo-{name}"
    assert len(elsewhere.fetch_result().to_table()) == 3
    elsewhere.delete()
    assert session(ALICE).get(job.url).status_code == 404


def test_job_tables_are_not_reachable_by_adql(hosts: dict[str, LiveServer]) -> None:
    for account in (None, ADMIN):
        s = session(account)
        for table in ("skvo_uws_job", "skvo.skvo_uws_job", "skvo_uws_owner"):
            r = s.get(f"{hosts['b'].url}/tap/sync", params={
                "LANG": "ADQL", "QUERY": f"SELECT * FROM {table}"})
            assert r.status_code == 400 and "uws" in r.text.lower(), r.text
        r = s.get(f"{hosts['a'].url}/tap/sync", params={
            "LANG": "ADQL", "RESPONSEFORMAT": "csv",
            "QUERY": "SELECT table_name FROM TAP_SCHEMA.tables"})
        assert r.status_code == 200 and "uws" not in r.text.lower()
    assert "uws" not in requests.get(f"{hosts['a'].url}/tap/tables").text.lower()
    # B's query account is refused the job table by the database itself
    engine = make_engine(hosts["b"].dep.settings().query_url)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="denied"), engine.connect() as conn:
            conn.exec_driver_sql("SELECT COUNT(*) FROM skvo_uws_job")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM skvo_user").scalar() == 3
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ["a", "b"])
def test_taplint_uws_on_each_host(hosts: dict[str, LiveServer], name: str) -> None:
    result = subprocess.run(
        ["stilts", "taplint", f"tapurl={hosts[name].url}/tap", "stages=UWS", "report=EWF"],
        capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line[:2] in ("E-", "F-", "W-")]
    assert not lines, result.stdout
    assert "Section UWS" in result.stdout


def test_host_killed_mid_job_leaves_error_after_lease(hosts: dict[str, LiveServer]) -> None:
    """SIGKILL of the host running a job: the other host keeps showing it EXECUTING
    until the lease passes, then ERROR (never QUEUED again, never COMPLETED)."""
    s = session()
    marker = f"killed_{os.getpid()}_{time.monotonic_ns()}"
    url = create(hosts["a"], s, SLOW.replace("AS n ", f"AS {marker} "),
                 EXECUTIONDURATION="60", PHASE="RUN")
    assert wait_for(s, url, {"EXECUTING", "COMPLETED", "ERROR"}) == "EXECUTING"
    runs_on = stored(hosts, url).node
    victim = hosts["a"] if runs_on == "host-a" else hosts["b"]
    survivor = hosts["b"] if victim is hosts["a"] else hosts["a"]
    assert victim.proc is not None
    os.killpg(victim.proc.pid, signal.SIGKILL)  # web workers, runner, job process
    victim.proc.wait(timeout=30)
    victim.proc = None
    killed = time.monotonic()
    seen = on(survivor, url)
    assert phase(s, seen) == "EXECUTING"  # the lease still runs
    while (current := phase(s, seen)) == "EXECUTING":
        assert time.monotonic() - killed < LEASE + 10, "the lease never expired"
        time.sleep(0.2)
    assert current == "ERROR"
    assert time.monotonic() - killed >= LEASE / 3  # not before the lease could pass
    doc = etree.fromstring(s.get(seen).content)
    summary = doc.find("uws:errorSummary", NS)
    assert summary.get("type") == "transient"
    assert "heartbeat" in summary.findtext("uws:message", namespaces=NS)
    assert s.get(f"{seen}/results/result").status_code == 404
    # the killed host comes back: the job stays in ERROR, new jobs run there again
    victim.start()
    assert phase(s, on(victim, url)) == "ERROR"
    again = create(victim, s, PHASE="RUN")
    assert wait_for(s, again, {"COMPLETED", "ERROR"}) == "COMPLETED"
    s.delete(url)
    s.delete(again)
    _kill_statements(marker)  # the dead host's statement would run on to its time limit


def _kill_statements(marker: str) -> None:
    conn = pymysql_database("test")
    try:
        with conn.cursor() as cur:
            for thread in _statements_like(marker):
                cur.execute(f"KILL QUERY {int(thread)}")
    finally:
        conn.close()
