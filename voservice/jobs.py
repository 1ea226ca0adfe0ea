"""Asynchronous TAP jobs: the job store on disk and the job runner.

The web workers (several gunicorn processes) and the job runner (one process
started by ``skvo serve``) share nothing but the folder ``[server] jobs_path``:

- ``{jobs_path}/{job id}/job.json``: the job's state.  Every change is a
  read-modify-write under an exclusive ``flock`` on ``{job}/lock``; the new
  state is written to a temporary file and moved into place with
  ``os.replace``, so readers never see half a file and need no lock;
- ``{job}/upload-N``: inline upload parts, ``{job}/result``: the result;
- ``{jobs_path}/.queue/{time}-{job id}``: an empty marker per QUEUED job, so
  the runner finds work without reading every job.

The runner polls the queue and runs at most ``[server] job_workers`` jobs, each
in its own child process, so that ABORT, an expired execution duration or a
deleted job simply terminate that process.  It also deletes jobs past their
destruction time.  Jobs therefore survive a restart of ``skvo serve``; a job
that was EXECUTING when the service stopped ends in ERROR, since nothing can
resume it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from voservice.config import Settings

log = logging.getLogger(__name__)

PHASES = (
    "PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED",
    "UNKNOWN", "HELD", "SUSPENDED", "ARCHIVED",
)
#: phases a job may still leave by itself (WAIT blocks only in these)
ACTIVE_PHASES = frozenset({"PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED"})
FINAL_PHASES = frozenset({"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"})

RESTART_MESSAGE = (
    "the service restarted while the job was executing; the job was stopped, "
    "please run it again"
)
CRASH_MESSAGE = "the job's worker process ended unexpectedly; please run the job again"
INTERNAL_MESSAGE = "the query failed because of an internal error of the service; it is logged"

POLL_SECONDS = 0.2  # how often the runner looks at the queue and its running jobs
SWEEP_SECONDS = 5.0  # how often the runner deletes jobs past their destruction time
KILL_GRACE_SECONDS = 3.0  # SIGTERM, then SIGKILL after this long
#: extra time a job may run past its execution duration before the runner kills
#: it (the query itself gets the duration as its database timeout)
OVERRUN_SECONDS = 5.0

_JOB_ID = re.compile(r"^[a-z0-9]{1,64}$")

T = TypeVar("T")


def now() -> float:
    """The current time as a POSIX timestamp (the store's time unit)."""
    return time.time()


def iso(timestamp: float | None) -> str:
    """A timestamp as ISO 8601 UTC with milliseconds and ``Z`` ('' for None)."""
    if timestamp is None:
        return ""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """An ISO 8601 date or date-time (UTC unless it says otherwise) as a timestamp.

    Raises ValueError with a message naming the value.
    """
    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time such as 2024-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class JobStateError(Exception):
    """A change the job's current phase does not allow (HTTP 403)."""


class JobStopped(BaseException):
    """Raised in a job process by SIGTERM (abort, deletion, overrun, shutdown).

    A BaseException, so that no ``except Exception`` in the query code turns it
    into an error of its own; ``finally`` blocks (closing the database
    connection, cancelling the statement) still run.
    """


@dataclass
class Job:
    """The state of one job as kept in ``job.json``."""

    job_id: str
    owner: str | None
    creation_time: float
    execution_duration: int
    destruction: float | None
    phase: str = "PENDING"
    start_time: float | None = None
    end_time: float | None = None
    #: posted parameters in order, names upper-case (DALI names are case-insensitive)
    parameters: list[tuple[str, str]] = field(default_factory=list)
    #: inline upload parts: part name (as posted) -> file name in the job folder
    uploads: dict[str, str] = field(default_factory=dict)
    result_mime: str | None = None
    result_size: int | None = None
    error_message: str | None = None
    error_type: str = "fatal"

    @property
    def run_id(self) -> str | None:
        """The client's RUNID, if it gave one."""
        for name, value in self.parameters:
            if name == "RUNID":
                return value
        return None

    def parameter_lists(self) -> dict[str, list[str]]:
        """The parameters as name -> values (what the query runner takes)."""
        out: dict[str, list[str]] = {}
        for name, value in self.parameters:
            out.setdefault(name, []).append(value)
        return out

    def to_json(self) -> str:
        """Serialise for ``job.json``."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Job:
        """Read a ``job.json``."""
        data = json.loads(text)
        data["parameters"] = [(str(n), str(v)) for n, v in data.get("parameters", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


class JobStore:
    """The jobs under one folder; safe for concurrent use by several processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.queue_dir = self.root / ".queue"
        self.trash_dir = self.root / ".trash"
        for folder in (self.root, self.queue_dir, self.trash_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------

    @staticmethod
    def valid_id(job_id: str) -> bool:
        """Is this a job id the store could have made (guards every path)?"""
        return bool(_JOB_ID.match(job_id))

    def folder(self, job_id: str) -> Path:
        """The folder of a job."""
        if not self.valid_id(job_id):
            raise ValueError(f"bad job id {job_id!r}")
        return self.root / job_id

    def result_path(self, job_id: str) -> Path:
        """Where the result of a job is stored."""
        return self.folder(job_id) / "result"

    def upload_path(self, job: Job, name: str) -> Path | None:
        """The stored inline upload part ``name`` of a job (None if there is none)."""
        file_name = job.uploads.get(name)
        return self.folder(job.job_id) / file_name if file_name else None

    # -- reading -----------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        if not self.valid_id(job_id):
            return None
        try:
            return Job.from_json((self.root / job_id / "job.json").read_text("utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def jobs(self) -> Iterator[Job]:
        """Every job in the store (no particular order)."""
        with os.scandir(self.root) as entries:
            names = [e.name for e in entries if e.is_dir() and self.valid_id(e.name)]
        for name in names:
            job = self.get(name)
            if job is not None:
                yield job

    # -- writing -----------------------------------------------------------

    def create(
        self,
        owner: str | None,
        parameters: list[tuple[str, str]],
        uploads: Mapping[str, IO[bytes]],
        *,
        execution_duration: int,
        destruction: float | None,
        run: bool = False,
    ) -> Job:
        """Make a new job (PENDING, or QUEUED when ``run``) and store its upload parts."""
        while True:
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        job = Job(
            job_id=job_id,
            owner=owner,
            creation_time=now(),
            execution_duration=execution_duration,
            destruction=destruction,
            parameters=list(parameters),
        )
        self._store_uploads(job, uploads)
        if run:
            job.phase = "QUEUED"
        self._write(job)
        if run:
            self.enqueue(job.job_id)
        return job

    def _store_uploads(self, job: Job, uploads: Mapping[str, IO[bytes]]) -> None:
        folder = self.folder(job.job_id)
        for name, stream in uploads.items():
            file_name = job.uploads.get(name) or f"upload-{len(job.uploads) + 1}"
            with open(folder / (file_name + ".tmp"), "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            os.replace(folder / (file_name + ".tmp"), folder / file_name)
            job.uploads[name] = file_name

    def update(self, job_id: str, change: Callable[[Job], T]) -> tuple[Job, T] | None:
        """Apply ``change`` to a job under its lock and store the result.

        Returns the changed job and what ``change`` returned, or None when the
        job does not exist.  Exceptions from ``change`` (JobStateError) pass
        through and leave the job as it was.
        """
        with self._locked(job_id) as job:
            if job is None:
                return None
            value = change(job)
            self._write(job)
            return job, value

    def add_uploads(self, job_id: str, uploads: Mapping[str, IO[bytes]],
                    change: Callable[[Job], None]) -> Job | None:
        """Store more upload parts and apply ``change`` (PENDING jobs; under the lock)."""
        with self._locked(job_id) as job:
            if job is None:
                return None
            change(job)
            self._store_uploads(job, uploads)
            self._write(job)
            return job

    def delete(self, job_id: str) -> bool:
        """Remove a job and everything it stored; False if there was no such job."""
        with self._locked(job_id) as job:
            if job is None:
                return False
            trash = self.trash_dir / f"{job_id}-{secrets.token_hex(4)}"
            os.rename(self.folder(job_id), trash)
        self.unqueue(job_id)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    @contextlib.contextmanager
    def _locked(self, job_id: str) -> Iterator[Job | None]:
        if not self.valid_id(job_id):
            yield None
            return
        folder = self.root / job_id
        try:
            fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # the folder may have been deleted while we waited for the lock
            yield self.get(job_id)
        finally:
            os.close(fd)

    def _write(self, job: Job) -> None:
        folder = self.folder(job.job_id)
        tmp = folder / f"job.json.{os.getpid()}.tmp"
        tmp.write_text(job.to_json(), "utf-8")
        os.replace(tmp, folder / "job.json")

    # -- the queue ---------------------------------------------------------

    def enqueue(self, job_id: str) -> None:
        """Put a QUEUED job in the runner's queue."""
        (self.queue_dir / f"{time.time_ns():020d}-{job_id}").touch()

    def unqueue(self, job_id: str) -> None:
        """Take a job out of the runner's queue."""
        for marker in self.queue_dir.glob(f"*-{job_id}"):
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()

    def queued(self) -> list[str]:
        """Ids of the queued jobs, oldest first."""
        names = sorted(p.name for p in self.queue_dir.iterdir())
        return [name.partition("-")[2] for name in names]


# --------------------------------------------------------------------------
# State changes shared by the web side and the runner


def set_error(job: Job, message: str, error_type: str = "fatal") -> None:
    """Put a job into ERROR with a message for people."""
    job.phase = "ERROR"
    job.error_message = message
    job.error_type = error_type
    job.end_time = job.end_time or now()


def recover(store: JobStore) -> int:
    """Jobs left EXECUTING by a stopped service go to ERROR; QUEUED ones are requeued.

    Call only while no runner works on the store.  Returns how many jobs went
    to ERROR.
    """
    queued = set(store.queued())
    failed = 0
    for job in store.jobs():
        if job.phase == "EXECUTING":

            def fail(j: Job) -> bool:
                if j.phase != "EXECUTING":
                    return False
                set_error(j, RESTART_MESSAGE, "transient")
                return True

            done = store.update(job.job_id, fail)
            failed += bool(done and done[1])
        elif job.phase == "QUEUED" and job.job_id not in queued:
            store.enqueue(job.job_id)
    return failed


def sweep(store: JobStore, moment: float | None = None) -> list[str]:
    """Delete the jobs whose destruction time has passed; returns their ids."""
    moment = now() if moment is None else moment
    gone = []
    for job in store.jobs():
        if job.destruction is not None and job.destruction <= moment and store.delete(job.job_id):
            gone.append(job.job_id)
    # leftovers of deletions interrupted by a crash
    for path in store.trash_dir.iterdir():
        shutil.rmtree(path, ignore_errors=True)
    return gone


# --------------------------------------------------------------------------
# Running one job (in a child process of the runner)


def _for_users(exc: BaseException) -> bool:
    """Is the message of this exception meant for the user?

    UsageError, and the exceptions of the query layer (``voservice.query``,
    ``adql``), whose messages are written for people; anything else is a bug or
    a database failure, logged and reported without details.
    """
    from voservice.protocols.dali import UsageError

    module = type(exc).__module__
    return (
        isinstance(exc, UsageError)
        or module == "adql"
        or module.startswith(("adql.", "voservice.query"))
    ) and bool(str(exc).strip())


def execute(settings: Settings, store: JobStore, job_id: str) -> None:
    """Run one EXECUTING job to COMPLETED or ERROR (the body of a job process)."""
    job = store.get(job_id)
    if job is None or job.phase != "EXECUTING":
        return
    folder = store.folder(job_id)
    try:
        from voservice.access import principal_by_name
        from voservice.app import open_services
        from voservice.query import run_tap_query

        svc = open_services(settings)
        principal = principal_by_name(svc.engine, job.owner)
        files: dict[str, Path] = {
            name: folder / file_name for name, file_name in job.uploads.items()
        }
        result = run_tap_query(
            svc,
            principal,
            job.parameter_lists(),
            files,
            timeout=float(job.execution_duration) or None,
            maxrec_default=settings.get("vo", "maxrec_default"),
            maxrec_hard=settings.get("vo", "maxrec_hard"),
        )
        part = folder / "result.part"
        with open(part, "wb") as out:
            for chunk in result.chunks:
                out.write(chunk)
        size = part.stat().st_size
        os.replace(part, folder / "result")
    except FileNotFoundError:
        if not folder.exists():  # the job was deleted meanwhile
            return
        log.exception("async job %s failed", job_id)
        _finish_error(store, job_id, INTERNAL_MESSAGE, "transient")
        return
    except Exception as exc:
        if _for_users(exc):
            _finish_error(store, job_id, str(exc).strip(), "fatal")
        else:
            log.exception("async job %s failed", job_id)
            _finish_error(store, job_id, INTERNAL_MESSAGE, "transient")
        return

    def complete(j: Job) -> None:
        if j.phase == "EXECUTING":
            j.phase = "COMPLETED"
            j.end_time = now()
            j.result_mime = result.mime
            j.result_size = size

    done = store.update(job_id, complete)
    if done is not None and done[0].phase != "COMPLETED":
        with contextlib.suppress(FileNotFoundError):
            (folder / "result").unlink()


def _finish_error(store: JobStore, job_id: str, message: str, error_type: str) -> None:
    def fail(j: Job) -> None:
        if j.phase == "EXECUTING":
            set_error(j, message, error_type)

    store.update(job_id, fail)


def _job_process(settings: Settings, root: Path, job_id: str) -> None:
    def stop(_signum: int, _frame: Any) -> None:
        # the interrupted connection cannot be reset cleanly: that is expected
        logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
        raise JobStopped

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        execute(settings, JobStore(root), job_id)
    except JobStopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --------------------------------------------------------------------------
# The runner


@dataclass
class _Running:
    process: Any  # multiprocessing.Process
    deadline: float | None
    duration: int


class Runner:
    """Runs queued jobs, at most ``workers`` at once, each in its own process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(settings.get("server", "jobs_path"))
        self.workers = settings.get("server", "job_workers")
        self.running: dict[str, _Running] = {}
        self.stopping = False
        self._context = multiprocessing.get_context("fork")
        self._last_sweep = 0.0

    def run_forever(self, parent_pid: int | None = None) -> None:
        """Work until SIGTERM/SIGINT or until the parent process is gone."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        try:
            while not self.stopping:
                if parent_pid is not None and os.getppid() != parent_pid:
                    break
                try:
                    self.step()
                except Exception:
                    log.exception("job runner step failed")
                time.sleep(POLL_SECONDS)
        finally:
            self.shutdown()

    def _stop(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def step(self) -> None:
        """One round: watch running jobs, start queued ones, sweep expired ones."""
        self.watch()
        self.start_queued()
        if time.monotonic() - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = time.monotonic()
            sweep(self.store)

    def watch(self) -> None:
        """Reap finished job processes; stop aborted, deleted and overrunning jobs."""
        for job_id, run in list(self.running.items()):
            job = self.store.get(job_id)
            if not run.process.is_alive():
                run.process.join()
                del self.running[job_id]
                if job is not None and job.phase == "EXECUTING":
                    _finish_error(self.store, job_id, CRASH_MESSAGE, "transient")
                continue
            if job is None or job.phase != "EXECUTING":  # deleted or aborted
                self._kill(run)
                del self.running[job_id]
            elif run.deadline is not None and time.monotonic() > run.deadline:
                self._kill(run)
                del self.running[job_id]
                _finish_error(
                    self.store,
                    job_id,
                    f"the query ran longer than its execution duration of {run.duration} s "
                    "and was stopped; make it more selective or allow a longer "
                    "EXECUTIONDURATION",
                    "fatal",
                )

    def start_queued(self) -> None:
        """Claim queued jobs (QUEUED -> EXECUTING) while workers are free."""
        if len(self.running) >= self.workers:
            return
        for job_id in self.store.queued():
            if len(self.running) >= self.workers:
                break
            self.store.unqueue(job_id)
            if job_id in self.running:
                continue

            def claim(j: Job) -> bool:
                if j.phase != "QUEUED":
                    return False
                j.phase = "EXECUTING"
                j.start_time = now()
                return True

            done = self.store.update(job_id, claim)
            if done is None or not done[1]:
                continue
            job = done[0]
            process = self._context.Process(
                target=_job_process,
                args=(self.settings, self.store.root, job_id),
                name=f"skvo-job-{job_id}",
            )
            process.start()
            deadline = (
                time.monotonic() + job.execution_duration + OVERRUN_SECONDS
                if job.execution_duration
                else None
            )
            self.running[job_id] = _Running(process, deadline, job.execution_duration)

    def shutdown(self) -> None:
        """Stop every running job; they end in ERROR (they cannot be resumed)."""
        for job_id, run in list(self.running.items()):
            self._kill(run)
            _finish_error(self.store, job_id, RESTART_MESSAGE, "transient")
        self.running.clear()

    @staticmethod
    def _kill(run: _Running) -> None:
        process = run.process
        if process.is_alive():
            process.terminate()
            process.join(KILL_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
        process.join(KILL_GRACE_SECONDS)


def _runner_main(settings: Settings, parent_pid: int) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO,
            format="%(asctime)s [job runner] %(levelname)s %(message)s",
        )
    store = JobStore(settings.get("server", "jobs_path"))
    lock = _runner_lock(store, wait=True, parent_pid=parent_pid)
    if lock is None:
        return
    try:
        recover(store)
        Runner(settings).run_forever(parent_pid)
    finally:
        os.close(lock)


def _runner_lock(store: JobStore, *, wait: bool, parent_pid: int | None = None) -> int | None:
    """Take the store's runner lock (one runner per jobs folder); None if not taken."""
    fd = os.open(store.root / ".runner.lock", os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or not wait:
                os.close(fd)
                return None
        if parent_pid is not None and os.getppid() != parent_pid:
            os.close(fd)
            return None
        time.sleep(1.0)


@dataclass(frozen=True)
class RunnerHandle:
    """The job runner process as seen by the process that started it."""

    pid: int
    parent_pid: int


def start_runner(settings: Settings) -> RunnerHandle:
    """Recover the store after a stop, then fork the job runner process.

    Recovery happens here, before the web service answers, so no client sees a
    job EXECUTING that nothing runs any more.  (A plain ``os.fork``: gunicorn
    forks its workers from the same process, and they must not inherit a
    multiprocessing child they would try to join at exit.)
    """
    store = JobStore(settings.get("server", "jobs_path"))
    lock = _runner_lock(store, wait=False)
    if lock is not None:  # else another runner still works on this folder
        try:
            count = recover(store)
            if count:
                log.warning("%d async job(s) were executing when the service stopped", count)
        finally:
            os.close(lock)
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the runner
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _runner_main(settings, parent)
        except BaseException:
            log.exception("the job runner failed")
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
    return RunnerHandle(pid, parent)


def stop_runner(handle: RunnerHandle, timeout: float = 15.0) -> None:
    """Stop the job runner (its running jobs end in ERROR).

    Does nothing in any process but the one that started it (gunicorn's
    workers unwind through the same code when they exit).
    """
    if os.getpid() != handle.parent_pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(handle.pid, os.WNOHANG)
        except ChildProcessError:  # already reaped (gunicorn reaps its children)
            return
        if pid:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(handle.pid, 0)
