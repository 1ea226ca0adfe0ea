"""``[metadata] query_url`` on a real MariaDB read replica.

Two private ``mariadbd`` on loopback ports under a temporary folder: a primary
with a binary log and a replica (``--read-only``) replicating from it by GTID.
The uploader writes the primary (``url``); ``skvo serve`` queries the replica
with a SELECT-only account (``query_url``).  While the replica's SQL thread is
stopped, a night loaded into the primary is not yet in TAP, SCS or the light
curves; once the replica has caught up, it is.  The replica's general log
shows that serving never sends a write to the query URL.
"""

from __future__ import annotations

import getpass
import io
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
import pyvo
import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table
from conftest import ADMIN, ALICE, BOB, Deployment, LiveServer, deploy, free_port

from voservice.demo import write_demo_tree

MARIADBD = "/usr/sbin/mariadbd"
DATABASE = "skvo"
#: the night held back from the first load (its target, l Car, is in no other night)
NIGHT = Path("saao/photometry/dtables/201803/l_Car_20180313")
L_CAR = (146.311708, -62.507917)
CAROL = ("carol", "new-account")  # added while the replica lags
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|ALTER|TRUNCATE|RENAME|GRANT|"
                   r"CREATE\s+(?!TEMPORARY)|DROP\s+(?!TEMPORARY))", re.IGNORECASE)
#: ``SET STATEMENT max_statement_time=... FOR`` in front of a query
SET_STATEMENT = re.compile(r"^\s*SET\s+STATEMENT\s+.*?\s+FOR\s+", re.IGNORECASE | re.DOTALL)
#: the table a write goes to, and the temporary tables a connection made (a TAP upload's)
WRITTEN = re.compile(r"^\s*(?:INSERT|REPLACE)\s+(?:INTO\s+)?(\S+)", re.IGNORECASE)
TEMPORARY = re.compile(r"CREATE\s+TEMPORARY\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?",
                       re.IGNORECASE)


@dataclass
class Mariadbd:
    """One private MariaDB server on loopback."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        return str(self.root / "mariadb.sock")

    def start(self, *options: str) -> None:
        """Start ``mariadbd`` on a copy of the seeded datadir."""
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.root / 'data'}",
             f"--user={getpass.getuser()}", f"--socket={self.socket}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--pid-file={self.root / 'mariadbd.pid'}",
             f"--log-error={self.root / 'error.log'}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=2",
             "--max-connections=200", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_bin", *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self) -> None:
        """Wait until the server answers on its socket."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.error_log()
            try:
                self.admin().close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        raise AssertionError(f"mariadbd did not start: {self.error_log()}")

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def admin(self) -> pymysql.Connection:
        """The server's root, over its socket."""
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def sql(self, *statements: str) -> list[tuple]:
        """Run statements as root; the rows of the last."""
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; the datadir is deleted."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        shutil.rmtree(self.root / "data", ignore_errors=True)


@dataclass
class Replication:
    """The primary, the replica, the deployment and its live server."""

    primary: Mariadbd
    replica: Mariadbd
    dep: Deployment
    server: LiveServer
    night: Path  # an upload tree holding only NIGHT

    def catch_up(self) -> None:
        """Wait until the replica has applied everything the primary logged."""
        (pos,), = self.primary.sql("SELECT @@gtid_binlog_pos")
        (done,), = self.replica.sql(f"SELECT MASTER_GTID_WAIT('{pos}', 30)")
        assert done == 0, self.replica.sql("SHOW SLAVE STATUS")


def slave_status(replica: Mariadbd) -> dict[str, object]:
    """The replica's SHOW SLAVE STATUS row."""
    conn = replica.admin()
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            return cur.fetchone() or {}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def replication(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replication]:
    """Primary and replica on loopback, the sample archive loaded through the primary
    (all but NIGHT), ``skvo serve`` querying the replica."""
    base = tmp_path_factory.mktemp("replica")
    seed = base / "seed"
    installed = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={seed}",
         f"--user={getpass.getuser()}", "--auth-root-authentication-method=normal",
         "--skip-test-db"], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    primary = Mariadbd(base / "primary", free_port())
    replica = Mariadbd(base / "replica", free_port())
    servers = [primary, replica]
    server: LiveServer | None = None
    try:
        for db in servers:
            db.root.mkdir()
            shutil.copytree(seed, db.root / "data")
        shutil.rmtree(seed)
        primary.start("--server-id=1", f"--log-bin={primary.root / 'binlog'}",
                      "--binlog-format=ROW", "--sync-binlog=0")
        replica.start("--server-id=2", "--read-only", f"--relay-log={replica.root / 'relay'}",
                      "--general-log=1", f"--general-log-file={replica.root / 'general.log'}")
        for db in servers:
            db.wait()
        primary.sql(
            "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-secret'",
            "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
            f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            # the uploader's account: everything on the archive, nothing global (so
            # not READ ONLY ADMIN: the replica's read_only binds it too)
            "CREATE USER 'skvo'@'127.0.0.1' IDENTIFIED BY 'rw-secret'",
            f"GRANT ALL ON {DATABASE}.* TO 'skvo'@'127.0.0.1'",
            # the endpoints' account, as the README says
            "CREATE USER 'skvo_ro'@'127.0.0.1' IDENTIFIED BY 'ro-secret'",
            f"GRANT SELECT, CREATE TEMPORARY TABLES ON {DATABASE}.* TO 'skvo_ro'@'127.0.0.1'",
        )
        replica.sql(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, "
            "MASTER_USER='repl', MASTER_PASSWORD='repl-secret', MASTER_USE_GTID=slave_pos, "
            "MASTER_CONNECT_RETRY=1",
            "START SLAVE",
        )
        deadline = time.monotonic() + 30
        while (status := slave_status(replica)).get("Slave_IO_Running") != "Yes" \
                or status.get("Slave_SQL_Running") != "Yes":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)

        tree = base / "data"
        write_demo_tree(tree, points=2000)
        night = base / "night"
        (night / NIGHT).parent.mkdir(parents=True)
        shutil.move(tree / NIGHT, night / NIGHT)
        url = f"mysql+pymysql://skvo:rw-secret@127.0.0.1:{primary.port}/{DATABASE}?charset=utf8mb4"
        query_url = (f"mysql+pymysql://skvo_ro:ro-secret@127.0.0.1:{replica.port}/{DATABASE}"
                     "?charset=utf8mb4")
        dep = deploy(base / "deployment", tree, url, metadata={"query_url": query_url},
                     server={"threads": "4"})
        setup = Replication(primary, replica, dep, LiveServer(dep), night)
        setup.catch_up()
        server = setup.server
        server.start()
        yield setup
    finally:
        if server is not None:
            server.stop()
        for db in servers:
            db.stop()


def admin() -> requests.Session:
    """HTTP session of the service's admin account (sees every source)."""
    s = requests.Session()
    s.auth = ADMIN
    return s


def tap_count(url: str, where: str) -> int:
    """COUNT(*) of ivoa.obscore rows through the service's TAP (admin sees all)."""
    service = pyvo.dal.TAPService(f"{url}/tap", session=admin())
    return int(service.run_sync(f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE {where}")
               .to_table()["n"][0])


def cone_rows(url: str) -> int:
    """Rows of a cone search around l Car through the service (admin)."""
    r = admin().get(f"{url}/scs", params={"RA": L_CAR[0], "DEC": L_CAR[1], "SR": 0.01},
                    timeout=30)
    assert r.status_code == 200, r.text
    return r.text.count("<TR>")


def primary_series(setup: Replication) -> list[tuple[str, str]]:
    """(obs_id, bandpass_uid) of the l Car series as the primary has them (the
    service's own ObsCore SELECT, run on the writer URL)."""
    import sqlalchemy as sa

    from voservice.access import Principal
    from voservice.catalog import obscore_select
    from voservice.stores.metadata import make_engine

    settings = setup.dep.settings()
    rows = obscore_select(Principal(name=ADMIN[0], admin=True), setup.server.url,
                          settings.get("vo", "authority")).subquery()
    engine = make_engine(settings.metadata_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.select(rows.c.obs_id, rows.c.bandpass_uid).where(
                rows.c.target_name == "l_Car", rows.c.calib_level == 2)).all()
    finally:
        engine.dispose()
    return [(str(a), str(b)) for a, b in found]


def test_a_fresh_night_is_served_once_the_replica_has_applied_it(
        replication: Replication) -> None:
    url = replication.server.url
    night = "target_name = 'l_Car'"
    assert tap_count(url, night) == 0 and cone_rows(url) == 0
    before = tap_count(url, "1 = 1")

    replication.replica.sql("STOP SLAVE SQL_THREAD")  # a replica that lags behind
    try:
        result = replication.dep.skvo("ingest", str(replication.night), check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        series = primary_series(replication)
        assert len(series) == 3  # the primary has the night ...
        # ... the endpoints, reading the replica, do not show it yet
        assert tap_count(url, night) == 0 and tap_count(url, "1 = 1") == before
        assert cone_rows(url) == 0
        obs_id, band = series[0]
        lc = admin().get(f"{url}/lightcurve/{obs_id}/{band}", timeout=30)
        assert lc.status_code == 404, lc.text[:500]
        # accounts are read from the replica too: a new one waits for it
        replication.dep.skvo("user", "add", CAROL[0], "--password", CAROL[1])
        assert requests.get(f"{url}/tap/tables", auth=CAROL, timeout=30).status_code == 401
    finally:
        replication.replica.sql("START SLAVE SQL_THREAD")
    replication.catch_up()

    assert tap_count(url, f"{night} AND calib_level = 2") == len(series)
    assert cone_rows(url) >= 1
    assert requests.get(f"{url}/tap/tables", auth=CAROL, timeout=30).status_code == 200
    seen = len(service_statements(replication.replica, "skvo_ro"))
    lc = admin().get(f"{url}/lightcurve/{obs_id}/{band}", timeout=30)
    assert lc.status_code == 200, lc.text[:500]
    assert len(parse_single_table(io.BytesIO(lc.content)).array) > 10
    # the points too were read from the replica (the sql backend keeps them there)
    assert any("ts_chunk" in s for s in service_statements(replication.replica, "skvo_ro")[seen:])


def test_the_replica_refuses_writes(replication: Replication) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=replication.replica.port, user="skvo",
                           password="rw-secret", database=DATABASE, autocommit=True)
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute("DELETE FROM skvo_user")
    finally:
        conn.close()
    assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only
    # the general log shows refused writes too (what the next test looks for)
    assert any(WRITE.match(s) for s in service_statements(replication.replica, "skvo"))


def service_statements(replica: Mariadbd, account: str) -> list[str]:
    """Statements the replica's general log shows from connections of ``account``."""
    threads: set[str] = set()
    statements = []
    line_re = re.compile(r"^(?:\S+\s+\S+\s+)?\s*(\d+)\s+(Connect|Query|Execute)\s+(.*)$")
    for line in (replica.root / "general.log").read_text(errors="replace").splitlines():
        m = line_re.match(line)
        if not m:
            continue
        thread, kind, text = m.groups()
        if kind == "Connect" and text.startswith(f"{account}@"):
            threads.add(thread)
        elif thread in threads and kind != "Connect":
            statements.append(text)
    return statements


def form_login(url: str, who: tuple[str, str]) -> requests.Session:
    """A session logged in through the portal's form (a browser's way)."""
    s = requests.Session()
    page = s.get(f"{url}/login", headers={"Accept": "text/html"}, timeout=30).text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(f"{url}/login", data={"name": who[0], "password": who[1], "_csrf_token": token},
               allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text[:500]
    return s


def test_serving_never_writes_to_the_query_url(replication: Replication) -> None:
    url = replication.server.url
    seen = len(service_statements(replication.replica, "skvo_ro"))
    # what writes while serving: failed-login counters, a web session, an async job;
    # a TAP upload makes a temporary table, which a read-only replica allows
    assert requests.get(f"{url}/tap/tables", auth=(BOB[0], "wrong"), timeout=30
                        ).status_code == 401
    browser = form_login(url, ALICE)
    r = browser.get(f"{url}/login", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200 and ALICE[0] in r.text
    service = pyvo.dal.TAPService(f"{url}/tap", session=admin())
    job = service.submit_job("SELECT TOP 5 obs_id FROM ivoa.obscore")
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.phase
    assert len(job.fetch_result().to_table()) == 5
    job.delete()
    mine = Table({"ra": [L_CAR[0], 0.0], "dec": [L_CAR[1], 0.0]})
    joined = service.run_sync(
        "SELECT u.ra, o.target_name FROM TAP_UPLOAD.mine AS u JOIN ivoa.obscore AS o "
        "ON 1 = CONTAINS(POINT('ICRS', o.s_ra, o.s_dec), CIRCLE('ICRS', u.ra, u.dec, 0.01))",
        uploads={"mine": mine}).to_table()
    assert set(joined["target_name"]) == {"l_Car"}

    statements = service_statements(replication.replica, "skvo_ro")[seen:]
    statements = [SET_STATEMENT.sub("", s) for s in statements]
    temporary = {t.lower() for t in TEMPORARY.findall("\n".join(statements))}
    writes = [s for s in statements if WRITE.match(s) and not (
        (m := WRITTEN.match(s)) and m.group(1).strip("`").lower() in temporary)]
    assert temporary and not writes, writes
    log = replication.server.log.read_text()
    assert "1290" not in log and "read-only" not in log, log[-3000:]
