"""UWS 1.1 job service: asynchronous TAP under ``/tap/async``.

The TAP blueprint mounts these routes with :func:`register_routes`.  Requests
only read and change the job store (:mod:`voservice.jobs`: rows in the metadata
database, written through the writer engine, and files in ``[server]
jobs_path``), so any host of an archive answers any job URL; the queries run
in the job runners that ``skvo serve`` starts on each host.  Parameters are stored as
posted and validated when the job runs, as TAP requires.

Access: a job belongs to the account that created it (by account id), or to
nobody when created anonymously.  An account sees and lists only its own jobs
(another account's job is 404).  Anonymous jobs are listed to nobody: the long
random job id is the key, so an anonymous client that has a job's URL may read,
change, abort and delete it.  Administrators see every job.

Quotas (``[vo] job_quota_*``): an owner -- an account, or for anonymous jobs
the client address -- may keep a limited number of jobs (more: 403) and have
a limited number QUEUED or EXECUTING (more: 429 with Retry-After).
Administrators have no quota.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import quote

from flask import Blueprint, Response, request, send_file, url_for
from lxml import etree
from werkzeug.datastructures import FileStorage, MultiDict

from voservice import jobs
from voservice.context import principal, services
from voservice.jobs import Job, JobStateError, JobStore
from voservice.limits import wait_slot
from voservice.protocols import dali
from voservice.votable.xmlutil import clean

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
UWS_VERSION = "1.1"
_NSMAP = {"uws": UWS_NS, "xlink": XLINK_NS, "xsi": XSI_NS}

#: UWS control parameters: they steer the job, they are not job parameters
CONTROL_PARAMETERS = frozenset({"PHASE"})
WAIT_CAP_SECONDS = 60.0
WAIT_POLL_SECONDS = 0.1


class UwsError(Exception):
    """Ends a request with an HTTP status and a plain-text message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _uws_view(func: Callable[..., Response]) -> Callable[..., Response]:
    """Turn UwsError into a plain-text response."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return func(*args, **kwargs)
        except UwsError as exc:
            return Response(
                f"{exc}\n", status=exc.status, mimetype="text/plain", headers=exc.headers
            )

    return wrapper


def register_routes(bp: Blueprint) -> None:
    """Add the UWS job list ``/async`` and its job resources to the TAP blueprint."""
    rules: list[tuple[str, str, Callable[..., Response], list[str]]] = [
        ("/async", "uws_jobs", job_list, ["GET", "POST"]),
        ("/async/<job_id>", "uws_job", job_resource, ["GET", "POST", "DELETE"]),
        ("/async/<job_id>/phase", "uws_phase", job_phase, ["GET", "POST"]),
        ("/async/<job_id>/executionduration", "uws_executionduration",
         job_execution_duration, ["GET", "POST"]),
        ("/async/<job_id>/destruction", "uws_destruction", job_destruction, ["GET", "POST"]),
        ("/async/<job_id>/quote", "uws_quote", job_quote, ["GET"]),
        ("/async/<job_id>/owner", "uws_owner", job_owner, ["GET"]),
        ("/async/<job_id>/error", "uws_error", job_error, ["GET"]),
        ("/async/<job_id>/parameters", "uws_parameters", job_parameters, ["GET", "POST"]),
        ("/async/<job_id>/parameters/<path:name>", "uws_parameter", job_parameter, ["GET"]),
        ("/async/<job_id>/results", "uws_results", job_results, ["GET"]),
        ("/async/<job_id>/results/<result_id>", "uws_result", job_result, ["GET"]),
    ]
    for rule, endpoint, view, methods in rules:
        bp.add_url_rule(rule, endpoint=endpoint, view_func=_uws_view(view), methods=methods)


# --------------------------------------------------------------------------
# Helpers


def store() -> JobStore:
    """The job store of this application (one per process, cached)."""
    svc = services()
    cached = svc.extras.get("uws_store")
    if cached is None:
        cached = svc.extras["uws_store"] = jobs.open_store(svc.settings, svc.writer())
    return cached


def _jobs_url() -> str:
    path = url_for(f"{request.blueprint}.uws_jobs")
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root):]
    return services().base_url + path


def _job_url(job_id: str) -> str:
    return f"{_jobs_url()}/{job_id}"


def _params() -> list[tuple[str, str]]:
    """Query-string and form parameters in order, names upper-case."""
    return list(dali.params().items(multi=True))


def _one(pairs: list[tuple[str, str]], name: str) -> str | None:
    """The value of a single-valued parameter (400 if given with different values)."""
    try:
        return dali.single(MultiDict(pairs), name)
    except dali.UsageError as exc:
        raise UwsError(400, f"UsageFault: {exc}") from None


def _owns(job: Job) -> bool:
    """Is the job the requesting account's own (by account id; name as a cross-check)?"""
    who = principal()
    if who.anonymous or job.anonymous:
        return False
    if job.owner_id is None:  # made before jobs recorded the account id
        return job.owner == who.name
    return job.owner_id == who.user_id and job.owner == who.name


def _visible(job: Job) -> bool:
    """May the requesting user read and change this job (given its id)?"""
    who = principal()
    return who.admin or _owns(job) or (job.anonymous and who.anonymous)


def _listed(job: Job) -> bool:
    """Does the job appear in the requesting user's job list?"""
    return principal().admin or _owns(job)


def _load(job_id: str) -> Job:
    """The job, if it exists and the requesting user may see it."""
    job = store().get(job_id)
    if job is None:
        raise UwsError(404, f"UsageFault: no job {job_id!r} (unknown, or deleted)")
    if not _visible(job):
        if principal().anonymous:
            raise UwsError(
                401,
                f"AuthenticationFault: job {job_id!r} belongs to a user; log in",
                {"WWW-Authenticate": 'Basic realm="SKVO"'},
            )
        raise UwsError(404, f"UsageFault: no job {job_id!r} (unknown, or deleted)")
    return job


def _quota() -> jobs.Quota | None:
    """The job quota of the requesting user (None: administrators have none)."""
    who = principal()
    if who.admin:
        return None
    settings = services().settings
    existing = "job_quota_existing_anonymous" if who.anonymous else "job_quota_existing"
    return jobs.Quota(
        existing=int(settings.get("vo", existing)),
        active=int(settings.get("vo", "job_quota_active")),
    )


def _quota_error(exc: jobs.QuotaExceeded) -> UwsError:
    """403 for too many jobs kept, 429 with Retry-After for too many running."""
    who = principal()
    whose = "anonymous clients from your address" if who.anonymous else f"user {who.name!r}"
    message = f"UsageFault: job quota of {whose}: {exc}"
    if exc.retry_after is None:
        return UwsError(403, message)
    return UwsError(429, message, {"Retry-After": str(exc.retry_after)})


def _update(job_id: str, change: Callable[[Job], Any]) -> Job:
    _load(job_id)
    try:
        done = store().update(job_id, change)
    except JobStateError as exc:
        raise UwsError(403, f"UsageFault: {exc}") from None
    if done is None:
        raise UwsError(404, f"UsageFault: no job {job_id!r} (unknown, or deleted)")
    return done[0]


def _see_job(job_id: str) -> Response:
    return Response(status=303, headers={"Location": _job_url(job_id)})


def _text(value: str) -> Response:
    return Response(value, mimetype="text/plain")


def _xml(root: etree._Element) -> Response:
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return Response(body, mimetype="text/xml")


def _uws(parent: etree._Element | None, tag: str, text: str | None = None,
         **attrs: str) -> etree._Element:
    qname = f"{{{UWS_NS}}}{tag}"
    el = etree.Element(qname, nsmap=_NSMAP) if parent is None else etree.SubElement(parent, qname)
    for key, value in attrs.items():
        el.set(key, clean(value))
    if text is not None:
        el.text = clean(text)
    return el


def _nillable(parent: etree._Element, tag: str, text: str | None) -> None:
    el = _uws(parent, tag, text or None)
    if not text:
        el.set(f"{{{XSI_NS}}}nil", "true")


def _default_duration() -> int:
    return int(services().settings.get("vo", "execution_duration"))


def _clip_duration(requested: int) -> int:
    """Durations beyond the configured limit (and 0 = unlimited) get the limit."""
    limit = _default_duration()
    if limit and (requested == 0 or requested > limit):
        return limit
    return requested


def _max_destruction() -> float:
    return jobs.now() + 86400.0 * services().settings.get("vo", "destruction_days")


def _upload_parts(params: list[tuple[str, str]], extra_references: frozenset[str] = frozenset()
                  ) -> tuple[list[tuple[str, str]], dict[str, IO[bytes]]]:
    """Split the request into plain parameters and inline upload parts.

    Upload parts are the multipart files that an UPLOAD value (posted now, or
    ``extra_references``: of the job already) names as ``param:part``; a plain
    form field so named counts as an upload part too.  Other file parts are
    dropped.
    """
    limit = services().settings.get("vo", "upload_max_bytes")
    referenced = jobs.upload_references(params) | set(extra_references)
    parts: dict[str, IO[bytes]] = {}
    for name, storages in request.files.lists():
        if name not in referenced:  # no UPLOAD names it: dropped, never stored
            continue
        storage: FileStorage = storages[0]
        stream = storage.stream
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        if size > limit:
            raise UwsError(413, f"UsageFault: upload {name!r} has {size} bytes; "
                                f"the limit is {limit} bytes")
        parts[name] = stream
    moved = {ref for ref in referenced if ref in request.form and ref not in parts}
    for ref in moved:
        parts[ref] = io.BytesIO(request.form[ref].encode("utf-8"))
    moved_names = {ref.upper() for ref in moved}
    kept = [(n, v) for n, v in params if n not in moved_names]
    return kept, parts


# --------------------------------------------------------------------------
# XML documents


def job_document(job: Job) -> etree._Element:
    """The ``<uws:job>`` element of a job."""
    root = _uws(None, "job", version=UWS_VERSION)
    _uws(root, "jobId", job.job_id)
    if job.run_id is not None:
        _uws(root, "runId", job.run_id)
    _nillable(root, "ownerId", job.owner)
    _uws(root, "phase", job.phase)
    _nillable(root, "quote", None)
    _uws(root, "creationTime", jobs.iso(job.creation_time))
    _nillable(root, "startTime", jobs.iso(job.start_time))
    _nillable(root, "endTime", jobs.iso(job.end_time))
    _uws(root, "executionDuration", str(job.execution_duration))
    _nillable(root, "destruction", jobs.iso(job.destruction))
    root.append(parameters_document(job))
    root.append(results_document(job))
    if job.phase == "ERROR" and job.error_message:
        summary = _uws(root, "errorSummary", type=job.error_type, hasDetail="true")
        _uws(summary, "message", job.error_message)
    return root


def parameters_document(job: Job) -> etree._Element:
    """The ``<uws:parameters>`` element of a job."""
    root = _uws(None, "parameters")
    base = _job_url(job.job_id)
    for name, value in job.parameters:
        if clean(value) != value:  # XML cannot hold it: by reference
            _uws(root, "parameter", f"{base}/parameters/{quote(name, safe='')}",
                 id=name, byReference="true")
        else:
            _uws(root, "parameter", value, id=name)
    referenced = job.upload_references()
    for name in job.uploads:
        if name in referenced:
            _uws(root, "parameter", f"{base}/parameters/{quote(name, safe='')}",
                 id=name, byReference="true")
    return root


def results_document(job: Job) -> etree._Element:
    """The ``<uws:results>`` element of a job."""
    root = _uws(None, "results")
    if job.phase == "COMPLETED" and job.result_mime is not None:
        el = _uws(root, "result", id="result")
        el.set(f"{{{XLINK_NS}}}type", "simple")
        el.set(f"{{{XLINK_NS}}}href", f"{_job_url(job.job_id)}/results/result")
        el.set("size", str(job.result_size or 0))
        el.set("mime-type", job.result_mime)
    return root


def job_list_document(job_list: list[Job]) -> etree._Element:
    """The ``<uws:jobs>`` element listing some jobs."""
    root = _uws(None, "jobs", version=UWS_VERSION)
    base = _jobs_url()
    for job in job_list:
        ref = _uws(root, "jobref", id=job.job_id)
        ref.set(f"{{{XLINK_NS}}}type", "simple")
        ref.set(f"{{{XLINK_NS}}}href", f"{base}/{job.job_id}")
        _uws(ref, "phase", job.phase)
        if job.run_id is not None:
            _uws(ref, "runId", job.run_id)
        _nillable(ref, "ownerId", job.owner)
        _uws(ref, "creationTime", jobs.iso(job.creation_time))
    return root


# --------------------------------------------------------------------------
# Views


def job_list() -> Response:
    """GET: the caller's jobs (PHASE, AFTER, LAST filters); POST: create a job."""
    if request.method == "POST":
        return _create_job()
    params = _params()
    phases = {v.strip().upper() for n, v in params if n == "PHASE"}
    unknown = phases - set(jobs.PHASES)
    if unknown:
        raise UwsError(400, f"UsageFault: PHASE={sorted(unknown)[0]!r} is not a UWS phase; "
                            f"use one of {', '.join(jobs.PHASES)}")
    after = _one(params, "AFTER")
    after_time = None
    if after:
        try:
            after_time = jobs.parse_iso(after)
        except ValueError as exc:
            raise UwsError(400, f"UsageFault: AFTER={exc}") from None
    last_text = _one(params, "LAST")
    last = None
    if last_text:
        try:
            last = int(last_text)
        except ValueError:
            last = -1
        if last <= 0:
            raise UwsError(400, f"UsageFault: LAST={last_text!r} must be a positive integer")
    who = principal()
    if who.anonymous:  # anonymous jobs are listed to nobody
        return _xml(job_list_document([]))
    selected = store().listing(owner_id=who.user_id, owner=who.name, admin=who.admin,
                               phases=phases, after=after_time, last=last)
    return _xml(job_list_document([job for job in selected if _listed(job)]))


def _create_job() -> Response:
    params = _params()
    phase = _one(params, "PHASE")
    if phase is not None and phase.upper() != "RUN":
        raise UwsError(400, f"UsageFault: PHASE={phase!r} on job creation; only RUN is allowed")
    params = [(n, v) for n, v in params if n not in CONTROL_PARAMETERS]
    params, parts = _upload_parts(params)
    who = principal()
    try:
        job = store().create(
            who.name,
            params,
            parts,
            execution_duration=_default_duration(),
            destruction=_max_destruction(),
            run=phase is not None,
            owner_id=who.user_id,
            client=jobs.client_key(request.remote_addr) if who.anonymous else None,
            quota=_quota(),
            base_url=services().base_url,
        )
    except jobs.QuotaExceeded as exc:
        raise _quota_error(exc) from None
    return _see_job(job.job_id)


def job_resource(job_id: str) -> Response:
    """GET the job document (WAIT blocks); DELETE or POST ACTION=DELETE removes it."""
    if request.method == "GET":
        return _xml(job_document(_wait(_load(job_id))))
    if request.method == "POST":
        action = _one(_params(), "ACTION")
        if action is None or action.upper() != "DELETE":
            _load(job_id)
            raise UwsError(403, "UsageFault: POST to a job takes only ACTION=DELETE; set "
                                "parameters at {job}/parameters, the phase at {job}/phase")
    _load(job_id)
    store().delete(job_id)
    return Response(status=303, headers={"Location": _jobs_url()})


def _wait(job: Job) -> Job:
    """UWS 1.1 blocking: WAIT=n seconds (-1: as long as we dare) for a phase change."""
    params = _params()
    wait_text = _one(params, "WAIT")
    if wait_text is None:
        return job
    try:
        wait = float(wait_text)
    except ValueError:
        raise UwsError(400, f"UsageFault: WAIT={wait_text!r} must be a number of seconds") from None
    wait = WAIT_CAP_SECONDS if wait < 0 else min(wait, WAIT_CAP_SECONDS)
    expected = _one(params, "PHASE")
    if job.phase not in jobs.ACTIVE_PHASES:
        return job
    if expected is not None and expected.strip().upper() != job.phase:
        return job
    start_phase = job.phase
    deadline = time.monotonic() + wait
    # blocked WAITs hold a request thread: capped per process and per client; without
    # a slot the current phase is answered at once, as UWS 1.1 allows
    with wait_slot(services().settings, request.remote_addr or "-") as granted:
        while granted and time.monotonic() < deadline:
            time.sleep(WAIT_POLL_SECONDS)
            current = store().get(job.job_id)
            if current is None:
                raise UwsError(404, f"UsageFault: job {job.job_id!r} was deleted")
            job = current
            if job.phase != start_phase:
                break
    return job


def job_phase(job_id: str) -> Response:
    """GET the phase; POST PHASE=RUN queues the job, PHASE=ABORT stops it."""
    if request.method == "GET":
        return _text(_load(job_id).phase)
    value = (_one(_params(), "PHASE") or "").strip().upper()
    if value == "RUN":
        _load(job_id)
        try:
            started = store().start(job_id, _run, _quota())
        except JobStateError as exc:
            raise UwsError(403, f"UsageFault: {exc}") from None
        except jobs.QuotaExceeded as exc:
            raise _quota_error(exc) from None
        if started is None:
            raise UwsError(404, f"UsageFault: no job {job_id!r} (unknown, or deleted)")
    elif value == "ABORT":
        _update(job_id, _abort)
    else:
        _load(job_id)
        raise UwsError(400, "UsageFault: POST to {job}/phase takes PHASE=RUN or PHASE=ABORT")
    return _see_job(job_id)


def _run(job: Job) -> None:
    if job.phase in ("PENDING", "HELD"):
        job.phase = "QUEUED"
    elif job.phase not in ("QUEUED", "EXECUTING"):
        raise JobStateError(f"the job is {job.phase} and cannot run again; create a new job")


def _abort(job: Job) -> None:
    if job.phase in ("PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED"):
        job.phase = "ABORTED"
        job.end_time = jobs.now()
    elif job.phase != "ABORTED":
        raise JobStateError(f"the job is {job.phase} already and cannot be aborted")


def job_execution_duration(job_id: str) -> Response:
    """GET/POST the execution duration in seconds (0 = unlimited)."""
    if request.method == "GET":
        return _text(str(_load(job_id).execution_duration))
    text = _one(_params(), "EXECUTIONDURATION")
    try:
        seconds = int((text or "").strip())
        if seconds < 0:
            raise ValueError
    except ValueError:
        _load(job_id)
        raise UwsError(400, f"UsageFault: EXECUTIONDURATION={text!r} must be a "
                            "non-negative integer (seconds)") from None
    seconds = _clip_duration(seconds)

    def change(job: Job) -> None:
        if job.phase not in ("PENDING", "QUEUED", "HELD"):
            raise JobStateError(f"the job is {job.phase}; its execution duration is fixed")
        job.execution_duration = seconds

    _update(job_id, change)
    return _see_job(job_id)


def job_destruction(job_id: str) -> Response:
    """GET/POST the destruction time (ISO 8601, UTC)."""
    if request.method == "GET":
        return _text(jobs.iso(_load(job_id).destruction))
    text = _one(_params(), "DESTRUCTION")
    try:
        moment = jobs.parse_iso(text or "")
    except ValueError as exc:
        _load(job_id)
        raise UwsError(400, f"UsageFault: DESTRUCTION={exc}") from None
    moment = min(moment, _max_destruction())

    def change(job: Job) -> None:
        job.destruction = moment

    _update(job_id, change)
    return _see_job(job_id)


def job_quote(job_id: str) -> Response:
    """GET the quote: empty, the service makes no prediction."""
    _load(job_id)
    return _text("")


def job_owner(job_id: str) -> Response:
    """GET the owner (empty for an anonymous job)."""
    return _text(_load(job_id).owner or "")


def job_error(job_id: str) -> Response:
    """GET the error of a failed job as a DALI error VOTable (HTTP 200)."""
    job = _load(job_id)
    if job.phase != "ERROR" or not job.error_message:
        raise UwsError(404, f"UsageFault: job {job_id!r} is {job.phase}, it has no error")
    return dali.error_response(job.error_message, status=200)


def job_parameters(job_id: str) -> Response:
    """GET the parameters; POST sets parameters of a PENDING job."""
    if request.method == "GET":
        return _xml(parameters_document(_load(job_id)))
    job = _load(job_id)
    if job.phase != "PENDING":
        raise UwsError(403, f"UsageFault: the job is {job.phase}; parameters can be "
                            "changed only while it is PENDING")
    posted = [(n, v) for n, v in _params() if n not in CONTROL_PARAMETERS]
    names = {n for n, _ in posted}
    kept = [(n, v) for n, v in job.parameters if n not in names]
    posted, parts = _upload_parts(posted, frozenset(jobs.upload_references(kept)))

    def change(j: Job) -> None:
        if j.phase != "PENDING":
            raise JobStateError(f"the job is {j.phase}; parameters can be changed only "
                                "while it is PENDING")
        names = {n for n, _ in posted}
        j.parameters = [(n, v) for n, v in j.parameters if n not in names] + posted

    try:
        done = store().add_uploads(job_id, parts, change)
    except JobStateError as exc:
        raise UwsError(403, f"UsageFault: {exc}") from None
    if done is None:
        raise UwsError(404, f"UsageFault: no job {job_id!r} (unknown, or deleted)")
    return _see_job(job_id)


def job_parameter(job_id: str, name: str) -> Response:
    """GET one parameter: an inline upload part, or the text of a plain parameter."""
    job = _load(job_id)
    path = store().upload_path(job, name) if name in job.upload_references() else None
    if path is not None and path.is_file():
        return send_file(path, mimetype="application/octet-stream")
    values = [v for n, v in job.parameters if n == name.upper()]
    if not values:
        raise UwsError(404, f"UsageFault: job {job_id!r} has no parameter {name!r}")
    return _text("\n".join(values))


def job_results(job_id: str) -> Response:
    """GET the list of results."""
    return _xml(results_document(_load(job_id)))


def job_result(job_id: str, result_id: str) -> Response:
    """GET the stored result with its MIME type."""
    job = _load(job_id)
    path = store().result_path(job_id)
    if (result_id != "result" or job.phase != "COMPLETED" or job.result_mime is None
            or not path.is_file()):
        raise UwsError(404, f"UsageFault: job {job_id!r} ({job.phase}) has no result "
                            f"{result_id!r}")
    response = send_file(path, mimetype=job.result_mime, conditional=True, etag=False)
    response.headers["Content-Type"] = job.result_mime  # exactly, no charset added
    return response
