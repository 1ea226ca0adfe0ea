"""A test double of OpenTSDB's HTTP API (not OpenTSDB itself).

An in-memory server on loopback that answers ``/api/put``, ``/api/query``
(POST, GET and the DELETE verb), ``/api/uid/assign`` and ``/api/suggest``
as OpenTSDB 2.4.1 does with its stock settings, never kinder.  Every
setting that changes behaviour is an option named after OpenTSDB's:

- HTTP: Netty 3 treats a body over 8,192 bytes as chunked even with a
  Content-Length; ``enable_chunked=False`` (``tsd.http.request.
  enable_chunked``, stock) answers 400 "Chunked request not supported.";
  with it on, ``max_chunk`` (``tsd.http.request.max_chunk``, 4,096) caps
  such bodies.
- ``/api/put``: one object or an array; 1 to ``max_tags`` tags
  (``tsd.storage.max_tags``, 8); names of ``a-z A-Z 0-9 - _ . /`` and
  Unicode letters; a timestamp is milliseconds only above 2^32-1, else
  seconds; negative or above 13 digits refused; the row's base time is an
  unsigned 32-bit number of seconds (wraps after 2106-02-07); JSON numbers
  (``NaN`` breaks the whole request).  Unknown names (metric, tag key or
  value) fail unless ``auto_create_metrics`` (stock off) /
  ``auto_create_tagks`` / ``auto_create_tagvs`` (stock on) or assigned
  through ``/api/uid/assign``; 2.4 reports every one as "Unknown metric".
  Without ``sync`` the answer comes when the points are queued: they are
  stored ``flush_interval`` seconds later (``tsd.storage.flush_interval``)
  and storage failures (values in ``storage_failures``) reach only
  ``log``.  With ``sync`` the answer waits and reports them.
- values: 2.4 stores float32 where ``float32(d) == d``, else float64;
  ``version="2.3"`` or ``"2.2"`` always float32.
- storage: rows of one series and hour; a column per timestamp slot; a
  slot written twice with different values makes queries over it fail
  unless ``fix_duplicates`` (``tsd.storage.fix_duplicates``).
- ``/api/query``: ``end`` must be greater than ``start``; bounds of 10
  digits or fewer are seconds, else milliseconds; aggregator ``none``
  exists from 2.3 (``version="2.2"`` refuses it); unknown names answer 400
  "No such name for ...".  The DELETE verb deletes what it matches when
  ``allow_delete`` (``tsd.http.query.allow_delete``, stock off); as in
  2.4.1 a POST body with ``"delete": true`` deletes without that check.
  Deletes remove whole hour rows ``delete_delay`` seconds after the answer
  (OpenTSDB does not await them), whatever the rows hold by then.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

_NAME = re.compile(r"^[\w\-./]+$", re.UNICODE)
NETTY_MAX_CHUNK = 8192  # HttpRequestDecoder's maxChunkSize in OpenTSDB's PipelineFactory
SECOND_MASK = 0xFFFFFFFF00000000
HOUR_S = 3600
AGGREGATORS = {"sum", "avg", "min", "max", "dev", "zimsum", "mimmin", "mimmax", "count",
               "first", "last", "none"}


class _Reject(ValueError):
    pass


Series = tuple[str, frozenset]  # (metric, tags)


class FakeOpenTsdb:
    """The double: ``start()``, ``url``, ``stop()``; options as OpenTSDB's settings."""

    def __init__(self, *, version: str = "2.4", auto_create_metrics: bool = False,
                 auto_create_tagks: bool = True, auto_create_tagvs: bool = True,
                 allow_delete: bool = False, fix_duplicates: bool = False,
                 enable_chunked: bool = False, max_chunk: int = 4096, max_tags: int = 8,
                 flush_interval: float = 1.0, delete_delay: float = 0.3,
                 float32: bool | None = None) -> None:
        self.version = version
        self.auto_create_metrics = auto_create_metrics
        self.auto_create_tagks = auto_create_tagks
        self.auto_create_tagvs = auto_create_tagvs
        self.allow_delete = allow_delete
        self.fix_duplicates = fix_duplicates
        self.enable_chunked = enable_chunked
        self.max_chunk = max_chunk
        self.max_tags = max_tags
        self.flush_interval = flush_interval
        self.delete_delay = delete_delay
        self.float32 = version in ("2.2", "2.3") if float32 is None else float32
        self.uids: dict[str, set[str]] = {"metric": set(), "tagk": set(), "tagv": set()}
        # series -> {base hour (s): {slot ms: [distinct values written]}}
        self.rows: dict[Series, dict[int, dict[int, list[float]]]] = defaultdict(dict)
        self.storage_failures: set[float] = set()  # values whose storage fails (for tests)
        self.log: list[str] = []  # what OpenTSDB would write only to its log
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.timers: list[threading.Timer] = []

    @property
    def metrics(self) -> set[str]:
        """Assigned metric names."""
        return self.uids["metric"]

    @property
    def refuse_values(self) -> set[float]:
        """Older name of :attr:`storage_failures`."""
        return self.storage_failures

    # lifecycle ---------------------------------------------------------

    def start(self) -> FakeOpenTsdb:
        """Serve on a free loopback port in a daemon thread."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                double.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                double.handle(self, "POST")

            def do_DELETE(self) -> None:  # noqa: N802
                double.handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """Base URL of the double."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving (pending flushes and deletes are dropped)."""
        for timer in self.timers:
            timer.cancel()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def settle(self) -> None:
        """Wait until every queued write and delete has reached storage (for tests)."""
        for timer in list(self.timers):
            timer.join()

    def _later(self, seconds: float, func: Any) -> None:
        timer = threading.Timer(seconds, func)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    # HTTP --------------------------------------------------------------

    def reply(self, handler: BaseHTTPRequestHandler, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _body(self, handler: BaseHTTPRequestHandler) -> tuple[bytes | None, str | None]:
        """The request body, or why the stock Netty pipeline refuses it."""
        chunked = "chunked" in handler.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            data = bytearray()
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = handler.rfile.read(size)
                handler.rfile.readline()
                if size == 0:
                    break
                data.extend(chunk)
        else:
            data = bytearray(handler.rfile.read(int(handler.headers.get("Content-Length", 0))))
        if chunked or len(data) > NETTY_MAX_CHUNK:
            if not self.enable_chunked:
                return None, "Chunked request not supported."
            if len(data) > self.max_chunk:
                return None, f"HTTP content length exceeded {self.max_chunk} bytes."
        return bytes(data), None

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query, keep_blank_values=True)
        self.requests.append((method, url.path))
        body, refused = self._body(handler)
        if refused is not None:
            self.reply(handler, 400, {"error": {"code": 400, "message": refused}})
            return
        try:
            payload = json.loads(body, parse_constant=_no_constants) if body else None
        except (ValueError, _Reject) as exc:
            self.reply(handler, 400, {"error": {"code": 400, "message":
                                                f"Unable to parse the given JSON: {exc}"}})
            return
        with self.lock:
            if url.path == "/api/put" and method == "POST":
                status, answer = self.put(payload, query)
            elif url.path == "/api/query":
                status, answer = self.query_endpoint(method, payload, query)
            elif url.path == "/api/uid/assign":
                status, answer = self.assign(payload)
            elif url.path == "/api/suggest":
                status, answer = self.suggest(query)
            else:
                status, answer = 404, {"error": {"code": 404, "message": "Endpoint not found"}}
        self.reply(handler, status, answer)

    # /api/put ----------------------------------------------------------

    def _known(self, kind: str, name: str, auto: bool) -> bool:
        if name in self.uids[kind]:
            return True
        if auto:
            self.uids[kind].add(name)
            return True
        return False

    def _check_point(self, point: Any) -> tuple[Series, int, float]:
        if not isinstance(point, dict):
            raise _Reject("Unable to parse the data point")
        metric, tags = point.get("metric"), point.get("tags")
        timestamp, value = point.get("timestamp"), point.get("value")
        if not isinstance(metric, str) or not _NAME.match(metric):
            raise _Reject(f"Invalid metric name: {metric!r}")
        if not isinstance(tags, dict) or not tags:
            raise _Reject("Missing tags")
        if len(tags) > self.max_tags:
            raise _Reject(f"Too many tags: {len(tags)} maximum allowed: {self.max_tags}")
        for k, v in tags.items():
            if not _NAME.match(str(k)) or not _NAME.match(str(v)):
                raise _Reject(f"Invalid tag: {k}={v}")
        if isinstance(timestamp, str) and timestamp.isdigit():
            timestamp = int(timestamp)
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp <= 0:
            raise _Reject("Invalid timestamp")
        if timestamp & SECOND_MASK and timestamp > 9_999_999_999_999:
            raise _Reject(f"bad timestamp={timestamp}")
        text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else value
        if not isinstance(text, str) or not re.fullmatch(r"-?[0-9.]+([eE][-+]?[0-9]+)?", text):
            raise _Reject("Unable to parse value to a number")
        stored: float = int(text) if not any(c in text for c in ".eE") else float(text)
        if isinstance(stored, float) and (self.float32 or float(np.float32(stored)) == stored):
            stored = float(np.float32(stored))
        known = self._known("metric", metric, self.auto_create_metrics)
        known &= all(self._known("tagk", str(k), self.auto_create_tagks) for k in tags)
        known &= all(self._known("tagv", str(v), self.auto_create_tagvs)
                     for v in tags.values())
        if not known:  # 2.4 reports every NoSuchUniqueName as an unknown metric
            raise _Reject("Unknown metric")
        ms = timestamp if timestamp & SECOND_MASK else timestamp * 1000
        return (metric, frozenset((str(k), str(v)) for k, v in tags.items())), ms, stored

    def _store(self, series: Series, ms: int, value: float) -> str | None:
        if value in self.storage_failures:
            return "Storage exception: RegionTooBusyException"
        seconds = (ms // 1000) % 2**32  # the row key's base time is 4 bytes
        base = seconds - seconds % HOUR_S
        slot = seconds * 1000 + ms % 1000
        values = self.rows[series].setdefault(base, {}).setdefault(slot, [])
        if value not in values:
            values.append(value)
        return None

    def _flush(self, queued: list[tuple[Series, int, float, Any]]) -> None:
        with self.lock:
            for series, ms, value, point in queued:
                failed = self._store(series, ms, value)
                if failed:
                    self.log.append(f"ERROR {failed} while storing {point}")

    def put(self, payload: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        points = payload if isinstance(payload, list) else [payload]
        errors: list[dict[str, Any]] = []
        queued = []
        for point in points:
            try:
                series, ms, value = self._check_point(point)
            except _Reject as exc:
                errors.append({"datapoint": point, "error": str(exc)})
                continue
            queued.append((series, ms, value, point))
        if "sync" in query:
            for series, ms, value, point in queued:
                failed = self._store(series, ms, value)
                if failed:
                    errors.append({"datapoint": point, "error": failed})
        elif queued:
            self._later(self.flush_interval, lambda: self._flush(queued))
        failed, success = len(errors), len(points) - len(errors)
        if "details" in query or "summary" in query:
            answer: dict[str, Any] = {"success": success, "failed": failed}
            if "details" in query:
                answer["errors"] = errors
            return (400 if errors else 200), answer
        if errors:
            return 400, {"error": {"code": 400, "message":
                                   "One or more data points had errors",
                                   "details": "Please see the TSD logs or append "
                                              "\"details\" to the put request"}}
        return 204, None

    # /api/query --------------------------------------------------------

    def query_endpoint(self, method: str, payload: Any, query: dict[str, list[str]]
                       ) -> tuple[int, Any]:
        if method == "DELETE" and not self.allow_delete:
            return 400, {"error": {"code": 400, "message": "Bad request", "details":
                         "Deleting data is not enabled (tsd.http.query.allow_delete=false)"}}
        try:
            body = payload if method == "POST" else _parse_query_string(query)
            if not isinstance(body, dict):
                raise _Reject("Missing query")
            delete = method == "DELETE" or bool(body.get("delete"))  # 2.4.1 honours the flag
            return self.query(body, delete)
        except _Reject as exc:
            return 400, {"error": {"code": 400, "message": str(exc)}}

    def _matches(self, tags: frozenset, spec: dict[str, Any]) -> bool:
        have = dict(tags)
        for k, v in (spec.get("tags") or {}).items():
            if v != "*" and have.get(k) not in str(v).split("|"):
                return False
        for f in spec.get("filters") or []:
            value = have.get(f["tagk"])
            if value is None:
                return False
            if f["type"] == "literal_or" and value not in f["filter"].split("|"):
                return False
            if f["type"] == "wildcard" and not re.fullmatch(
                    f["filter"].replace("*", ".*"), value):
                return False
        return True

    def _resolve(self, spec: dict[str, Any]) -> None:
        metric = spec.get("metric")
        aggregator = spec.get("aggregator")
        if aggregator not in AGGREGATORS or (aggregator == "none" and self.version == "2.2"):
            raise _Reject(f"No such aggregator: {aggregator}")
        if metric not in self.uids["metric"]:
            raise _Reject(f"No such name for 'metrics': '{metric}'")
        literal = [(k, v) for k, v in (spec.get("tags") or {}).items() if v != "*"]
        literal += [(f["tagk"], f["filter"]) for f in spec.get("filters") or []
                    if f["type"] == "literal_or"]
        for k, values in literal:
            if k not in self.uids["tagk"]:
                raise _Reject(f"No such name for 'tagk': '{k}'")
            for v in str(values).split("|"):
                if v not in self.uids["tagv"]:
                    raise _Reject(f"No such name for 'tagv': '{v}'")

    def query(self, payload: dict[str, Any], delete: bool = False) -> tuple[int, Any]:
        start = _bound(payload.get("start"), "start")
        end = _bound(payload["end"], "end") if payload.get("end") is not None \
            else int(time.time() * 1000)
        if end <= start:
            raise _Reject(f"End time [{end}] must be greater than the start time [{start}]")
        out = []
        doomed: list[tuple[Series, int]] = []
        for spec in payload.get("queries", []):
            self._resolve(spec)
            metric = spec["metric"]
            for series, rows in list(self.rows.items()):
                if series[0] != metric or not self._matches(series[1], spec):
                    continue
                dps: dict[str, float] = {}
                for base in sorted(rows):
                    if base * 1000 > end or (base + HOUR_S) * 1000 <= start:
                        continue
                    if delete:
                        doomed.append((series, base))
                    for slot, values in sorted(rows[base].items()):
                        if not start <= slot <= end:
                            continue
                        if len(values) > 1 and not self.fix_duplicates:
                            raise _Reject(f"Duplicate timestamp for key={metric}, ms_offset="
                                          f"{slot % (HOUR_S * 1000)}, older={values[0]}, "
                                          f"newer={values[-1]}; set "
                                          "tsd.storage.fix_duplicates=true to fix "
                                          "automatically or run Fsck")
                        key = slot if payload.get("msResolution") else slot // 1000
                        dps[str(key)] = values[-1]
                if dps:
                    out.append({"metric": metric, "tags": dict(series[1]),
                                "aggregateTags": [], "dps": dps})
        if doomed:
            self._later(self.delete_delay, lambda: self._delete_rows(doomed))
        return 200, out

    def _delete_rows(self, doomed: list[tuple[Series, int]]) -> None:
        with self.lock:  # whole rows, with whatever they hold by now
            for series, base in doomed:
                self.rows.get(series, {}).pop(base, None)

    # /api/uid/assign, /api/suggest ---------------------------------------

    def assign(self, payload: Any) -> tuple[int, Any]:
        answer: dict[str, Any] = {}
        failed = False
        for kind in ("metric", "tagk", "tagv"):
            names = (payload or {}).get(kind) or []
            if not names:
                continue
            done, errors = {}, {}
            for name in names:
                if not _NAME.match(str(name)):
                    errors[name] = f"Invalid name: {name}"
                elif name in self.uids[kind]:
                    errors[name] = "Name already exists with UID: 000001"
                else:
                    self.uids[kind].add(name)
                    done[name] = f"{len(self.uids[kind]):06X}"
            answer[kind] = done
            if errors:
                answer[f"{kind}_errors"] = errors
                failed = True
        return (400 if failed else 200), answer

    def suggest(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        prefix = query.get("q", [""])[0]
        kind = {"metrics": "metric", "tagk": "tagk", "tagv": "tagv"}.get(
            query.get("type", ["metrics"])[0], "metric")
        limit = int(query.get("max", ["25"])[0])
        return 200, [n for n in sorted(self.uids[kind]) if n.startswith(prefix)][:limit]


def _bound(value: Any, what: str) -> int:
    """A query bound as OpenTSDB's DateTime.parseDateTimeString reads an absolute time."""
    text = str(value) if value is not None else ""
    if not re.fullmatch(r"[0-9]+(\.[0-9]{1,3})?", text):
        raise _Reject(f"Invalid {what} time: {text!r}")
    if "." in text:
        if not re.fullmatch(r"[0-9]{10}\.[0-9]{1,3}", text):
            raise _Reject(f"Invalid time: {text}. Millisecond timestamps must be in the "
                          "format <seconds>.<ms> where the milliseconds are limited to 3 "
                          "digits")
        whole, frac = text.split(".")
        return int(whole) * 1000 + int(frac.ljust(3, "0"))
    return int(text) * 1000 if len(text) <= 10 else int(text)


def _parse_query_string(query: dict[str, list[str]]) -> dict[str, Any]:
    """``start``, ``end`` and ``m=<agg>:<metric>{tagk=v,...}`` of a GET or DELETE query."""
    queries = []
    for m in query.get("m", []):
        found = re.fullmatch(r"([^:]+):([^{]+)(?:\{([^}]*)\})?", m)
        if not found:
            raise _Reject(f"Invalid m parameter: {m}")
        tags = dict(pair.split("=", 1) for pair in (found.group(3) or "").split(",") if pair)
        queries.append({"aggregator": found.group(1), "metric": found.group(2), "tags": tags})
    if not queries:
        raise _Reject("Missing parameter <code>m</code>")
    return {"start": query.get("start", [None])[0], "end": query.get("end", [None])[0],
            "msResolution": "ms" in query, "queries": queries}


def _no_constants(name: str) -> Any:
    raise _Reject(f"{name} is not a JSON number")
