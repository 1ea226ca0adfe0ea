"""The UWS job store (no server): persistence, atomic updates, claims, recovery, sweeping.

Every test runs on SQLite and on MariaDB: the job state is a row of the
metadata database, the uploads and results files in the jobs folder.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import mariadb_database

from voservice import jobs
from voservice.jobs import Job, JobStateError, JobStore
from voservice.stores.metadata import make_engine


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A metadata database without any table yet (the store makes its own)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('uws-store')}/meta.sqlite"
    return mariadb_database("uws_store")


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[JobStore]:
    engine = make_engine(db_url)
    yield JobStore(engine, tmp_path / "jobs")
    engine.dispose()


def make(store: JobStore, **kwargs: object) -> Job:
    return store.create(
        kwargs.pop("owner", None),  # type: ignore[arg-type]
        [("REQUEST", "doQuery"), ("QUERY", "SELECT 1"), ("RUNID", "r1"),
         ("UPLOAD", "t1,param:t1")],
        {"t1": io.BytesIO(b"<VOTABLE/>")},
        execution_duration=60,
        destruction=jobs.now() + 3600,
        **kwargs,  # type: ignore[arg-type]
    )


def test_create_read_update_delete(store: JobStore, db_url: str) -> None:
    job = make(store, owner="alice")
    other = make_engine(db_url)  # another process would see the same
    again = JobStore(other, store.root).get(job.job_id)
    other.dispose()
    assert again == job
    assert again.phase == "PENDING" and again.run_id == "r1" and again.owner == "alice"
    assert store.upload_path(again, "t1").read_bytes() == b"<VOTABLE/>"
    assert job.job_id not in store.queued()

    def run(j: Job) -> str:
        j.phase = "QUEUED"
        return "ok"

    changed, value = store.update(job.job_id, run)
    assert value == "ok" and store.get(job.job_id).phase == "QUEUED"
    assert job.job_id in store.queued()

    def refuse(j: Job) -> None:
        j.phase = "COMPLETED"
        raise JobStateError("no")

    with pytest.raises(JobStateError):
        store.update(job.job_id, refuse)
    assert store.get(job.job_id).phase == "QUEUED"  # unchanged
    assert store.delete(job.job_id)
    assert store.get(job.job_id) is None
    assert not store.folder(job.job_id).exists()
    assert store.update(job.job_id, run) is None
    assert not store.delete(job.job_id)
    assert store.get("../etc") is None and store.update("../x", run) is None


def test_claim_lease_and_recover(store: JobStore) -> None:
    queued = make(store, run=True)
    mine = make(store, run=True)
    theirs = make(store, run=True)
    order = [j for j in store.queued() if j in {queued.job_id, mine.job_id, theirs.job_id}]
    assert order == [queued.job_id, mine.job_id, theirs.job_id]  # oldest first

    def pick(wanted: str):  # noqa: ANN202
        return lambda candidates: wanted if wanted in {c[0] for c in candidates} else None

    claimed = store.claim_next(pick(mine.job_id), node="n1", runner="n1/1/a", lease=30)
    assert claimed.phase == "EXECUTING" and claimed.node == "n1" and claimed.start_time
    # a job is claimed once: a second runner gets nothing
    assert store.claim_next(pick(mine.job_id), node="n2", runner="n2/1/b", lease=30) is None
    assert store.claim_next(pick(theirs.job_id), node="n2", runner="n2/1/b", lease=1)
    assert store.heartbeat("n1/1/a", 30) == 1
    # n1 restarts: its executing job fails at once, n2's keeps its lease, the queue stays
    assert jobs.recover(store, "n1") == 1
    failed = store.get(mine.job_id)
    assert failed.phase == "ERROR" and "restarted" in failed.error_message
    assert failed.error_type == "transient" and failed.end_time
    assert store.get(theirs.job_id).phase == "EXECUTING"
    assert queued.job_id in store.queued()
    # n2 died: after its lease any runner fails the job
    assert store.expire_leases(1, moment=jobs.now() + 0.5) == 0
    assert store.expire_leases(1, moment=jobs.now() + 2) == 1
    dead = store.get(theirs.job_id)
    assert dead.phase == "ERROR" and "heartbeat" in dead.error_message


def test_sweep(store: JobStore) -> None:
    old, young = make(store), make(store)

    def expire(j: Job) -> None:
        j.destruction = jobs.now() - 1

    store.update(old.job_id, expire)
    assert jobs.sweep(store) == [old.job_id]
    assert store.get(old.job_id) is None and store.get(young.job_id) is not None
    assert not store.folder(old.job_id).exists()
    assert list(store.trash_dir.iterdir()) == []


def _bump(url: str, root: str, job_id: str, times: int) -> None:
    engine = make_engine(url)
    store = JobStore(engine, root)

    def add(j: Job) -> None:
        j.parameters.append(("N", str(len(j.parameters))))

    for _ in range(times):
        store.update(job_id, add)
    engine.dispose()


def test_updates_from_several_processes_do_not_get_lost(store: JobStore, db_url: str) -> None:
    job = store.create(None, [], {}, execution_duration=0, destruction=None)
    store.engine.dispose()  # no pooled connection crosses the fork
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(db_url, str(store.root), job.job_id, 50))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(store.get(job.job_id).parameters) == 200


def _claim_all(url: str, root: str, node: str, out: multiprocessing.Queue) -> None:
    engine = make_engine(url)
    store = JobStore(engine, root)
    got = []
    misses = 0
    while misses < 20:
        job = store.claim_next(lambda c: c[0][0] if c else None, node=node,
                               runner=f"{node}/x", lease=60)
        if job is None:
            misses += 1
            continue
        misses = 0
        got.append(job.job_id)
    out.put(got)
    engine.dispose()


def test_concurrent_runners_claim_each_job_once(store: JobStore, db_url: str) -> None:
    made = {store.create(None, [], {}, execution_duration=0, destruction=None,
                         run=True).job_id for _ in range(60)}
    store.engine.dispose()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(db_url, str(store.root), f"n{i}", out))
             for i in range(3)]
    for p in procs:
        p.start()
    claims = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    every = [job_id for got in claims for job_id in got if job_id in made]
    assert sorted(every) == sorted(made)  # each job claimed, none twice
    assert all(store.get(j).phase == "EXECUTING" for j in made)


def test_mariadb_claim_skips_a_job_another_runner_holds(tmp_path: Path) -> None:
    """SELECT ... FOR UPDATE SKIP LOCKED: a runner does not wait for a row another
    runner is claiming; it takes the next job."""
    from voservice.model import uws_job

    url = mariadb_database("uws_skip")
    engine, locker = make_engine(url), make_engine(url)
    store = JobStore(engine, tmp_path / "jobs")
    assert store.skip_locked
    first, second = (store.create(None, [], {}, execution_duration=0, destruction=None,
                                  run=True) for _ in range(2))
    oldest = lambda candidates: candidates[0][0] if candidates else None  # noqa: E731
    with locker.connect() as conn, conn.begin():
        conn.execute(sa.select(uws_job.c.job_id).where(uws_job.c.job_id == first.job_id)
                     .with_for_update())
        started = time.monotonic()
        got = store.claim_next(oldest, node="n1", runner="n1/1", lease=30)
        assert time.monotonic() - started < 5  # no lock wait (innodb_lock_wait_timeout 50 s)
        assert got.job_id == second.job_id
    assert store.claim_next(oldest, node="n1", runner="n1/1", lease=30).job_id == first.job_id
    assert store.claim_next(oldest, node="n1", runner="n1/1", lease=30) is None
    engine.dispose()
    locker.dispose()


def test_old_folder_jobs_are_imported(store: JobStore) -> None:
    legacy = Job(job_id="0123456789abcdef0123456789abcdef", owner=None,
                 creation_time=jobs.now(), execution_duration=60, destruction=None,
                 phase="EXECUTING", parameters=[("QUERY", "SELECT 1")])
    folder = store.root / legacy.job_id
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps({  # what the folder store wrote
        "job_id": legacy.job_id, "owner": None, "creation_time": legacy.creation_time,
        "execution_duration": 60, "destruction": None, "phase": "EXECUTING",
        "parameters": [["QUERY", "SELECT 1"]]}))
    (folder / "result").write_bytes(b"x")
    jobs.recover(store, "somewhere")
    imported = store.get(legacy.job_id)
    assert imported.phase == "ERROR" and imported.parameters == [("QUERY", "SELECT 1")]
    assert not (folder / "job.json").exists() and (folder / "result").exists()


def test_job_tables_are_internal(db_url: str, store: JobStore) -> None:
    """The job tables are never published: not in TAP_SCHEMA, not in the ADQL schema."""
    from voservice import catalog, tables
    from voservice.access import ANONYMOUS, Principal

    names = {desc.sql_name for desc in tables.all_tables()}
    assert "skvo_uws_job" not in names and "skvo_uws_owner" not in names
    rows = tables.tap_schema_rows()["TAP_SCHEMA.tables"]
    assert not [r for r in rows if "uws" in r["table_name"].lower()]
    for who in (ANONYMOUS, Principal(name="root", admin=True)):
        schema = catalog.adql_schema(who, "sqlite", "http://x", "a")
        assert not [t for t in schema if "uws" in t.name.lower()]
    assert sa.inspect(store.engine).has_table("skvo_uws_job")


def test_times() -> None:
    stamp = jobs.parse_iso("2024-05-01T12:00:00.250Z")
    assert jobs.iso(stamp) == "2024-05-01T12:00:00.250Z"
    assert jobs.parse_iso("2024-05-01T12:00:00") == jobs.parse_iso("2024-05-01T12:00:00+00:00")
    assert jobs.iso(None) == ""
    with pytest.raises(ValueError):
        jobs.parse_iso("tomorrow")
