"""Asynchronous TAP jobs: the job store on disk and the job runner.

The web workers (several waitress processes) and the job runner (one process
started by ``skvo serve``) share nothing but the folder ``[server] jobs_path``:

- ``{jobs_path}/{job id}/job.json``: the job's state.  Every change is a
  read-modify-write under an exclusive ``flock`` on ``{job}/lock``; the new
  state is written to a temporary file and moved into place with
  ``os.replace``, so readers never see half a file and need no lock;
- ``{job}/upload-N``: inline upload parts, ``{job}/result``: the result;
- ``{jobs_path}/.queue/{time}-{job id}``: an empty marker per QUEUED job, so
  the runner finds work without reading every job;
- ``{jobs_path}/.owners/{hash of owner}/{job id}``: an empty marker per job,
  so quotas count an owner's jobs without reading every job.

Everything is readable by the service account only (folders 0700, files 0600,
whatever the umask).  A job belongs to an account (by id; the name is kept for
display) or, when created anonymously, to nobody: its long random id is then
the only key to it.  For quotas and fair scheduling an anonymous job counts
against the client address that created it (:func:`client_key`).

The runner polls the queue and runs at most ``[server] job_workers`` jobs, each
in its own child process, so that ABORT, an expired execution duration or a
deleted job simply terminate that process.  It picks the next job fairly
(:func:`pick_next`): round-robin across owners, no owner on every worker, and
anonymous jobs leave one worker free for authenticated users.  It also deletes jobs past their
destruction time.  Jobs therefore survive a restart of ``skvo serve``; a job
that was EXECUTING when the service stopped ends in ERROR, since nothing can
resume it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import ipaddress
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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
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
OWNER_GONE_MESSAGE = (
    "the account that created this job no longer exists; the job was not run"
)
INTERNAL_MESSAGE = "the query failed because of an internal error of the service; it is logged"

POLL_SECONDS = 0.2  # how often the runner looks at the queue and its running jobs
SWEEP_SECONDS = 5.0  # how often the runner deletes jobs past their destruction time
KILL_GRACE_SECONDS = 3.0  # SIGTERM, then SIGKILL after this long
#: extra time a job may run past its execution duration before the runner kills
#: it (the query itself gets the duration as its database timeout)
OVERRUN_SECONDS = 5.0

_JOB_ID = re.compile(r"[a-z0-9]{1,64}")
#: random bytes of a job id (hex-encoded: 32 characters); the id of an
#: anonymous job is the only key to it, so it must not be guessable
JOB_ID_BYTES = 16
#: seconds a client over its quota of active jobs is told to wait (Retry-After)
ACTIVE_RETRY_SECONDS = 10
DIR_MODE = 0o700
FILE_MODE = 0o600

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


def client_key(address: str | None) -> str:
    """The anonymous "owner" of a request from ``address`` (quotas, fair queue).

    An IPv4 address as it is; an IPv6 address by its /64 network (one site
    usually gets a whole /64); IPv4-mapped IPv6 as IPv4.
    """
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def open_private(path: Path) -> IO[bytes]:
    """Create (or truncate) a file for writing, mode 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


class JobStateError(Exception):
    """A change the job's current phase does not allow (HTTP 403)."""


class QuotaExceeded(Exception):  # noqa: N818 - a condition, not a bug
    """An owner has too many jobs (existing: HTTP 403; active: 429 + Retry-After)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Quota:
    """How many jobs one owner may have (0 = no limit)."""

    existing: int = 0  # jobs in any phase
    active: int = 0  # jobs QUEUED or EXECUTING


def check_quota(quota: Quota, existing: int, active: int, *, new: bool, run: bool) -> None:
    """Raise QuotaExceeded if adding a job (``new``) or queueing one (``run``) passes a limit.

    ``existing`` and ``active`` count the owner's jobs before the change.
    """
    if new and quota.existing and existing >= quota.existing:
        raise QuotaExceeded(
            f"there are {existing} jobs of yours (at most {quota.existing} are kept); "
            "delete jobs you no longer need (DELETE on the job) before creating more"
        )
    if run and quota.active and active >= quota.active:
        raise QuotaExceeded(
            f"{active} jobs of yours are queued or executing (at most {quota.active}); "
            "wait until one finishes, or abort one, then try again",
            ACTIVE_RETRY_SECONDS,
        )


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
    #: the owner's account name (for display), None for an anonymous job
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
    #: the owner's account id: what ownership is decided by (None: anonymous)
    owner_id: int | None = None
    #: client_key() of the address that created an anonymous job
    client: str | None = None

    @property
    def anonymous(self) -> bool:
        """A job created without credentials (it belongs to nobody)."""
        return self.owner_id is None and self.owner is None

    @property
    def owner_key(self) -> str:
        """Whom the job counts against for quotas and fair scheduling."""
        if self.owner_id is not None:
            return f"user:{self.owner_id}"
        if self.owner is not None:  # made before jobs recorded the account id
            return f"name:{self.owner}"
        return f"addr:{self.client or '?'}"

    def upload_references(self) -> set[str]:
        """Part names the UPLOAD parameters name as ``param:<part>``."""
        return upload_references(self.parameters)

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


def upload_references(parameters: Sequence[tuple[str, str]]) -> set[str]:
    """Part names that UPLOAD parameters (``name,param:part;...``) refer to."""
    referenced = set()
    for name, value in parameters:
        if name == "UPLOAD":
            for item in value.split(";"):
                uri = item.partition(",")[2].strip()
                if uri.startswith("param:"):
                    referenced.add(uri[len("param:"):])
    return referenced


class JobStore:
    """The jobs under one folder; safe for concurrent use by several processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.queue_dir = self.root / ".queue"
        self.trash_dir = self.root / ".trash"
        self.owners_dir = self.root / ".owners"
        for folder in (self.root, self.queue_dir, self.trash_dir, self.owners_dir):
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            with contextlib.suppress(PermissionError):
                os.chmod(folder, DIR_MODE)

    # -- paths -------------------------------------------------------------

    @staticmethod
    def valid_id(job_id: str) -> bool:
        """Is this a job id the store could have made (guards every path)?"""
        return bool(_JOB_ID.fullmatch(job_id))

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

    def usage(self, owner_key: str) -> tuple[int, int]:
        """How many jobs an owner has: (in any phase, QUEUED or EXECUTING).

        Reads only the owner's jobs (through ``.owners``); forgets markers of
        jobs that are gone.
        """
        folder = self._owner_dir(owner_key)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return 0, 0
        existing = active = 0
        for name in names:
            job = self.get(name)
            if job is None:
                if self.valid_id(name) and not (self.root / name).exists():
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()
                continue
            if job.owner_key == owner_key:
                existing += 1
                active += job.phase in ("QUEUED", "EXECUTING")
        return existing, active

    def evict_finished(self, owner_key: str, count: int) -> int:
        """Delete up to ``count`` of an owner's finished jobs, oldest first.

        Finished: in a final phase (COMPLETED, ERROR, ABORTED).  Returns how many
        were deleted.
        """
        try:
            names = os.listdir(self._owner_dir(owner_key))
        except FileNotFoundError:
            return 0
        finished = [job for job in map(self.get, names)
                    if job is not None and job.owner_key == owner_key
                    and job.phase in FINAL_PHASES]
        finished.sort(key=lambda job: job.creation_time)
        return sum(self.delete(job.job_id) for job in finished[:count])

    def _owner_dir(self, owner_key: str) -> Path:
        digest = hashlib.sha256(owner_key.encode("utf-8")).hexdigest()[:32]
        return self.owners_dir / digest

    def index(self, job: Job) -> None:
        """Record the job under its owner (idempotent)."""
        folder = self._owner_dir(job.owner_key)
        try:
            folder.mkdir(mode=DIR_MODE)
            os.chmod(folder, DIR_MODE)
        except FileExistsError:
            pass
        open_private(folder / job.job_id).close()

    def rebuild_index(self) -> None:
        """Index every job and forget markers of missing jobs (after a crash or upgrade)."""
        for job in self.jobs():
            self.index(job)
        for folder in self.owners_dir.iterdir():
            for marker in folder.iterdir():
                if not (self.root / marker.name).is_dir():
                    with contextlib.suppress(FileNotFoundError):
                        marker.unlink()

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
        owner_id: int | None = None,
        client: str | None = None,
        quota: Quota | None = None,
    ) -> Job:
        """Make a new job (PENDING, or QUEUED when ``run``) and store its upload parts.

        ``owner``/``owner_id`` name the account (None for anonymous jobs, which
        record the ``client`` key instead).  Only upload parts that an UPLOAD
        parameter names are stored.  With a ``quota``, raises QuotaExceeded
        (and makes nothing) when the owner has too many jobs.
        """
        job = Job(
            job_id="",
            owner=owner,
            creation_time=now(),
            execution_duration=execution_duration,
            destruction=destruction,
            parameters=list(parameters),
            owner_id=owner_id,
            client=client if owner is None and owner_id is None else None,
        )
        with self._quota_lock(quota is not None):
            if quota is not None:
                existing, active = self.usage(job.owner_key)
                if job.anonymous and quota.existing and existing >= quota.existing:
                    # an anonymous client cannot list its jobs to delete old
                    # ones: its oldest finished jobs make room instead
                    existing -= self.evict_finished(job.owner_key,
                                                    existing - quota.existing + 1)
                check_quota(quota, existing, active, new=True, run=run)
            while True:
                job.job_id = secrets.token_hex(JOB_ID_BYTES)
                folder = self.root / job.job_id
                try:
                    folder.mkdir(mode=DIR_MODE)
                    break
                except FileExistsError:
                    continue
            os.chmod(folder, DIR_MODE)
            try:
                self._store_uploads(job, uploads)
                if run:
                    job.phase = "QUEUED"
                self._write(job)
                self.index(job)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        if run:
            self.enqueue(job.job_id)
        return job

    def start(self, job_id: str, change: Callable[[Job], T],
              quota: Quota | None = None) -> tuple[Job, T] | None:
        """Like :meth:`update`, for a change that may queue the job (PHASE=RUN).

        With a ``quota``, raises QuotaExceeded (the job unchanged) when the
        change would queue a job of an owner with too many active jobs.
        """
        if quota is None or not quota.active:
            return self.update(job_id, change)
        with self._quota_lock(True):
            job = self.get(job_id)
            if job is None:
                return None
            active = self.usage(job.owner_key)[1]

            def guarded(j: Job) -> T:
                before = j.phase
                value = change(j)
                if j.phase == "QUEUED" and before != "QUEUED":
                    check_quota(quota, 0, active, new=False, run=True)
                return value

            return self.update(job_id, guarded)

    @contextlib.contextmanager
    def _quota_lock(self, needed: bool) -> Iterator[None]:
        """Serialise quota checks with the changes they guard (all processes)."""
        if not needed:
            yield
            return
        fd = os.open(self.root / ".quota.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _store_uploads(self, job: Job, uploads: Mapping[str, IO[bytes]]) -> None:
        """Store the parts the job's UPLOAD parameters name; drop the others."""
        folder = self.folder(job.job_id)
        wanted = job.upload_references()
        for name, stream in uploads.items():
            if name not in wanted:
                continue
            file_name = job.uploads.get(name) or f"upload-{len(job.uploads) + 1}"
            with open_private(folder / (file_name + ".tmp")) as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            os.replace(folder / (file_name + ".tmp"), folder / file_name)
            job.uploads[name] = file_name
        for name in [n for n in job.uploads if n not in wanted]:  # no longer named
            with contextlib.suppress(FileNotFoundError):
                (folder / job.uploads[name]).unlink()
            del job.uploads[name]

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
            with contextlib.suppress(FileNotFoundError):
                (self._owner_dir(job.owner_key) / job_id).unlink()
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
            fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
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
        with open_private(tmp) as out:
            out.write(job.to_json().encode("utf-8"))
        os.replace(tmp, folder / "job.json")

    def make_private(self) -> None:
        """Give every job folder mode 0700 and its files 0600 (stores made by old versions)."""
        for path in (self.root, self.queue_dir, self.trash_dir, self.owners_dir):
            with contextlib.suppress(OSError):
                os.chmod(path, DIR_MODE)
        with os.scandir(self.root) as entries:
            folders = [Path(e.path) for e in entries if e.is_dir() and self.valid_id(e.name)]
        for folder in folders:
            with contextlib.suppress(OSError):
                os.chmod(folder, DIR_MODE)
                for child in folder.iterdir():
                    if child.is_file():
                        os.chmod(child, FILE_MODE)

    # -- the queue ---------------------------------------------------------

    def enqueue(self, job_id: str) -> None:
        """Put a QUEUED job in the runner's queue."""
        open_private(self.queue_dir / f"{time.time_ns():020d}-{job_id}").close()

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
    to ERROR.  Also makes the files of older stores private (0700/0600) and
    rebuilds the owner index.
    """
    store.make_private()
    store.rebuild_index()
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
    from voservice.errors import UsageError

    module = type(exc).__module__
    return (
        isinstance(exc, UsageError)
        or module == "adql"
        or module.startswith(("adql.", "voservice.query"))
    ) and bool(str(exc).strip())


def job_principal(engine: Any, job: Job) -> Any:
    """The principal a job runs as: its owner account by id, ANONYMOUS for
    anonymous jobs, None when the owner's account is gone (the job must not run).
    """
    import sqlalchemy as sa

    from voservice.access import ANONYMOUS, principal_by_id
    from voservice.model import skvo_user

    if job.anonymous:
        return ANONYMOUS
    owner_id = job.owner_id
    if owner_id is None:  # made before jobs recorded the account id: by name
        with engine.connect() as conn:
            owner_id = conn.execute(
                sa.select(skvo_user.c.user_id).where(skvo_user.c.name == job.owner)
            ).scalar()
        if owner_id is None:
            return None
    who = principal_by_id(engine, owner_id)
    if who is None or who.anonymous or who.name != job.owner:
        return None
    return who


def execute(settings: Settings, store: JobStore, job_id: str) -> None:
    """Run one EXECUTING job to COMPLETED or ERROR (the body of a job process)."""
    job = store.get(job_id)
    if job is None or job.phase != "EXECUTING":
        return
    folder = store.folder(job_id)
    try:
        from voservice.context import open_services
        from voservice.query import run_tap_query

        svc = open_services(settings)
        principal = job_principal(svc.engine, job)
        if principal is None:
            _finish_error(store, job_id, OWNER_GONE_MESSAGE, "fatal")
            return
        files: dict[str, Path] = {
            name: folder / file_name for name, file_name in job.uploads.items()
            if name in job.upload_references()
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
        with open_private(part) as out:
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
    with contextlib.suppress(JobStopped):  # also a stop that comes during the finally
        try:
            execute(settings, JobStore(root), job_id)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


# --------------------------------------------------------------------------
# The runner


@dataclass
class _Running:
    process: Any  # multiprocessing.Process
    deadline: float | None
    duration: int
    owner_key: str = ""
    anonymous: bool = False


def worker_limits(workers: int) -> tuple[int, int]:
    """(jobs one owner may run at once, jobs all anonymous owners may run at once).

    No owner takes every worker, and anonymous jobs leave one worker free for
    authenticated users (with a single worker neither can be guaranteed).
    """
    if workers <= 1:
        return 1, 1
    return workers - 1, workers - 1


def pick_next(
    queued: Sequence[tuple[str, str, bool]],
    running: Sequence[tuple[str, bool]],
    workers: int,
    last_start: Mapping[str, float],
) -> str | None:
    """The queued job to start next, or None.

    ``queued``: (job id, owner key, anonymous) oldest first; ``running``:
    (owner key, anonymous) of the running jobs; ``last_start``: when each owner
    last got a job started.  Among the owners still under their limits
    (:func:`worker_limits`) the one with the fewest running jobs, then the one
    served longest ago, gets its oldest queued job started: round-robin.
    """
    if len(running) >= workers:
        return None
    per_owner, anonymous_cap = worker_limits(workers)
    counts = Counter(key for key, _ in running)
    anonymous_running = sum(1 for _, anonymous in running if anonymous)
    best: tuple[tuple[int, float, int], str] | None = None
    for position, (job_id, key, anonymous) in enumerate(queued):
        if counts[key] >= per_owner or (anonymous and anonymous_running >= anonymous_cap):
            continue
        rank = (counts[key], last_start.get(key, 0.0), position)
        if best is None or rank < best[0]:
            best = (rank, job_id)
    return best[1] if best else None


class Runner:
    """Runs queued jobs, at most ``workers`` at once, each in its own process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(settings.get("server", "jobs_path"))
        self.workers = settings.get("server", "job_workers")
        self.running: dict[str, _Running] = {}
        #: owner key -> monotonic time its last job started (round-robin)
        self.last_start: dict[str, float] = {}
        self._owners: dict[str, tuple[str, bool]] = {}  # queued job id -> owner
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

    def _candidates(self) -> list[tuple[str, str, bool]]:
        """The queue as (job id, owner key, anonymous), oldest first.

        Drops markers of jobs that are gone or no longer QUEUED; a job's owner
        never changes, so it is read once per job.
        """
        out = []
        seen = set()
        for job_id in self.store.queued():
            if job_id in seen:
                continue
            seen.add(job_id)
            owner = self._owners.get(job_id)
            if owner is None:
                job = self.store.get(job_id)
                if job is None or job.phase != "QUEUED" or job_id in self.running:
                    self.store.unqueue(job_id)
                    continue
                owner = self._owners[job_id] = (job.owner_key, job.anonymous)
            out.append((job_id, *owner))
        for job_id in [j for j in self._owners if j not in seen]:
            del self._owners[job_id]
        return out

    def start_queued(self) -> None:
        """Claim queued jobs (QUEUED -> EXECUTING) while workers are free, fairly."""
        if len(self.running) >= self.workers:
            return
        candidates = self._candidates()
        while candidates and len(self.running) < self.workers:
            running = [(r.owner_key, r.anonymous) for r in self.running.values()]
            job_id = pick_next(candidates, running, self.workers, self.last_start)
            if job_id is None:
                return
            candidates = [c for c in candidates if c[0] != job_id]
            self.store.unqueue(job_id)

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
            self.running[job_id] = _Running(
                process, deadline, job.execution_duration, job.owner_key, job.anonymous
            )
            if len(self.last_start) > 10_000:
                self.last_start.clear()
            self.last_start[job.owner_key] = time.monotonic()

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
    fd = os.open(store.root / ".runner.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
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
    job EXECUTING that nothing runs any more.  (A plain ``os.fork``: `skvo serve`
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

    Does nothing in any process but the one that started it (the web
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
        except ChildProcessError:  # already reaped (the serving parent reaps its children)
            return
        if pid:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(handle.pid, 0)
