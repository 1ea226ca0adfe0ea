"""DALI rules every endpoint shares: parameters, MAXREC, formats, errors.

- Parameter names are case-insensitive; values are not.
- MAXREC limits rows (default and hard limit from skvo.ini); MAXREC=0 gives
  metadata only.
- RESPONSEFORMAT picks the writer; an unknown one is an error.
- Errors are VOTables with QUERY_STATUS=ERROR, never a stack trace.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, request
from werkzeug.datastructures import MultiDict

from voservice.errors import UsageError
from voservice.streams import Guarded, overflow_trailer
from voservice.votable import error_document, resolve_format

#: re-exported: the protocols use them as dali.UsageError, dali.Guarded, ...
__all__ = ["Guarded", "UsageError", "overflow_trailer"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a client is told to wait (Retry-After) when every database connection is busy
RETRY_AFTER = 5

SINGLE_VALUED = ("MAXREC", "RESPONSEFORMAT", "FORMAT", "RUNID", "REQUEST", "LANG", "QUERY")


def params() -> MultiDict[str, str]:
    """The request's parameters (query string and form) with upper-case names."""
    out: MultiDict[str, str] = MultiDict()
    for source in (request.args, request.form):
        for key, values in source.lists():
            for value in values:
                out.add(key.upper(), value)
    return out


def values_of(p: Mapping[str, Any], name: str) -> list[str]:
    """All values of a parameter, from a MultiDict or a mapping of lists."""
    if isinstance(p, MultiDict):
        return p.getlist(name)
    return [v for v in p.get(name, ()) if v is not None]


def single(p: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    """One value of a single-valued parameter (UsageError if repeated)."""
    values = values_of(p, name)
    if not values:
        return default
    if len(values) > 1 and len(set(values)) > 1:
        raise UsageError(f"parameter {name} given {len(values)} times; it takes one value")
    return values[0]


def maxrec(p: Mapping[str, Any], default: int, hard: int) -> int:
    """The MAXREC of a request: default when absent, capped at the hard limit."""
    text = single(p, "MAXREC")
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"MAXREC={text!r}: must be a non-negative integer") from None
    if value < 0:
        raise UsageError(f"MAXREC={text!r}: must be a non-negative integer")
    return min(value, hard)


@dataclass(frozen=True)
class OutputFormat:
    """A resolved RESPONSEFORMAT: the writer's format name and the MIME type."""

    name: str
    mime: str


def response_format(p: MultiDict[str, str], *names: str) -> OutputFormat:
    """Resolve RESPONSEFORMAT (or the given synonyms) to a writer format."""
    text = None
    for name in names or ("RESPONSEFORMAT",):
        text = single(p, name)
        if text:
            break
    try:
        fmt, mime = resolve_format(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return OutputFormat(fmt, mime)


def error_response(message: str, status: int = 400) -> Response:
    """A DALI error VOTable (QUERY_STATUS=ERROR)."""
    return Response(
        error_document(message), status=status, mimetype="application/x-votable+xml"
    )


def busy_response() -> Response:
    """503 with Retry-After: every database connection is in use (pool timeout)."""
    response = error_response(
        "ServiceUnavailable: the service is busy (every database connection is in use); "
        f"retry in {RETRY_AFTER} s", 503)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def is_pool_timeout(exc: BaseException) -> bool:
    """Is ``exc`` SQLAlchemy's wait for a pooled connection running out?"""
    import sqlalchemy as sa

    return isinstance(exc, sa.exc.TimeoutError)


def stream(chunks: Iterable[bytes], mime: str, status: int = 200,
           headers: dict[str, str] | None = None, *,
           closers: Iterable[Callable[[], None] | None] = (),
           safe: tuple[type[BaseException], ...] = (),
           error: Callable[[str, int], Response] | None = None) -> Response:
    """A streamed response whose body is produced as the client reads it.

    The body's first block is produced now, before the status line is sent
    (writers put the first rows of CSV/TSV and the whole of FITS there): an
    error in it answers an error document (``error(message, status)``,
    default a DALI error VOTable) instead of a cut transfer.  ``safe``
    exceptions show their message (status 400); a pool timeout answers 503
    with Retry-After; anything else is logged and answered 500 without
    detail.  ``closers`` (and the body's own ``close``) run once when the
    WSGI server closes the response, also when the client left before the
    first byte (``response.call_on_close``).
    """
    body = Guarded(chunks, *closers)
    try:
        first = next(body, b"")
    except Exception as exc:
        body.close()
        if is_pool_timeout(exc):
            return busy_response()
        make = error or error_response
        if isinstance(exc, safe):
            return make(str(exc) or type(exc).__name__, 400)
        log.exception("a streamed response failed before its first byte")
        return make("the service failed while writing the result; the error is logged", 500)
    response = Response(Guarded(_prepend(first, body), body.close), status=status,
                        headers=headers or {})
    response.headers["Content-Type"] = mime
    response.call_on_close(body.close)
    return response


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def parse_bool(text: str, name: str) -> bool:
    """DALI booleans: true/false/1/0 (case-insensitive)."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise UsageError(f"{name}={text!r}: must be true or false")


def parse_float(text: str | None, name: str) -> float:
    """A finite float parameter (UsageError when missing or bad)."""
    if text is None or not text.strip():
        raise UsageError(f"parameter {name} is missing")
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{name}={text!r} is not a finite number")
    return value
