"""The UWS job store on disk (no server): persistence, locking, recovery, sweeping."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import pytest

from voservice import jobs
from voservice.jobs import Job, JobStateError, JobStore


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


def test_create_read_update_delete(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job = make(store, owner="alice")
    again = JobStore(tmp_path).get(job.job_id)  # another process would see the same
    assert again == job
    assert again.phase == "PENDING" and again.run_id == "r1" and again.owner == "alice"
    assert store.upload_path(again, "t1").read_bytes() == b"<VOTABLE/>"
    assert store.queued() == []

    def run(j: Job) -> str:
        j.phase = "QUEUED"
        return "ok"

    changed, value = store.update(job.job_id, run)
    assert value == "ok" and store.get(job.job_id).phase == "QUEUED"

    def refuse(j: Job) -> None:
        j.phase = "COMPLETED"
        raise JobStateError("no")

    with pytest.raises(JobStateError):
        store.update(job.job_id, refuse)
    assert store.get(job.job_id).phase == "QUEUED"  # unchanged
    assert store.delete(job.job_id)
    assert store.get(job.job_id) is None
    assert store.update(job.job_id, run) is None
    assert not store.delete(job.job_id)
    assert store.get("../etc") is None and store.update("../x", run) is None


def test_queue_and_recover(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    queued = make(store, run=True)
    executing = make(store, run=True)
    assert store.queued() == [queued.job_id, executing.job_id]
    store.unqueue(executing.job_id)

    def start(j: Job) -> None:
        j.phase = "EXECUTING"

    store.update(executing.job_id, start)
    for marker in store.queue_dir.iterdir():  # markers lost in a crash
        marker.unlink()
    assert jobs.recover(store) == 1
    failed = store.get(executing.job_id)
    assert failed.phase == "ERROR" and "restarted" in failed.error_message
    assert store.queued() == [queued.job_id]  # requeued, not failed


def test_sweep(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    old, young = make(store), make(store)

    def expire(j: Job) -> None:
        j.destruction = jobs.now() - 1

    store.update(old.job_id, expire)
    assert jobs.sweep(store) == [old.job_id]
    assert store.get(old.job_id) is None and store.get(young.job_id) is not None
    assert list(store.trash_dir.iterdir()) == []


def _bump(root: str, job_id: str, times: int) -> None:
    store = JobStore(root)

    def add(j: Job) -> None:
        j.parameters.append(("N", str(len(j.parameters))))

    for _ in range(times):
        store.update(job_id, add)


def test_updates_from_several_processes_do_not_get_lost(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job = store.create(None, [], {}, execution_duration=0, destruction=None)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path), job.job_id, 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert len(store.get(job.job_id).parameters) == 200


def test_times() -> None:
    stamp = jobs.parse_iso("2024-05-01T12:00:00.250Z")
    assert jobs.iso(stamp) == "2024-05-01T12:00:00.250Z"
    assert jobs.parse_iso("2024-05-01T12:00:00") == jobs.parse_iso("2024-05-01T12:00:00+00:00")
    assert jobs.iso(None) == ""
    with pytest.raises(ValueError):
        jobs.parse_iso("tomorrow")
