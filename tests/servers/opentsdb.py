"""A test double of OpenTSDB's HTTP API (not OpenTSDB itself).

An in-memory server on loopback that answers ``/api/put``, ``/api/query``,
``/api/uid/assign`` and ``/api/suggest`` with the semantics OpenTSDB 2.4
documents, so that the OpenTSDB adapter is tested over a real socket:

- ``/api/put``: one object or an array; 1 to 8 tags; names of
  ``a-z A-Z 0-9 - _ . /`` and Unicode letters; integer timestamps, positive,
  at most 13 digits (10 = seconds, 13 = milliseconds); JSON numbers only
  (``NaN``/``Infinity`` refused); unknown metrics refused unless
  ``auto_create_metrics`` or assigned; ``?details``/``?summary`` answers,
  204 otherwise, 400 when any point failed; a JSON syntax error drops the
  whole request; chunked bodies are refused (OpenTSDB's default).
- values: float32 where ``float32(d) == d`` (2.4), or always float32
  (``float32=True``, as 2.3 and older).
- ``/api/query``: ``aggregator: none``, tags or ``literal_or``/``wildcard``
  filters, ``msResolution``, ``delete: true``; unknown metric or tag value ->
  400 "No such name".  A timestamp written twice with different values makes
  later queries fail unless ``fix_duplicates``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

_NAME = re.compile(r"^[\w\-./]+$", re.UNICODE)


class _Reject(ValueError):
    pass


class FakeOpenTsdb:
    """The double: ``start()``, ``url``, ``stop()``; options as OpenTSDB's settings."""

    def __init__(self, *, auto_create_metrics: bool = False, float32: bool = False,
                 allow_delete: bool = True, fix_duplicates: bool = False) -> None:
        self.auto_create_metrics = auto_create_metrics
        self.float32 = float32
        self.allow_delete = allow_delete
        self.fix_duplicates = fix_duplicates
        self.metrics: set[str] = set()
        self.tag_values: set[str] = set()
        # (metric, frozenset(tags)) -> {ms timestamp: [values]}
        self.data: dict[tuple[str, frozenset], dict[int, list[float]]] = defaultdict(dict)
        self.refuse_values: set[float] = set()  # values the server fails (for tests)
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.requests: list[str] = []

    # lifecycle ---------------------------------------------------------

    def start(self) -> FakeOpenTsdb:
        """Serve on a free loopback port in a daemon thread."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                double.handle(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    double.reply(self, 400, {"error": {"code": 400, "message":
                                 "Chunked request encoding is not enabled"}})
                    return
                length = self.headers.get("Content-Length")
                if length is None:
                    double.reply(self, 411, {"error": {"message": "Content-Length required"}})
                    return
                double.handle(self, self.rfile.read(int(length)))

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
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # HTTP --------------------------------------------------------------

    def reply(self, handler: BaseHTTPRequestHandler, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query, keep_blank_values=True)
        self.requests.append(url.path)
        try:
            payload = json.loads(body, parse_constant=_no_constants) if body else None
        except (ValueError, _Reject) as exc:
            self.reply(handler, 400, {"error": {"code": 400,
                                                "message": f"Unable to parse the request: {exc}"}})
            return
        with self.lock:
            if url.path == "/api/put":
                status, answer = self.put(payload, query)
            elif url.path == "/api/query":
                status, answer = self.query(payload)
            elif url.path == "/api/uid/assign":
                status, answer = self.assign(payload)
            elif url.path == "/api/suggest":
                status, answer = self.suggest(query)
            else:
                status, answer = 404, {"error": {"code": 404, "message": "Endpoint not found"}}
        self.reply(handler, status, answer)

    # /api/put ----------------------------------------------------------

    def _check_point(self, point: Any) -> tuple[str, frozenset, int, float]:
        if not isinstance(point, dict):
            raise _Reject("not an object")
        metric, tags = point.get("metric"), point.get("tags")
        timestamp, value = point.get("timestamp"), point.get("value")
        if not isinstance(metric, str) or not _NAME.match(metric):
            raise _Reject(f"Invalid metric name: {metric!r}")
        if not isinstance(tags, dict) or not 1 <= len(tags) <= 8:
            raise _Reject("Need at least one tag and at most 8")
        for k, v in tags.items():
            if not _NAME.match(str(k)) or not _NAME.match(str(v)):
                raise _Reject(f"Invalid tag: {k}={v}")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp <= 0 \
                or len(str(timestamp)) > 13:
            raise _Reject(f"Invalid timestamp: {timestamp!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Reject(f"Invalid value: {value!r}")
        if value in self.refuse_values:
            raise _Reject("Internal error storing the value")
        if metric not in self.metrics:
            if not self.auto_create_metrics:
                raise _Reject(f"Unknown metric: {metric}")
            self.metrics.add(metric)
        ms = timestamp if len(str(timestamp)) == 13 else timestamp * 1000
        stored = float(value)
        if isinstance(value, float) and (self.float32 or float(np.float32(value)) == value):
            stored = float(np.float32(value))
        return metric, frozenset(tags.items()), ms, stored

    def put(self, payload: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        points = payload if isinstance(payload, list) else [payload]
        errors, success = [], 0
        for point in points:
            try:
                metric, tags, ms, value = self._check_point(point)
            except _Reject as exc:
                errors.append({"datapoint": point, "error": str(exc)})
                continue
            self.tag_values.update(v for _, v in tags)
            self.data[(metric, tags)].setdefault(ms, []).append(value)
            success += 1
        if "details" in query or "summary" in query:
            answer: dict[str, Any] = {"success": success, "failed": len(errors)}
            if "details" in query:
                answer["errors"] = errors
            return (400 if errors else 200), answer
        if errors:
            return 400, {"error": {"code": 400, "message":
                                   "One or more data points had errors"}}
        return 204, None

    # /api/query --------------------------------------------------------

    def _matches(self, tags: frozenset, spec: dict[str, Any]) -> bool:
        have = dict(tags)
        for k, v in (spec.get("tags") or {}).items():
            if have.get(k) not in str(v).split("|") and v != "*":
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

    def query(self, payload: Any) -> tuple[int, Any]:
        start = _ms(payload.get("start", 0))
        end = _ms(payload.get("end", 2**62))
        delete = bool(payload.get("delete"))
        if delete and not self.allow_delete:
            return 400, {"error": {"message": "Deleting data is not enabled"}}
        out = []
        for spec in payload.get("queries", []):
            metric = spec.get("metric")
            if metric not in self.metrics:
                return 400, {"error": {"code": 400, "message":
                                       f"No such name for 'metrics': '{metric}'"}}
            for f in spec.get("filters") or []:
                if f["type"] == "literal_or" and not any(
                        v in self.tag_values for v in f["filter"].split("|")):
                    return 400, {"error": {"code": 400, "message":
                                           f"No such name for 'tagv': '{f['filter']}'"}}
            for (m, tags), series in list(self.data.items()):
                if m != metric or not self._matches(tags, spec):
                    continue
                dps = {}
                for ms, values in sorted(series.items()):
                    if not start <= ms <= end:
                        continue
                    if len(set(values)) > 1 and not self.fix_duplicates:
                        return 400, {"error": {"code": 400, "message":
                                               f"Duplicate timestamp for {metric}: {ms}"}}
                    dps[str(ms if payload.get("msResolution") else ms // 1000)] = values[-1]
                if delete:
                    for ms in [ms for ms in series if start <= ms <= end]:
                        del series[ms]
                if dps:
                    out.append({"metric": metric, "tags": dict(tags), "aggregateTags": [],
                                "dps": dps})
        return 200, out

    def assign(self, payload: Any) -> tuple[int, Any]:
        names = payload.get("metric", [])
        self.metrics.update(names)
        return 200, {"metric": {n: f"{i:06x}" for i, n in enumerate(names)}}

    def suggest(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        prefix = query.get("q", [""])[0]
        names = sorted(self.metrics if query.get("type", ["metrics"])[0] == "metrics"
                       else self.tag_values)
        limit = int(query.get("max", ["25"])[0])
        return 200, [n for n in names if n.startswith(prefix)][:limit]


def _ms(value: Any) -> int:
    value = int(value)
    return value if len(str(value)) >= 13 else value * 1000


def _no_constants(name: str) -> Any:
    raise _Reject(f"{name} is not a JSON number")
