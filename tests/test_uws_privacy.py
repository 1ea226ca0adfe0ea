"""Privacy, quotas and fairness of async TAP jobs (UWS), against a live server.

A dedicated deployment (SQLite, two job workers, small quotas) so that the
quotas and the queue are ours alone.  Anonymous clients are told apart by the
socket's source address (127.0.0.x on loopback), as the service does.
"""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import ADMIN, ALICE, BOB, Deployment, LiveServer, deploy
from lxml import etree
from requests.adapters import HTTPAdapter

from voservice import jobs
from voservice.jobs import JobStore, Quota, QuotaExceeded
from voservice.stores.metadata import make_engine

UWS = "http://www.ivoa.net/xml/UWS/v1.0"
NS = {"uws": UWS}
QUICK = "SELECT TOP 3 table_name FROM TAP_SCHEMA.tables ORDER BY table_name"
#: runs for many minutes on either database (five-fold cross join of the column list)
SLOW = (
    "SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
    "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d, TAP_SCHEMA.columns AS e"
)
QUOTA_EXISTING = 6
QUOTA_EXISTING_ANONYMOUS = 4
QUOTA_ACTIVE = 2
VOTABLE = (
    b'<?xml version="1.0"?><VOTABLE version="1.4" '
    b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
    b'<FIELD name="id" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR>'
    b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
)


class _SourceAddress(HTTPAdapter):
    """Connect from a given local address (127.0.0.x works on Linux loopback)."""

    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]


def client(source: str = "127.0.0.1", account: tuple[str, str] | None = None
           ) -> requests.Session:
    """An HTTP session from ``source``, logged in as ``account`` (anonymous for None)."""
    s = requests.Session()
    s.mount("http://", _SourceAddress(source))
    if account is not None:
        s.auth = account
    return s


@pytest.fixture(scope="module")
def private_deployment(tmp_path_factory: pytest.TempPathFactory, demo_tree: Path
                       ) -> Deployment:
    """SQLite, two job workers and small job quotas."""
    root = tmp_path_factory.mktemp("uws-privacy")
    return deploy(
        root, demo_tree, "sqlite:///skvo.sqlite",
        server={"job_workers": "2"},
        vo={
            "job_quota_existing": str(QUOTA_EXISTING),
            "job_quota_existing_anonymous": str(QUOTA_EXISTING_ANONYMOUS),
            "job_quota_active": str(QUOTA_ACTIVE),
        },
    )


@pytest.fixture(scope="module")
def live(private_deployment: Deployment) -> Iterator[LiveServer]:
    """``skvo serve`` on the dedicated deployment."""
    server = LiveServer(private_deployment)
    server.start()
    yield server
    server.stop()


def create(live: LiveServer, s: requests.Session, query: str = QUICK,
           files: dict | None = None, **params: str) -> requests.Response:
    """POST a new job (no redirect followed)."""
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    return s.post(f"{live.url}/tap/async", data=data, files=files, allow_redirects=False)


def new_job(live: LiveServer, s: requests.Session, query: str = QUICK,
            files: dict | None = None, **params: str) -> str:
    """Create a job; returns its URL."""
    r = create(live, s, query, files, **params)
    assert r.status_code == 303, r.text
    return r.headers["Location"]


def long_job(live: LiveServer, s: requests.Session) -> str:
    """Create and run a job that executes for minutes."""
    url = new_job(live, s, SLOW)
    assert s.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "600"}).ok
    assert s.post(f"{url}/phase", data={"PHASE": "RUN"}).ok
    return url


def phase(s: requests.Session, url: str) -> str:
    r = s.get(f"{url}/phase")
    assert r.status_code == 200, r.text
    return r.text.strip()


def wait_for(s: requests.Session, url: str, wanted: set[str], timeout: float = 90) -> str:
    """Poll until the job is in one of ``wanted``."""
    deadline = time.monotonic() + timeout
    current = phase(s, url)
    while current not in wanted:
        assert time.monotonic() < deadline, f"{url} still {current}, wanted {wanted}"
        time.sleep(0.2)
        current = phase(s, url)
    return current


def listed(live: LiveServer, s: requests.Session) -> set[str]:
    """Ids in the job list the session gets."""
    r = s.get(f"{live.url}/tap/async")
    assert r.status_code == 200, r.text
    return {ref.get("id") for ref in etree.fromstring(r.content)}


def job_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def cleanup(s: requests.Session, *urls: str) -> None:
    """Abort and delete jobs (quotas and workers free again)."""
    for url in urls:
        s.delete(url)


# --------------------------------------------------------------------------
# Privacy


def test_anonymous_jobs_are_listed_to_nobody(live: LiveServer) -> None:
    a, b = client("127.0.0.2"), client("127.0.0.3")
    admin = client(account=ADMIN)
    url = new_job(live, a, RUNID="secret-run")
    jid = job_id(url)
    assert len(jid) >= 22  # at least 128 random bits: the id is the key
    assert jid not in listed(live, a) and jid not in listed(live, b)
    assert jid not in listed(live, client(account=BOB))
    assert jid in listed(live, admin)
    # the URL is the capability: whoever holds it may use the job anonymously
    assert a.get(url).status_code == 200
    assert b.get(f"{url}/parameters").status_code == 200
    # an account does not get anonymous jobs
    assert client(account=BOB).get(url).status_code == 404
    assert client(account=BOB).delete(url).status_code == 404
    r = a.post(f"{url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False)
    assert r.status_code == 303 and phase(a, url) == "ABORTED"
    assert a.delete(url, allow_redirects=False).status_code == 303
    assert a.get(url).status_code == 404


def test_accounts_see_only_their_own_jobs(live: LiveServer) -> None:
    alice, bob, anon = client(account=ALICE), client(account=BOB), client("127.0.0.3")
    url = new_job(live, alice, RUNID="alice-only")
    jid = job_id(url)
    assert jid in listed(live, alice)
    assert jid not in listed(live, bob) and jid not in listed(live, anon)
    for suffix in ("", "/phase", "/parameters", "/parameters/QUERY", "/owner"):
        assert bob.get(url + suffix).status_code == 404
    assert bob.post(f"{url}/phase", data={"PHASE": "RUN"}).status_code == 404
    assert bob.post(f"{url}/parameters", data={"QUERY": "x"}).status_code == 404
    assert bob.delete(url).status_code == 404
    r = anon.get(url)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert phase(alice, url) == "PENDING"  # nobody else changed it
    assert alice.get(f"{url}/owner").text == ALICE[0]
    cleanup(alice, url)


def test_new_account_with_a_removed_name_inherits_nothing(
        live: LiveServer, private_deployment: Deployment) -> None:
    dep = private_deployment
    dep.skvo("user", "add", "carol", "--password", "first")
    old = client(account=("carol", "first"))
    pending = new_job(live, old, RUNID="old-carol")
    done = new_job(live, old, PHASE="RUN")
    assert wait_for(old, done, {"COMPLETED", "ERROR"}) == "COMPLETED"
    assert {job_id(pending), job_id(done)} <= listed(live, old)

    dep.skvo("user", "remove", "carol")
    dep.skvo("user", "add", "carol", "--password", "second")
    new = client(account=("carol", "second"))
    assert not {job_id(pending), job_id(done)} & listed(live, new)
    for url in (pending, done):
        assert new.get(url).status_code == 404
        assert new.get(f"{url}/results/result").status_code == 404
        assert new.delete(url).status_code == 404
    # the old account's job runs as nobody: it fails, it does not run as anyone
    admin = client(account=ADMIN)
    assert admin.post(f"{pending}/phase", data={"PHASE": "RUN"}).ok
    assert wait_for(admin, pending, {"COMPLETED", "ERROR"}) == "ERROR"
    message = etree.fromstring(admin.get(pending).content).findtext(
        "uws:errorSummary/uws:message", namespaces=NS)
    assert "no longer exists" in message
    mine = new_job(live, new)
    assert listed(live, new) == {job_id(mine)}
    cleanup(admin, pending, done, mine)


def test_unnamed_file_parts_are_not_stored(live: LiveServer,
                                           private_deployment: Deployment) -> None:
    s = client("127.0.0.7")
    url = new_job(
        live, s, "SELECT id FROM TAP_UPLOAD.mine",
        files={
            "mine": ("mine.vot", VOTABLE, "application/x-votable+xml"),
            "junk": ("junk.bin", b"junk-payload-1", "application/octet-stream"),
        },
        UPLOAD="mine,param:mine",
    )
    assert s.post(f"{url}/parameters", files={
        "more": ("more.bin", b"junk-payload-2", "application/octet-stream")}).ok
    params = {p.get("id") for p in etree.fromstring(s.get(f"{url}/parameters").content)}
    assert "mine" in params and not {"junk", "more"} & params
    assert s.get(f"{url}/parameters/mine").content == VOTABLE
    assert s.get(f"{url}/parameters/junk").status_code == 404
    assert s.get(f"{url}/parameters/more").status_code == 404
    folder = private_deployment.root / "jobs" / job_id(url)
    contents = b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())
    assert VOTABLE in contents and b"junk-payload" not in contents
    # a part named later by a new UPLOAD value is taken; the old one goes
    assert s.post(f"{url}/parameters", data={"UPLOAD": "other,param:other"}, files={
        "other": ("o.vot", VOTABLE, "application/x-votable+xml")}).ok
    params = {p.get("id") for p in etree.fromstring(s.get(f"{url}/parameters").content)}
    assert "other" in params and "mine" not in params
    assert s.get(f"{url}/parameters/mine").status_code == 404
    cleanup(s, url)


def test_job_files_are_private(live: LiveServer, private_deployment: Deployment) -> None:
    s = client("127.0.0.8")
    url = new_job(live, s, "SELECT id FROM TAP_UPLOAD.mine", PHASE="RUN",
                  files={"mine": ("mine.vot", VOTABLE, "application/x-votable+xml")},
                  UPLOAD="mine,param:mine")
    assert wait_for(s, url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    jobs_root = private_deployment.root / "jobs"
    folder = jobs_root / job_id(url)
    assert stat.S_IMODE(jobs_root.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = {p.name for p in folder.iterdir()}
    assert "result" in names and [n for n in names if n.startswith("upload-")]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # the job's state is a row of the metadata database, not a file
    engine = make_engine(private_deployment.settings().metadata_url)
    stored = JobStore(engine, jobs_root).get(job_id(url))
    engine.dispose()
    assert stored is not None and stored.phase == "COMPLETED"
    cleanup(s, url)


def _store(tmp_path: Path) -> JobStore:
    return JobStore(make_engine(f"sqlite:///{tmp_path}/meta.sqlite"), tmp_path / "jobs")


def test_store_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        store = _store(tmp_path)
        job = store.create(None, [("UPLOAD", "t,param:t")], {"t": io.BytesIO(b"x")},
                           execution_duration=1, destruction=None, run=True)
    finally:
        os.umask(old)
    folder = store.folder(job.job_id)
    for path in (store.root, store.trash_dir, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert list(folder.iterdir())
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # a store written by an older version is made private on recovery
    upload = next(folder.iterdir())
    os.chmod(folder, 0o755)
    os.chmod(upload, 0o644)
    jobs.recover(store, "here")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(upload.stat().st_mode) == 0o600


# --------------------------------------------------------------------------
# Quotas


def test_existing_quota_per_anonymous_address(live: LiveServer) -> None:
    a, b = client("127.0.0.4"), client("127.0.0.5")
    urls = [new_job(live, a) for _ in range(QUOTA_EXISTING_ANONYMOUS)]
    r = create(live, a)
    assert r.status_code == 403
    assert "quota" in r.text and str(QUOTA_EXISTING_ANONYMOUS) in r.text
    other = new_job(live, b)  # another address has its own quota
    # an anonymous client cannot list its jobs: its oldest finished jobs make room
    assert a.post(f"{urls[2]}/phase", data={"PHASE": "ABORT"}).ok
    assert a.post(f"{urls[1]}/phase", data={"PHASE": "ABORT"}).ok
    again = new_job(live, a)
    assert a.get(urls[1]).status_code == 404  # the older finished job went
    assert a.get(urls[2]).status_code == 200
    assert a.get(urls[0]).status_code == 200  # pending jobs are kept
    last = new_job(live, a)  # urls[2] makes room
    assert a.get(urls[2]).status_code == 404
    assert create(live, a).status_code == 403  # nothing finished is left
    cleanup(a, urls[0], *urls[3:], again, last, other)


def test_existing_quota_per_account(live: LiveServer) -> None:
    bob, anon = client(account=BOB), client("127.0.0.9")
    urls = [new_job(live, bob) for _ in range(QUOTA_EXISTING)]
    r = create(live, bob)
    assert r.status_code == 403 and "quota" in r.text and "bob" in r.text
    other = new_job(live, client(account=ALICE))
    cleanup(client(account=ALICE), other)
    mine = new_job(live, anon)
    cleanup(anon, mine)
    admin = client(account=ADMIN)  # administrators have no quota
    extra = [new_job(live, admin) for _ in range(QUOTA_EXISTING + 1)]
    cleanup(admin, *extra)
    cleanup(bob, *urls)


@pytest.mark.parametrize("who", ["anonymous", "account"])
def test_active_quota(live: LiveServer, who: str) -> None:
    s = client("127.0.0.6") if who == "anonymous" else client(account=BOB)
    running = [long_job(live, s) for _ in range(QUOTA_ACTIVE)]
    r = create(live, s, PHASE="RUN")
    assert r.status_code == 429 and "queued or executing" in r.text
    assert int(r.headers["Retry-After"]) > 0
    pending = new_job(live, s)  # PENDING jobs do not count as active
    r = s.post(f"{pending}/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert phase(s, pending) == "PENDING"
    assert s.post(f"{running[0]}/phase", data={"PHASE": "ABORT"}).ok
    r = s.post(f"{pending}/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 303
    cleanup(s, *running, pending)


# --------------------------------------------------------------------------
# A fair queue


def test_anonymous_jobs_leave_a_worker_for_accounts(live: LiveServer) -> None:
    a, b, alice = client("127.0.0.10"), client("127.0.0.11"), client(account=ALICE)
    first, second = long_job(live, a), long_job(live, a)
    third = long_job(live, b)
    wait_for(a, first, {"EXECUTING"})
    quick = new_job(live, alice, PHASE="RUN")
    assert wait_for(alice, quick, {"COMPLETED", "ERROR"}) == "COMPLETED"
    # one anonymous job holds one of the two workers; the others wait for it
    assert phase(a, first) == "EXECUTING"
    assert phase(a, second) == "QUEUED" and phase(b, third) == "QUEUED"
    cleanup(a, first, second)
    cleanup(b, third)


def test_one_account_does_not_hold_every_worker(live: LiveServer) -> None:
    bob, alice = client(account=BOB), client(account=ALICE)
    first, second = long_job(live, bob), long_job(live, bob)
    wait_for(bob, first, {"EXECUTING"})
    quick = new_job(live, alice, PHASE="RUN")
    assert wait_for(alice, quick, {"COMPLETED", "ERROR"}) == "COMPLETED"
    assert phase(bob, first) == "EXECUTING" and phase(bob, second) == "QUEUED"
    cleanup(bob, first, second)
    cleanup(alice, quick)


def test_store_quota_counts_an_owners_jobs(tmp_path: Path) -> None:
    store = _store(tmp_path)
    quota = Quota(existing=2, active=1)

    def make(client: str, run: bool = False) -> jobs.Job:
        return store.create(None, [], {}, execution_duration=1, destruction=None,
                            client=client, run=run, quota=quota)

    first, second = make("10.0.0.1", run=True), make("10.0.0.1")
    with pytest.raises(QuotaExceeded):
        make("10.0.0.1")
    make("10.0.0.2")  # another owner
    assert store.usage(first.owner_key) == (2, 1)
    with pytest.raises(QuotaExceeded):  # a second active job
        store.start(second.job_id, lambda j: setattr(j, "phase", "QUEUED"), quota)
    assert store.get(second.job_id).phase == "PENDING"
    store.delete(first.job_id)
    assert store.usage(first.owner_key) == (1, 0)
    store.start(second.job_id, lambda j: setattr(j, "phase", "QUEUED"), quota)
    assert store.usage(second.owner_key) == (1, 1)
    # another host (another store on the same database) counts the same jobs
    other = _store(tmp_path)
    assert other.usage(second.owner_key) == (1, 1)
    assert other.usage("addr:10.0.0.2") == (1, 0)
    with pytest.raises(QuotaExceeded):
        other.create(None, [], {}, execution_duration=1, destruction=None,
                     client="10.0.0.1", run=True, quota=quota)


def test_pick_next_round_robin() -> None:
    queue = [("a1", "user:1", False), ("a2", "user:1", False), ("b1", "user:2", False)]
    # owner 1 was served last: owner 2's job goes first although it is younger
    assert jobs.pick_next(queue, [], 3, {"user:1": 5.0, "user:2": 1.0}) == "b1"
    assert jobs.pick_next(queue, [], 3, {}) == "a1"
    # an owner never holds every worker
    assert jobs.pick_next(queue[:2], [("user:1", False)], 2, {}) is None
    assert jobs.pick_next(queue, [("user:1", False)], 2, {}) == "b1"
    # anonymous jobs together leave one worker for accounts
    anonymous = [("x1", "addr:127.0.0.2", True), ("y1", "addr:127.0.0.3", True)]
    two = [("addr:127.0.0.2", True), ("addr:127.0.0.4", True)]
    assert jobs.pick_next(anonymous, two, 3, {}) is None
    assert jobs.pick_next(anonymous, [("user:1", False)], 3, {}) == "x1"
    # the owner with fewer running jobs goes first
    assert jobs.pick_next(anonymous, [("addr:127.0.0.2", True)], 3, {}) == "y1"
    # a single worker serves whoever comes first
    assert jobs.pick_next(anonymous, [], 1, {}) == "x1"
    assert jobs.pick_next(queue, [("user:2", False)], 1, {}) is None


def test_quota_core_and_client_keys() -> None:
    quota = Quota(existing=2, active=1)
    jobs.check_quota(quota, 1, 0, new=True, run=True)
    with pytest.raises(QuotaExceeded) as existing:
        jobs.check_quota(quota, 2, 0, new=True, run=False)
    assert existing.value.retry_after is None
    with pytest.raises(QuotaExceeded) as active:
        jobs.check_quota(quota, 1, 1, new=True, run=True)
    assert active.value.retry_after
    jobs.check_quota(Quota(), 10**6, 10**6, new=True, run=True)  # 0 = no limit
    assert jobs.client_key("127.0.0.2") == "127.0.0.2"
    assert jobs.client_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert jobs.client_key("2001:db8:1:2:3:4:5:6") == jobs.client_key("2001:db8:1:2::9")
    assert jobs.client_key("2001:db8:1:2::9") != jobs.client_key("2001:db8:1:3::9")
