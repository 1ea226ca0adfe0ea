"""Request bodies: a size limit, bounded forms and strict multipart parsing.

- ``[server] max_body_bytes`` (default ``[vo] upload_max_bytes`` + 1 MiB) bounds
  every request body.  A larger ``Content-Length`` is answered 413 before a
  byte of the body is read; a chunked body is counted while it is read and
  refused once it passes the limit.
- Form fields are bounded the same way (Flask's ``MAX_CONTENT_LENGTH``,
  ``MAX_FORM_MEMORY_SIZE`` and ``MAX_FORM_PARTS``); file parts are spooled to
  temporary files above 500 kB (werkzeug's stream factory), never held whole.
- A malformed ``multipart/form-data`` body (no boundary parameter, a bad
  boundary, a body without the boundary, a truncated body, a part without
  Content-Disposition) is a 400 naming the problem instead of an empty form.

VO endpoints answer with DALI error VOTables, other pages with plain text.
``skvo serve`` (waitress) also refuses oversized bodies itself before
buffering them; see :mod:`voservice.server`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from voservice.config import Settings

#: multipart framing and plain form fields beside the uploads
BODY_MARGIN_BYTES = 1 << 20
#: form parts (fields and files) one request may have
MAX_FORM_PARTS = 1000
#: paths whose errors are DALI error VOTables
VO_PREFIXES = ("/tap", "/scs", "/ssa", "/sia", "/datalink", "/lightcurve", "/frame")
#: a multipart boundary we accept: printable ASCII, at most 200 characters (more liberal
#: than RFC 2046, whose 70 characters exclude the '<' and '>' of STIL's, TOPCAT's, boundary)
_BOUNDARY = re.compile(r"[\x20-\x7e]{1,200}")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyTooLarge(RequestEntityTooLarge):
    """A request body passed ``[server] max_body_bytes``."""


def max_body_bytes(settings: Settings) -> int:
    """The request-body limit: ``[server] max_body_bytes``, or uploads + 1 MiB."""
    configured = int(settings.get("server", "max_body_bytes"))
    if configured:
        return configured
    return int(settings.get("vo", "upload_max_bytes")) + BODY_MARGIN_BYTES


def is_vo_path(path: str) -> bool:
    """Whether errors on this path are DALI error VOTables."""
    return any(path == p or path.startswith(p + "/") for p in VO_PREFIXES)


def too_large_message(limit: int) -> str:
    """The text of a 413 for a body beyond ``limit`` bytes."""
    return (f"UsageFault: the request body is larger than this service accepts "
            f"({limit} bytes, [server] max_body_bytes); upload smaller tables")


def error_body(path: str, status: int, message: str) -> tuple[str, bytes]:
    """(Content-Type, body) of an error: a DALI VOTable on VO paths, else plain text."""
    if is_vo_path(path):
        from voservice.votable import error_document

        return "application/x-votable+xml", error_document(message)
    return "text/plain; charset=utf-8", f"{status} {message}\n".encode()


def _error(path: str, status: int, message: str) -> Response:
    mime, body = error_body(path, status, message)
    return Response(body, status=status, headers={"Content-Type": mime})


class _CountingInput:
    """wsgi.input of a chunked body: raises BodyTooLarge past ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._count = 0

    def _counted(self, data: bytes) -> bytes:
        self._count += len(data)
        if self._count > self._limit:
            raise BodyTooLarge(too_large_message(self._limit))
        return data

    def read(self, size: int = -1) -> bytes:
        """Read like the wrapped stream, counting."""
        if size is None or size < 0:
            size = self._limit + 1 - self._count
        return self._counted(self._stream.read(max(0, min(size, self._limit + 1 - self._count))))

    def readline(self, size: int = -1) -> bytes:
        """Read one line, counting."""
        room = self._limit + 1 - self._count
        return self._counted(self._stream.readline(room if size is None or size < 0
                                                   else min(size, room)))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class BodyLimit:
    """WSGI middleware: 413 from Content-Length before reading; counts chunked bodies."""

    def __init__(self, app: WsgiApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Refuse or pass on one request."""
        path = environ.get("PATH_INFO", "") or "/"
        length_text = (environ.get("CONTENT_LENGTH") or "").strip()
        if length_text:
            if not length_text.isdigit():
                return self._refuse(start_response, path, 400,
                                    f"UsageFault: Content-Length {length_text!r} is not a "
                                    "number of bytes")
            if int(length_text) > self.limit:
                return self._refuse(start_response, path, 413, too_large_message(self.limit))
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # every WSGI server skvo runs under de-chunks wsgi.input and ends it
            environ["wsgi.input_terminated"] = True
            environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], self.limit)
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(start_response: Callable[..., Any], path: str, status: int,
                message: str) -> Iterable[bytes]:
        mime, body = error_body(path, status, message)
        reason = "Request Entity Too Large" if status == 413 else "Bad Request"
        start_response(f"{status} {reason}", [
            ("Content-Type", mime), ("Content-Length", str(len(body))),
            ("Connection", "close"),  # the unread body must not be taken for a request
        ])
        return [body]


class _StrictFormDataParser(FormDataParser):
    """werkzeug's form parser, raising on malformed bodies instead of ignoring them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["silent"] = False
        super().__init__(*args, **kwargs)


class SkvoRequest(Request):
    """Flask's request with the strict form parser."""

    form_data_parser_class = _StrictFormDataParser


def multipart_problem(content_type: str, reason: str) -> str:
    """A readable message for werkzeug's ValueError on a multipart body."""
    mime, options = parse_options_header(content_type)
    boundary = options.get("boundary", "")
    if mime != "multipart/form-data":
        return f"malformed {mime or 'form'} body: {reason}"
    if not boundary:
        return ("malformed multipart/form-data body: the Content-Type header has no "
                "boundary parameter")
    if "PREAMBLE" in reason:
        return (f"malformed multipart/form-data body: no part starts with the boundary "
                f"--{boundary} of the Content-Type header")
    if "State." in reason:
        return (f"malformed multipart/form-data body: it ends before the closing boundary "
                f"--{boundary}-- (truncated)")
    return f"malformed multipart/form-data body: {reason}"


def _check_form() -> Response | None:
    """Parse the form now, so a bad body is one clear error and not an empty form."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    content_type = request.headers.get("Content-Type", "")
    mime, options = parse_options_header(content_type)
    if mime == "multipart/form-data":
        boundary = options.get("boundary", "")
        if boundary and not _BOUNDARY.fullmatch(boundary):
            return _error(request.path, 400,
                          f"UsageFault: malformed multipart/form-data body: boundary "
                          f"{boundary[:80]!r} is not a valid boundary (at most 200 "
                          "printable ASCII characters)")
    try:
        request.form  # noqa: B018 - loads form and files
    except HTTPException as exc:
        message = (exc.description if isinstance(exc, BodyTooLarge)
                   else too_large_message(request.max_content_length or 0)
                   if exc.code == 413 else f"UsageFault: {exc.description}")
        return _error(request.path, exc.code or 400, message)
    except ValueError as exc:
        return _error(request.path, 400,
                      f"UsageFault: {multipart_problem(content_type, str(exc))}")
    return None


def install(app: Flask, settings: Settings) -> None:
    """Bound request bodies and forms of ``app`` (call once from create_app)."""
    limit = max_body_bytes(settings)
    app.request_class = SkvoRequest
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    app.config["MAX_FORM_PARTS"] = MAX_FORM_PARTS
    app.wsgi_app = BodyLimit(app.wsgi_app, limit)  # type: ignore[method-assign]
    app.before_request(_check_form)


class WaitSlots:
    """Counts the UWS WAITs blocked in this process, in total and per client address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._per_client: Counter[str] = Counter()

    @contextmanager
    def slot(self, client: str, total_cap: int, client_cap: int) -> Iterator[bool]:
        """Yield whether this request may block; the slot is freed at the end."""
        with self._lock:
            granted = self._total < total_cap and self._per_client[client] < client_cap
            if granted:
                self._total += 1
                self._per_client[client] += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._total -= 1
                    self._per_client[client] -= 1
                    if self._per_client[client] <= 0:
                        del self._per_client[client]


#: WAITs one client address may have blocked at once (per process)
WAITS_PER_CLIENT = 2
_WAIT_SLOTS = WaitSlots()


def wait_slot(settings: Settings, client: str) -> AbstractContextManager[bool]:
    """A blocking-WAIT slot: at most half the request threads and 2 per client address.

    Without a slot, the WAIT answers at once with the current phase (UWS 1.1 lets
    the service return before the wait time).
    """
    threads = int(settings.get("server", "threads"))
    return _WAIT_SLOTS.slot(client, max(1, threads // 2), WAITS_PER_CLIENT)
