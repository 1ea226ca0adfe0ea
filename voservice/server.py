"""``skvo serve``: pre-forked waitress workers; Flask's development server on request.

The parent process binds the listening socket, forks ``[server] workers``
children and restarts any that dies; SIGTERM or SIGINT stops them all.  Each
child runs waitress (Pylons' pure-Python WSGI server) on the inherited
socket: its asynchronous main loop reads and buffers whole requests before it
hands them to ``[server] threads`` request threads, so a client that trickles
its headers, sends nothing, or idles on a keep-alive connection costs a file
descriptor, not a thread.  Request bodies beyond ``[server] max_body_bytes``
are refused from their Content-Length (or, chunked, as soon as they pass it)
before they are buffered; on VO paths with a DALI error VOTable.

Beside the web workers the parent runs the async job runner
(:mod:`voservice.jobs`), a separate process that executes UWS jobs; it stops
with the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from voservice.config import Settings
from voservice.limits import error_body, max_body_bytes, too_large_message

#: open connections one worker keeps at most (then it stops accepting for a while)
CONNECTION_LIMIT = 4000
#: seconds an idle connection (keep-alive, or a request that stopped arriving) stays open
CHANNEL_TIMEOUT = 75
#: largest request line plus headers
MAX_HEADER_BYTES = 64 * 1024
#: chunk framing allowed beyond max_body_bytes before waitress itself refuses a chunked body
CHUNK_FRAMING_MARGIN = 64 * 1024
#: response bytes a connection buffers in memory; beyond it waitress spills to a
#: temporary file, so memory stays flat whatever a client reads
OUTBUF_BYTES = 512 * 1024
#: response bytes a connection buffers at all (memory and temporary file); beyond
#: it the producing thread waits for the client, so a client that stops reading
#: holds a request thread only for a result bigger than this
OUTBUF_HIGH_WATERMARK = 32 * 1024 * 1024
#: response pieces handed to waitress at least this big (each costs it a wake-up)
COALESCE_BYTES = 256 * 1024
#: listen backlog
BACKLOG = 2048
#: a worker that dies sooner than this after its start counts as failing at start
QUICK_DEATH_SECONDS = 10.0
#: consecutive failures at start after which ``skvo serve`` gives up
MAX_QUICK_DEATHS = 3


def serve(settings: Settings, dev: bool = False) -> int:
    """Serve the application until interrupted; returns an exit code."""
    from voservice.jobs import start_runner, stop_runner

    raise_fd_limit()
    from voservice.proxy import wildcard_warning

    for warning in (wildcard_warning(settings), plain_http_warning(settings)):
        if warning:
            print(warning, file=sys.stderr, flush=True)
    _require_current_schema(settings)
    runner = start_runner(settings)
    try:
        return _serve_web(settings, dev)
    finally:
        stop_runner(runner)  # a no-op in the web workers


def _require_current_schema(settings: Settings) -> None:
    """Refuse to serve an archive whose schema is behind (SchemaBehind: run `skvo upgrade`)."""
    from voservice.migrations import require_current
    from voservice.stores.metadata import make_engine

    engine = make_engine(settings.query_url)  # reading the revision needs only SELECT
    try:
        require_current(engine)
    finally:
        engine.dispose()


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def plain_http_warning(settings: Settings) -> str | None:
    """The start-up warning when passwords would cross the network unencrypted."""
    url = settings.public_url
    if url.startswith("https://"):
        return None
    if not settings.get("server", "public_url") and settings.get("server", "trusted_proxies"):
        return None  # the scheme of each request is the trusted proxy's X-Forwarded-Proto
    return (f"skvo serve: WARNING: public_url {url} is not https: HTTP Basic passwords and "
            "tokens travel in clear text. Serve behind a TLS reverse proxy and set "
            "[server] public_url = https://...")


def _serve_web(settings: Settings, dev: bool) -> int:
    host = settings.get("server", "host")
    port = settings.get("server", "port")
    if dev:
        from voservice.app import create_app

        print(f"SKVO serving on {settings.public_url}/ (listening on {host}:{port}, "
              "Flask development server)", flush=True)
        create_app(settings).run(host=host, port=port, threaded=True)
        return 0
    _preload()
    sock = listen(host, port)
    workers = settings.get("server", "workers")
    threads = settings.get("server", "threads")
    print(f"SKVO serving on {settings.public_url}/ (listening on {host}:{port}, waitress: "
          f"{workers} worker processes x {threads} threads)", flush=True)
    try:
        return _Supervisor(settings, sock).run()
    finally:
        sock.close()


def _preload() -> None:
    """Import the application's modules once, before forking (faster, shared pages)."""
    import astropy.io.votable  # noqa: F401  (TAP uploads: ~1 s and 25 MB on first use)
    import waitress  # noqa: F401

    from voservice import app, portal  # noqa: F401
    from voservice.protocols import (  # noqa: F401
        analysis,
        datalink,
        lightcurve,
        scs,
        sia,
        ssa,
        tap,
    )

    del app


def listen(host: str, port: int) -> socket.socket:
    """The listening socket the workers share."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    sock.set_inheritable(True)
    return sock


class _Supervisor:
    """The parent: forks the workers, restarts dead ones, stops them on a signal."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False
        self.quick_deaths = 0

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; 1 if the workers keep failing at start."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        code = 0
        try:
            for _ in range(self.settings.get("server", "workers")):
                self._spawn()
            while not self.stopping:
                time.sleep(0.2)
                if not self._reap_and_restart():
                    code = 1
                    break
        finally:
            self._terminate()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return code

    def _spawn(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _worker_main(self.settings, self.sock)  # never returns
        self.children[pid] = time.monotonic()

    def _reap_and_restart(self) -> bool:
        for pid, started in list(self.children.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if not done or self.stopping:
                continue
            del self.children[pid]
            lived = time.monotonic() - started
            print(f"skvo serve: web worker {pid} ended ({_describe(status)}) after "
                  f"{lived:.0f} s; starting another", file=sys.stderr, flush=True)
            self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
            if self.quick_deaths >= MAX_QUICK_DEATHS:
                print("skvo serve: the web workers keep failing at start (see above); "
                      "stopping", file=sys.stderr, flush=True)
                return False
            self._spawn()
        return True

    def _terminate(self, timeout: float = 15.0) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.children and time.monotonic() < deadline:
            for pid in list(self.children):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    del self.children[pid]
            time.sleep(0.05)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # waitress's loop catches it and lets running requests finish


def _worker_main(settings: Settings, sock: socket.socket) -> None:
    """A web worker: waitress on the inherited socket; exits the process at the end."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, _exit_on_signal)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
        _run_waitress(settings, sock)
    except SystemExit:
        pass
    except BaseException as exc:  # noqa: BLE001 - the parent reports and restarts
        import traceback

        traceback.print_exc()
        print(f"skvo serve: web worker {os.getpid()} failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def waitress_options(settings: Settings) -> dict[str, Any]:
    """The waitress adjustments of one worker."""
    workers = settings.get("server", "workers")
    fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    per_worker = CONNECTION_LIMIT if fds == resource.RLIM_INFINITY else max(
        100, min(CONNECTION_LIMIT, (fds - 200) // max(1, workers)))
    return {
        "threads": settings.get("server", "threads"),
        "connection_limit": per_worker,
        "channel_timeout": CHANNEL_TIMEOUT,
        "asyncore_use_poll": True,  # select() stops at 1024 descriptors
        "backlog": BACKLOG,
        "max_request_header_size": MAX_HEADER_BYTES,
        # waitress refuses '>=' this; Content-Length == max_body_bytes must pass
        "max_request_body_size": max_body_bytes(settings) + CHUNK_FRAMING_MARGIN,
        "outbuf_overflow": OUTBUF_BYTES,
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,
        "ident": "SKVO",
        # forwarded headers reach voservice.proxy, which believes only [server]
        # trusted_proxies and removes them from every other request
        "clear_untrusted_proxy_headers": False,
        "expose_tracebacks": False,
    }


def _run_waitress(settings: Settings, sock: socket.socket) -> None:
    import logging

    from waitress import create_server

    from voservice.app import create_app

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" under load
    app = create_app(settings)
    server = create_server(_AccessLog(app), sockets=[sock], **waitress_options(settings))
    server.channel_class = _channel_class(max_body_bytes(settings))
    server.run()


def _channel_class(limit: int) -> type:
    """waitress's channel whose own errors (413, bad chunking) are DALI on VO paths."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class DaliErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            path = _error_path(self.request)
            message = (too_large_message(limit) if error.code == 413
                       else f"UsageFault: {error.reason}: {error.body}")
            mime, body = error_body(path, error.code, message)
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", mime))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class Channel(HTTPChannel):
        error_task_class = DaliErrorTask

    return Channel


def _error_path(parsed: Any) -> str:
    """The path of a request waitress could not parse (for the kind of error body)."""
    path = getattr(parsed, "path", "")
    if path:
        return path
    words = (getattr(parsed, "first_line", b"") or b"").split()
    target = words[1].decode("latin-1") if len(words) > 1 else "/"
    return target.split("?", 1)[0]


class _AccessLog:
    """WSGI wrapper writing one access-log line per request to stdout."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Serve one request and log it when its body is sent."""
        started = time.perf_counter()
        status: list[str] = ["-"]

        def recording(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        body = self.app(environ, recording)
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(body, wrapper):  # sendfile path
            _log_line(environ, status[0], None, started)
            return body
        return _logged(body, environ, status, started)


def _logged(body: Iterable[bytes], environ: dict[str, Any], status: list[str],
            started: float) -> Iterator[bytes]:
    """The body in pieces of at least COALESCE_BYTES (waitress pays per piece), logged."""
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    try:
        for chunk in body:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= COALESCE_BYTES:
                size += pending_size
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            size += pending_size
            yield b"".join(pending)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
        _log_line(environ, status[0], size, started)


def _log_line(environ: dict[str, Any], status: str, size: int | None, started: float) -> None:
    query = environ.get("QUERY_STRING")
    target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    when = dt.datetime.now(dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    sys.stdout.write(
        f'{environ.get("REMOTE_ADDR", "-")} - - [{when}] "{environ.get("REQUEST_METHOD")} '
        f'{target[:2000]} {environ.get("SERVER_PROTOCOL")}" {status} '
        f'{"-" if size is None else size} {(time.perf_counter() - started) * 1000:.0f}ms\n')
    sys.stdout.flush()
