"""Asynchronous TAP jobs: the job store and the job runner.

Several web hosts may serve one archive; they share the metadata database
and one folder, and nothing else:

- the job state is a row of ``skvo_uws_job`` in the metadata database
  (:data:`voservice.model.uws_job`, written through the writer engine).  Every
  change is an optimistic read-modify-write: the row is read, changed, and
  written back with ``WHERE version = <as read>`` (only the columns that
  changed), retried when another process changed the row in between;
- ``[server] jobs_path/{job id}/``: the job's inline upload parts
  (``upload-*``) and its result (``result``), written to a temporary name and
  renamed into place.  With several hosts, that folder is on a file system
  they all mount, so any host streams any result (with sendfile);
- the queue is the QUEUED rows, oldest ``queued_at`` first.

A job runner (one per host, started by ``skvo serve``) claims a queued job
with one atomic change: on MariaDB/MySQL it reads the queue with ``SELECT ...
FOR UPDATE SKIP LOCKED`` (rows another runner is claiming are skipped, not
waited for) and sets the picked row EXECUTING in the same transaction; on
SQLite (one machine) ``UPDATE ... SET phase = 'EXECUTING' WHERE job_id = ?
AND phase = 'QUEUED'`` decides, and a runner that changed no row lost the
race.  Either way the claim records the runner (``node``, ``runner``) and a
lease (``lease_until``), which the runner renews every third of ``[server]
job_lease``.  A job whose lease has passed -- its host died, or lost the
database -- is put into ERROR by any runner (UWS 1.1 has no way back from
EXECUTING to QUEUED, and running a query again that may have killed its host
is not wise).  A host that restarts puts its own EXECUTING jobs into ERROR at
once, before it serves.

Job folders are readable by the service account only (0700, files 0600,
whatever the umask).  A job belongs to an account (by id; the name is kept
for display) or, when created anonymously, to nobody: its long random id is
then the only key to it.  For quotas and fair scheduling an anonymous job
counts against the client address that created it (:func:`client_key`);
quota checks and the changes they guard are serialised across hosts by a row
lock on the owner's row in ``skvo_uws_owner``.

The runner runs at most ``[server] job_workers`` jobs at once, each in its
own child process, so that ABORT (on any host), an expired execution duration
or a deleted job simply terminate that process.  It picks the next job fairly
(:func:`pick_next`): round-robin across owners, no owner on every worker, and
anonymous jobs leave one worker free for authenticated users.  Runners also
delete jobs past their destruction time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import ipaddress
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, TypeVar

import sqlalchemy as sa

from voservice.config import Settings
from voservice.model import uws_job, uws_owner

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
LEASE_MESSAGE = (
    "the host that was executing the job stopped answering (no heartbeat for {lease} s); "
    "the job was stopped, please run it again"
)
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
#: queued jobs a runner looks at when it picks the next one
QUEUE_SCAN = 500
#: attempts of an optimistic update before giving up (each one lost a race)
UPDATE_ATTEMPTS = 50
#: MySQL/MariaDB errors after which a transaction is simply tried again
_RETRY_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock

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


def node_name(settings: Settings) -> str:
    """This host's name among the hosts of one archive (``[server] node``).

    Default: the host name and the port, so two ``skvo serve`` on one machine
    are two nodes.
    """
    name = settings.get("server", "node")
    return name or f"{socket.gethostname()}:{settings.get('server', 'port')}"


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
    """The state of one job (a row of ``skvo_uws_job``)."""

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
    #: when the job last became QUEUED (the queue's order)
    queued_at: float | None = None
    #: the node and runner that claimed the job, and until when its lease runs
    node: str | None = None
    runner: str | None = None
    lease_until: float | None = None
    #: the public base URL of the request that created the job: the URLs in its result
    #: (access_url, DataLink) are those the client used, whichever host runs it
    base_url: str | None = None
    #: bumped by every change (optimistic updates)
    version: int = 0

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

    @classmethod
    def from_json(cls, text: str) -> Job:
        """Read a ``job.json`` of the folder store of earlier versions."""
        data = json.loads(text)
        data["parameters"] = [(str(n), str(v)) for n, v in data.get("parameters", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


_JOB_FIELDS = tuple(f.name for f in fields(Job))


def _to_row(job: Job) -> dict[str, Any]:
    """The column values of a job."""
    row = asdict(job)
    row["parameters"] = json.dumps([list(p) for p in job.parameters])
    row["uploads"] = json.dumps(job.uploads)
    row["owner_key"] = job.owner_key
    return row


def _from_row(row: Any) -> Job:
    """The job of a ``skvo_uws_job`` row."""
    values = {name: getattr(row, name) for name in _JOB_FIELDS}
    values["parameters"] = [(str(n), str(v)) for n, v in json.loads(row.parameters)]
    values["uploads"] = dict(json.loads(row.uploads))
    for name in ("creation_time", "start_time", "end_time", "destruction", "queued_at",
                 "lease_until"):
        if values[name] is not None:
            values[name] = float(values[name])
    return Job(**values)


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


def prepare(engine: sa.Engine) -> None:
    """Create the job tables if they are missing (an archive made by an older SKVO)."""
    for table in (uws_job, uws_owner):
        try:
            table.create(engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another process created it at the same moment
            if not sa.inspect(engine).has_table(table.name):
                raise


def _has_skip_locked(dialect: sa.Dialect) -> bool:
    """Does the MySQL/MariaDB server know ``FOR UPDATE SKIP LOCKED``?"""
    version = tuple(dialect.server_version_info or ())
    if getattr(dialect, "is_mariadb", False):
        return version >= (10, 6)
    return version >= (8, 0, 1)


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    """A deadlock or lock wait timeout of MySQL/MariaDB (try the transaction again)."""
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in _RETRY_CODES


class _Conflict(Exception):  # noqa: N818 - control flow, not an error
    """The row changed between reading and writing it: try again."""


class JobStore:
    """The jobs of one archive: rows in the metadata database, files in a folder.

    Safe for concurrent use by several threads, processes and hosts.  ``engine``
    must be allowed to write the metadata database (the writer engine).
    """

    def __init__(self, engine: sa.Engine, root: str | os.PathLike[str]) -> None:
        self.engine = engine
        self.root = Path(root)
        self.trash_dir = self.root / ".trash"
        for folder in (self.root, self.trash_dir):
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            with contextlib.suppress(PermissionError):
                os.chmod(folder, DIR_MODE)
        prepare(engine)  # also connects, so the server version is known
        self.mysql = engine.dialect.name != "sqlite"
        self.skip_locked = self.mysql and _has_skip_locked(engine.dialect)

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
        with self.engine.connect() as conn:
            return self._get(conn, job_id)

    @staticmethod
    def _get(conn: sa.Connection, job_id: str) -> Job | None:
        row = conn.execute(sa.select(uws_job).where(uws_job.c.job_id == job_id)).first()
        return None if row is None else _from_row(row)

    def jobs(self) -> Iterator[Job]:
        """Every job in the store (no particular order)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(uws_job)).all()
        return iter([_from_row(row) for row in rows])

    def listing(self, *, owner_id: int | None, owner: str | None, admin: bool = False,
                phases: frozenset[str] | set[str] = frozenset(), after: float | None = None,
                last: int | None = None) -> list[Job]:
        """The jobs a job list shows, newest first.

        An account's own jobs (by id and name; by name for jobs made before
        jobs recorded the account id), every job for ``admin``; in ``phases``
        (default: all but ARCHIVED), created after ``after``, the ``last``
        newest.
        """
        t = uws_job.c
        query = sa.select(uws_job)
        if not admin:
            if owner is None:
                return []
            query = query.where(t.owner == owner, sa.or_(
                t.owner_id == owner_id if owner_id is not None else sa.false(),
                t.owner_id.is_(None)))
        query = query.where(t.phase.in_(sorted(phases)) if phases else t.phase != "ARCHIVED")
        if after is not None:
            query = query.where(t.creation_time > after)
        query = query.order_by(t.creation_time.desc(), t.job_id)
        if last is not None:
            query = query.limit(last)
        with self.engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def usage(self, owner_key: str) -> tuple[int, int]:
        """How many jobs an owner has: (in any phase, QUEUED or EXECUTING)."""
        with self.engine.connect() as conn:
            return self._usage(conn, owner_key)

    @staticmethod
    def _usage(conn: sa.Connection, owner_key: str) -> tuple[int, int]:
        t = uws_job.c
        active = sa.func.sum(sa.case((t.phase.in_(("QUEUED", "EXECUTING")), 1), else_=0))
        row = conn.execute(sa.select(sa.func.count(), active)
                           .where(t.owner_key == owner_key)).one()
        return int(row[0] or 0), int(row[1] or 0)

    def queued(self) -> list[str]:
        """Ids of the queued jobs, oldest first."""
        t = uws_job.c
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.job_id).where(t.phase == "QUEUED")
                                     .order_by(t.queued_at, t.job_id)).scalars())

    def phases(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The phases of some jobs (jobs that are gone are missing)."""
        if not job_ids:
            return {}
        t = uws_job.c
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(t.job_id, t.phase)
                                     .where(t.job_id.in_(list(job_ids)))).tuples().all())

    # -- writing -----------------------------------------------------------

    def _transaction(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in a transaction; again after a deadlock or a lost race."""
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except _Conflict:
                time.sleep(min(0.05, 0.001 * 2 ** attempt) * secrets.randbelow(100) / 100)
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc) or attempt == UPDATE_ATTEMPTS - 1:
                    raise
        raise RuntimeError(f"a job changed {UPDATE_ATTEMPTS} times while it was being "
                           "updated; try again")

    def _ensure_owner(self, owner_key: str) -> None:
        """Make the owner's lock row (before the transaction that locks it)."""
        with self.engine.connect() as conn:
            if conn.execute(sa.select(uws_owner.c.owner_key)
                            .where(uws_owner.c.owner_key == owner_key)).first():
                return
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as conn:
            conn.execute(uws_owner.insert().values(owner_key=owner_key, locked_at=now()))

    @staticmethod
    def _lock_owner(conn: sa.Connection, owner_key: str) -> None:
        """Take the owner's row lock until the transaction ends (quota checks).

        On SQLite the UPDATE starts the write transaction, which serialises all
        writers; on MariaDB it locks the owner's row (made by _ensure_owner).
        """
        conn.execute(uws_owner.update().where(uws_owner.c.owner_key == owner_key)
                     .values(locked_at=now()))

    def _write(self, conn: sa.Connection, before: Job, after: Job) -> None:
        """Store the columns ``after`` changed, if the row is still ``before``."""
        if before.phase != "QUEUED" and after.phase == "QUEUED":
            after.queued_at = now()
        old, new = _to_row(before), _to_row(after)
        changed = {k: v for k, v in new.items() if old[k] != v and k != "version"}
        if not changed:
            return
        done = conn.execute(uws_job.update().where(
            uws_job.c.job_id == before.job_id, uws_job.c.version == before.version
        ).values(**changed, version=before.version + 1))
        if done.rowcount != 1:
            raise _Conflict
        after.version = before.version + 1

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
        base_url: str | None = None,
    ) -> Job:
        """Make a new job (PENDING, or QUEUED when ``run``) and store its upload parts.

        ``owner``/``owner_id`` name the account (None for anonymous jobs, which
        record the ``client`` key instead).  Only upload parts that an UPLOAD
        parameter names are stored.  With a ``quota``, raises QuotaExceeded
        (and makes nothing) when the owner has too many jobs.
        """
        job = Job(
            job_id=secrets.token_hex(JOB_ID_BYTES),
            owner=owner,
            creation_time=now(),
            execution_duration=execution_duration,
            destruction=destruction,
            parameters=list(parameters),
            owner_id=owner_id,
            client=client if owner is None and owner_id is None else None,
            base_url=base_url,
        )
        if run:
            job.phase = "QUEUED"
            job.queued_at = job.creation_time
        folder = self.folder(job.job_id)
        folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)
        evicted: list[str] = []

        def insert(conn: sa.Connection) -> None:
            evicted.clear()
            if quota is not None:
                self._lock_owner(conn, job.owner_key)
                existing, active = self._usage(conn, job.owner_key)
                if job.anonymous and quota.existing and existing >= quota.existing:
                    # an anonymous client cannot list its jobs to delete old
                    # ones: its oldest finished jobs make room instead
                    evicted.extend(self._evict(conn, job.owner_key,
                                               existing - quota.existing + 1))
                    existing -= len(evicted)
                check_quota(quota, existing, active, new=True, run=run)
            conn.execute(uws_job.insert().values(**_to_row(job)))

        try:
            job.uploads = self._store_uploads(folder, job.upload_references(), {}, uploads)[0]
            if quota is not None:
                self._ensure_owner(job.owner_key)
            self._transaction(insert)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        for gone in evicted:
            self._remove_folder(gone)
        return job

    def _evict(self, conn: sa.Connection, owner_key: str, count: int) -> list[str]:
        """Delete up to ``count`` of an owner's finished jobs, oldest first (rows only)."""
        t = uws_job.c
        ids = list(conn.execute(
            sa.select(t.job_id).where(t.owner_key == owner_key,
                                      t.phase.in_(sorted(FINAL_PHASES)))
            .order_by(t.creation_time, t.job_id).limit(max(0, count))).scalars())
        gone = []
        for job_id in ids:
            if conn.execute(uws_job.delete().where(t.job_id == job_id)).rowcount:
                gone.append(job_id)
        return gone

    def evict_finished(self, owner_key: str, count: int) -> int:
        """Delete up to ``count`` of an owner's finished jobs, oldest first.

        Finished: in a final phase (COMPLETED, ERROR, ABORTED).  Returns how many
        were deleted.
        """
        gone = self._transaction(lambda conn: self._evict(conn, owner_key, count))
        for job_id in gone:
            self._remove_folder(job_id)
        return len(gone)

    def start(self, job_id: str, change: Callable[[Job], T],
              quota: Quota | None = None) -> tuple[Job, T] | None:
        """Like :meth:`update`, for a change that may queue the job (PHASE=RUN).

        With a ``quota``, raises QuotaExceeded (the job unchanged) when the
        change would queue a job of an owner with too many active jobs.
        """
        if quota is None or not quota.active:
            return self.update(job_id, change)
        job = self.get(job_id)
        if job is None:
            return None
        self._ensure_owner(job.owner_key)

        def work(conn: sa.Connection) -> tuple[Job, T] | None:
            self._lock_owner(conn, job.owner_key)
            before = self._get(conn, job_id)  # as it is now that the owner is locked
            if before is None:
                return None
            active = self._usage(conn, job.owner_key)[1]
            after = _copy(before)
            value = change(after)
            if after.phase == "QUEUED" and before.phase != "QUEUED":
                check_quota(quota, 0, active, new=False, run=True)
            self._write(conn, before, after)
            return after, value

        return self._transaction(work)

    def update(self, job_id: str, change: Callable[[Job], T]) -> tuple[Job, T] | None:
        """Apply ``change`` to a job and store the result (atomically).

        Returns the changed job and what ``change`` returned, or None when the
        job does not exist.  Exceptions from ``change`` (JobStateError) pass
        through and leave the job as it was.  ``change`` may be called more
        than once (when another process changed the job meanwhile).
        """
        if not self.valid_id(job_id):
            return None

        def work(conn: sa.Connection) -> tuple[Job, T] | None:
            before = self._get(conn, job_id)
            if before is None:
                return None
            after = _copy(before)
            value = change(after)
            self._write(conn, before, after)
            return after, value

        return self._transaction(work)

    def add_uploads(self, job_id: str, uploads: Mapping[str, IO[bytes]],
                    change: Callable[[Job], None]) -> Job | None:
        """Store more upload parts and apply ``change`` (PENDING jobs; atomically).

        The parts are written to new files first; the files they replace, and
        the parts no UPLOAD names any more, are removed once the change is
        stored.
        """
        if not self.valid_id(job_id) or not self.folder(job_id).is_dir():
            return None
        written: dict[str, str] = {}
        obsolete: list[str] = []

        def apply(job: Job) -> None:
            nonlocal written
            change(job)
            if not written:
                written, _ = self._store_uploads(self.folder(job_id), job.upload_references(),
                                                 {}, uploads)
            wanted = job.upload_references()
            merged = {n: f for n, f in job.uploads.items() if n in wanted}
            merged.update({n: f for n, f in written.items() if n in wanted})
            obsolete[:] = [f for f in job.uploads.values() if f not in merged.values()]
            job.uploads = merged

        try:
            done = self.update(job_id, apply)
        except BaseException:
            self._unlink(job_id, written.values())
            raise
        if done is None:
            self._unlink(job_id, written.values())
            return None
        self._unlink(job_id, obsolete)
        self._unlink(job_id, [f for f in written.values() if f not in done[0].uploads.values()])
        return done[0]

    def _store_uploads(self, folder: Path, wanted: set[str], current: dict[str, str],
                       uploads: Mapping[str, IO[bytes]]) -> tuple[dict[str, str], list[str]]:
        """Write the parts in ``wanted`` to new files; (part -> file name, replaced files)."""
        stored = dict(current)
        replaced = []
        for name, stream in uploads.items():
            if name not in wanted:  # no UPLOAD names it: dropped, never stored
                continue
            file_name = f"upload-{secrets.token_hex(6)}"
            with open_private(folder / (file_name + ".tmp")) as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            os.replace(folder / (file_name + ".tmp"), folder / file_name)
            if name in stored:
                replaced.append(stored[name])
            stored[name] = file_name
        return stored, replaced

    def _unlink(self, job_id: str, file_names: Any) -> None:
        for name in list(file_names):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                (self.folder(job_id) / name).unlink()

    def delete(self, job_id: str) -> bool:
        """Remove a job and everything it stored; False if there was no such job."""
        if not self.valid_id(job_id):
            return False

        def work(conn: sa.Connection) -> bool:
            return bool(conn.execute(uws_job.delete().where(uws_job.c.job_id == job_id))
                        .rowcount)

        if not self._transaction(work):
            return False
        self._remove_folder(job_id)
        return True

    def _remove_folder(self, job_id: str) -> None:
        trash = self.trash_dir / f"{job_id}-{secrets.token_hex(4)}"
        try:
            os.rename(self.folder(job_id), trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def make_private(self) -> None:
        """Give every job folder mode 0700 and its files 0600 (stores made by old versions)."""
        for path in (self.root, self.trash_dir):
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

    # -- the runner's side -------------------------------------------------

    def claim_next(self, choose: Callable[[list[tuple[str, str, bool]]], str | None], *,
                   node: str, runner: str, lease: float) -> Job | None:
        """Claim one queued job for ``runner`` (QUEUED -> EXECUTING) and return it.

        ``choose`` gets the queue as (job id, owner key, anonymous), oldest
        first, and names the job to claim (None: none).  MariaDB/MySQL: the
        queue is read with ``FOR UPDATE SKIP LOCKED`` (READ COMMITTED, so no
        gap locks), the claim made in the same transaction; SQLite: the
        UPDATE's ``phase = 'QUEUED'`` condition decides.  None when nothing is
        chosen or another runner won the job.
        """
        t = uws_job.c
        query = (sa.select(t.job_id, t.owner_key, t.owner_id, t.owner)
                 .where(t.phase == "QUEUED").order_by(t.queued_at, t.job_id).limit(QUEUE_SCAN))
        options: dict[str, Any] = {}
        if self.mysql:  # MariaDB before 10.6: FOR UPDATE, runners wait in turn
            query = query.with_for_update(skip_locked=self.skip_locked)
            options["isolation_level"] = "READ COMMITTED"
        claimed = None
        for attempt in (1, 2):
            try:
                with self.engine.connect().execution_options(**options) as conn, conn.begin():
                    rows = conn.execute(query).all()
                    job_id = choose([(r.job_id, r.owner_key, r.owner_id is None
                                      and r.owner is None) for r in rows])
                    if job_id is None:
                        return None
                    moment = now()
                    done = conn.execute(uws_job.update().where(
                        t.job_id == job_id, t.phase == "QUEUED").values(
                        phase="EXECUTING", start_time=moment, node=node, runner=runner,
                        lease_until=moment + lease, version=t.version + 1))
                    claimed = job_id if done.rowcount == 1 else None
                break
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc) or attempt == 2:
                    raise
        return None if claimed is None else self.get(claimed)

    def heartbeat(self, runner: str, lease: float) -> int:
        """Extend the lease of the runner's EXECUTING jobs; returns how many."""
        t = uws_job.c
        with self.engine.begin() as conn:
            return conn.execute(uws_job.update().where(
                t.runner == runner, t.phase == "EXECUTING").values(
                lease_until=now() + lease)).rowcount

    def expire_leases(self, lease: float, moment: float | None = None) -> int:
        """Put EXECUTING jobs whose lease has passed into ERROR; returns how many."""
        moment = now() if moment is None else moment
        return self._fail_executing(uws_job.c.lease_until < moment,
                                    LEASE_MESSAGE.format(lease=f"{lease:g}"), moment)

    def fail_node(self, node: str) -> int:
        """Put the EXECUTING jobs of ``node`` into ERROR (it restarted); how many."""
        return self._fail_executing(uws_job.c.node == node, RESTART_MESSAGE, now())

    def _fail_executing(self, condition: Any, message: str, moment: float) -> int:
        t = uws_job.c
        with self.engine.begin() as conn:
            return conn.execute(uws_job.update().where(t.phase == "EXECUTING", condition)
                                .values(phase="ERROR", error_message=message,
                                        error_type="transient",
                                        end_time=sa.func.coalesce(t.end_time, moment),
                                        version=t.version + 1)).rowcount

    def expired(self, moment: float) -> list[str]:
        """Ids of the jobs whose destruction time is not after ``moment``."""
        t = uws_job.c
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.job_id).where(
                t.destruction.is_not(None), t.destruction <= moment)).scalars())

    def import_folders(self) -> int:
        """Move the jobs of the folder store of earlier versions (``job.json``) in.

        Their files stay; a job that was EXECUTING ends in ERROR.  Returns how
        many were imported.
        """
        count = 0
        with os.scandir(self.root) as entries:
            folders = [Path(e.path) for e in entries if e.is_dir() and self.valid_id(e.name)]
        for folder in folders:
            state = folder / "job.json"
            try:
                job = Job.from_json(state.read_text("utf-8"))
            except (FileNotFoundError, ValueError, TypeError):
                continue
            if job.phase == "EXECUTING":
                set_error(job, RESTART_MESSAGE, "transient")
            if job.phase == "QUEUED":
                job.queued_at = job.creation_time
            job.version = 0
            with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as conn:
                conn.execute(uws_job.insert().values(**_to_row(job)))
                count += 1
            for name in ("job.json", "lock"):
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
        for old in (".queue", ".owners"):
            shutil.rmtree(self.root / old, ignore_errors=True)
        for old in (".quota.lock", ".runner.lock"):
            with contextlib.suppress(FileNotFoundError):
                (self.root / old).unlink()
        return count


def _copy(job: Job) -> Job:
    return Job(**{**asdict(job), "parameters": list(job.parameters),
                  "uploads": dict(job.uploads)})


# --------------------------------------------------------------------------
# State changes shared by the web side and the runner


def set_error(job: Job, message: str, error_type: str = "fatal") -> None:
    """Put a job into ERROR with a message for people."""
    job.phase = "ERROR"
    job.error_message = message
    job.error_type = error_type
    job.end_time = job.end_time or now()


def recover(store: JobStore, node: str) -> int:
    """Jobs this node left EXECUTING when it stopped go to ERROR.

    Call before the node's runner starts (other nodes' jobs are left to their
    leases).  Returns how many jobs went to ERROR.  Also makes the files of
    older stores private (0700/0600) and imports their folder jobs.
    """
    store.make_private()
    store.import_folders()
    return store.fail_node(node)


def sweep(store: JobStore, moment: float | None = None) -> list[str]:
    """Delete the jobs whose destruction time has passed; returns their ids."""
    moment = now() if moment is None else moment
    gone = [job_id for job_id in store.expired(moment) if store.delete(job_id)]
    # leftovers of deletions interrupted by a crash
    for path in store.trash_dir.iterdir():
        shutil.rmtree(path, ignore_errors=True)
    return gone


def open_store(settings: Settings, engine: sa.Engine | None = None) -> JobStore:
    """The job store of the settings (``engine``: default a new writer engine)."""
    from voservice.stores.metadata import make_engine

    if engine is None:
        engine = make_engine(settings.metadata_url, pool_size=2, max_overflow=2,
                             pool_timeout=30)
    return JobStore(engine, settings.get("server", "jobs_path"))


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

        if job.base_url and not settings.get("server", "public_url"):
            settings = settings.with_overrides({"server": {"public_url": job.base_url}})
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


def _job_process(settings: Settings, inherited: sa.Engine, job_id: str) -> None:
    inherited.dispose(close=False)  # the runner's pooled connections stay the runner's

    def stop(_signum: int, _frame: Any) -> None:
        # the interrupted connection cannot be reset cleanly: that is expected
        logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
        raise JobStopped

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(JobStopped):  # also a stop that comes during the finally
        try:
            execute(settings, open_store(settings), job_id)
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
    """Runs queued jobs, at most ``workers`` at once, each in its own process.

    Several runners (one per host) may work on one store: each claims jobs
    atomically (:meth:`JobStore.claim_next`), renews the lease of its jobs
    every third of ``[server] job_lease`` and fails the jobs of runners whose
    lease passed.
    """

    def __init__(self, settings: Settings, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self.workers = settings.get("server", "job_workers")
        self.lease = float(settings.get("server", "job_lease"))
        self.node = node_name(settings)
        self.runner_id = f"{self.node}/{os.getpid()}/{secrets.token_hex(4)}"
        self.running: dict[str, _Running] = {}
        #: owner key -> monotonic time its last job started (round-robin)
        self.last_start: dict[str, float] = {}
        self.stopping = False
        self._context = multiprocessing.get_context("fork")
        self._last_sweep = 0.0
        self._last_beat = 0.0

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
        """One round: watch running jobs, renew leases, start queued ones, sweep."""
        self.watch()
        if time.monotonic() - self._last_beat >= self.lease / 3:
            self._last_beat = time.monotonic()
            if self.running:
                self.store.heartbeat(self.runner_id, self.lease)
            expired = self.store.expire_leases(self.lease)
            if expired:
                log.warning("%d async job(s) of a host without heartbeat were stopped",
                            expired)
        self.start_queued()
        if time.monotonic() - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = time.monotonic()
            sweep(self.store)

    def watch(self) -> None:
        """Reap finished job processes; stop aborted, deleted and overrunning jobs."""
        phases = self.store.phases(list(self.running))
        for job_id, run in list(self.running.items()):
            phase = phases.get(job_id)
            if not run.process.is_alive():
                run.process.join()
                del self.running[job_id]
                if phase == "EXECUTING":
                    _finish_error(self.store, job_id, CRASH_MESSAGE, "transient")
                continue
            if phase != "EXECUTING":  # deleted, aborted, or failed by its lease
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
        """Claim queued jobs (QUEUED -> EXECUTING) while workers are free, fairly."""
        while len(self.running) < self.workers:
            running = [(r.owner_key, r.anonymous) for r in self.running.values()]

            def choose(queued: list[tuple[str, str, bool]],
                       running: list[tuple[str, bool]] = running) -> str | None:
                return pick_next(queued, running, self.workers, self.last_start)

            job = self.store.claim_next(choose, node=self.node, runner=self.runner_id,
                                        lease=self.lease)
            if job is None:
                return
            process = self._context.Process(
                target=_job_process,
                args=(self.settings, self.store.engine, job.job_id),
                name=f"skvo-job-{job.job_id}",
            )
            process.start()
            log.info("async job %s started on %s", job.job_id, self.node)
            deadline = (
                time.monotonic() + job.execution_duration + OVERRUN_SECONDS
                if job.execution_duration
                else None
            )
            self.running[job.job_id] = _Running(
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
    store = open_store(settings)
    node = node_name(settings)
    lock = _runner_lock(store.root, node, wait=True, parent_pid=parent_pid)
    if lock is None:
        return
    try:
        recover(store, node)
        _preload()
        Runner(settings, store).run_forever(parent_pid)
    finally:
        os.close(lock)


def _preload() -> None:
    """Import what a job runs once, in the runner: job processes fork from it
    (seconds saved per job on a loaded machine)."""
    import astropy.io.votable  # noqa: F401  (TAP uploads)

    import adql
    from voservice import context, query  # noqa: F401

    adql.parse("SELECT 1 AS one FROM t")  # builds the parser tables (2 s on a busy host)


def _runner_lock(root: Path, node: str, *, wait: bool,
                 parent_pid: int | None = None) -> int | None:
    """Take the node's runner lock (one runner per node); None if not taken."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", node)
    fd = os.open(root / f".runner-{safe}.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
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
    """Recover this node's jobs after a stop, then fork the job runner process.

    Recovery happens here, before the web service answers, so no client sees a
    job of this node EXECUTING that nothing runs any more.  (A plain ``os.fork``: `skvo serve`
    forks its workers from the same process, and they must not inherit a
    multiprocessing child they would try to join at exit.)
    """
    from voservice.stores.metadata import make_engine

    engine = make_engine(settings.metadata_url, poolclass=sa.pool.NullPool)
    try:
        store = open_store(settings, engine)
        node = node_name(settings)
        lock = _runner_lock(store.root, node, wait=False)
        if lock is not None:  # else a runner of this node still works
            try:
                count = recover(store, node)
                if count:
                    log.warning("%d async job(s) were executing when the service stopped",
                                count)
            finally:
                os.close(lock)
    finally:
        engine.dispose()
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
