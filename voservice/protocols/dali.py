"""DALI rules every endpoint shares: parameters, MAXREC, formats, errors.

- Parameter names are case-insensitive; values are not.
- MAXREC limits rows (default and hard limit from skvo.ini); MAXREC=0 gives
  metadata only.
- RESPONSEFORMAT picks the writer; an unknown one is an error.
- Errors are VOTables with QUERY_STATUS=ERROR, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response, request
from werkzeug.datastructures import MultiDict

from voservice.votable import Info, error_document, resolve_format

SINGLE_VALUED = ("MAXREC", "RESPONSEFORMAT", "FORMAT", "RUNID", "REQUEST", "LANG", "QUERY")


class UsageError(ValueError):
    """The request's parameters are wrong: a DALI UsageFault."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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


def stream(chunks: Iterable[bytes], mime: str, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """A streamed response whose body is produced as the client reads it."""

    def generate() -> Iterator[bytes]:
        yield from chunks

    response = Response(generate(), status=status, headers=headers or {})
    response.headers["Content-Type"] = mime
    return response


def parse_bool(text: str, name: str) -> bool:
    """DALI booleans: true/false/1/0 (case-insensitive)."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise UsageError(f"{name}={text!r}: must be true or false")


def overflow_trailer(state: dict[str, bool], maxrec: int | None, what: str = "rows"
                     ) -> Callable[[], list[Info]]:
    """The trailer of a result cut at MAXREC: ``QUERY_STATUS=OVERFLOW`` once
    ``state["overflow"]`` is set (by the row iterator, before the trailer is asked)."""
    def trailer() -> list[Info]:
        if state.get("overflow"):
            return [Info("QUERY_STATUS", "OVERFLOW",
                         f"the result was cut at MAXREC={maxrec} {what}")]
        return []

    return trailer
