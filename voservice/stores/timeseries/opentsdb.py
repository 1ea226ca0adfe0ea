"""Light-curve points in OpenTSDB (2.3+; 2.4+ keeps float64), original SKVO metric names.

Per series four metrics, one value per timestamp (``<v>`` = version, ``v0``):

- ``<target>.<bandpass>.photometry.<v>``: magnitude, tagged with the
  calibration (``flux_calibration``, ``flux_calibration_level``,
  ``timeframe_reference_position``);
- ``<target>.<bandpass>.error.photometry.<v>``: magnitude error;
- ``<target>.<bandpass>.exposure.photometry.<v>``: exposure;
- ``<target>.<bandpass>.oid.photometry.<v>``: the photometry row id.

Names and tag values write every character outside ``[a-zA-Z0-9_]`` as ``-``
and its UTF-8 bytes in hex (``johnson.u`` -> ``johnson-2eu``), as the original
system did.  Every point carries ``obs`` (the observation uuid: it alone
tells series apart), ``epoch`` (see below) and ``source``: 3 tags, 6 on the
magnitude, 2 below OpenTSDB's ``tsd.storage.max_tags = 8``.  (The first
SKVO releases also tagged ``instrument``, ``target`` and ``dtype``, which
the metric name and the metadata database already hold; series written so
are still read.)

How it works with a stock OpenTSDB 2.4 (see README, "Running on OpenTSDB
and HBase"):

- Put bodies are at most ``max_body`` bytes (8,192: Netty 3 treats larger
  bodies as chunked, which ``tsd.http.request.enable_chunked = false``
  refuses) and at most ``batch_size`` points.  Every put asks
  ``?details&sync&sync_timeout=<timeout>``: OpenTSDB answers once the
  points are stored, and ``failed`` is checked in every answer.
- Times are integer milliseconds (``time_resolution_us = 1000``): the
  uploader refuses sub-millisecond digits before loading, and ``put``
  refuses them too rather than truncate.  OpenTSDB stores only what lies between
  2^32 ms (it reads smaller put timestamps as seconds) and 2106-02-07 (row
  keys hold unsigned 32-bit seconds): a series starting before 1971 is
  stored shifted by whole centuries (100 Julian years, 3,155,760,000,000
  ms), the smallest number that brings its start to 1971 or later, and the
  shift is recorded on every point as the tag ``epoch`` (``100`` = stored
  100 years late).  A 1890 plate series is stored in 1990; reading subtracts
  the shift again.  One series may span up to 135 years.  Query bounds go
  as seconds (OpenTSDB reads 10 digits or fewer as seconds), windows always
  with end > start, and are cut to the exact milliseconds here.
- A series is deleted with the documented DELETE verb on ``/api/query``
  (``tsd.http.query.allow_delete = true``).  OpenTSDB removes the matching
  hour rows after it answers, so the delete is confirmed by querying until
  the series reads back empty.  ``put`` deletes only when the series already
  has points (a replace), and a failed put deletes what it wrote.
- Unknown metric, tag key or value names (OpenTSDB 2.4 reports each as
  "Unknown metric") are assigned through ``/api/uid/assign`` only with
  ``[timeseries] assign_uids = true``; otherwise the error names the
  settings that allow them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import requests

from voservice.stores.timeseries.base import (
    Points,
    SeriesRef,
    StoreError,
    TimeSeriesStore,
    off_resolution,
)

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
KINDS = ("observation", "error", "exposure", "oid")
#: Netty 3's HttpRequestDecoder: a larger body is chunked, which stock OpenTSDB refuses
STOCK_MAX_BODY = 8192
#: smallest stored time: put timestamps up to 2^32-1 are read as seconds; 1971-01-01
STORED_MIN_MS = 31_536_000_000
#: largest stored time: row keys hold the hour as unsigned 32-bit seconds (2106-02-07)
STORED_MAX_MS = 2**32 * 1000 - 3_600_000 - 1
#: the unit of the epoch shift: 100 Julian years
SHIFT_MS = 36_525 * 86_400_000
HOUR_MS = 3_600_000
#: the most tags a point carries (the magnitude); OpenTSDB's stock limit is 8
TAGS_USED = 6


def escape(text: str) -> str:
    """The original SKVO escaping of metric parts and tag values."""
    out = []
    for char in str(text):
        if char in _SAFE:
            out.append(char)
        else:
            out.append("".join(f"-{b:02x}" for b in char.encode("utf-8")))
    return "".join(out)


def epoch_shift(start_ms: int) -> int:
    """Centuries a series starting at ``start_ms`` (Unix ms) is stored late (0 from 1971)."""
    if start_ms >= STORED_MIN_MS:
        return 0
    return -(-(STORED_MIN_MS - start_ms) // SHIFT_MS)


class OpenTsdbTimeSeriesStore(TimeSeriesStore):
    """Points in OpenTSDB through its HTTP API."""

    time_resolution_us = 1000  # OpenTSDB keeps milliseconds
    label = "the OpenTSDB store"

    def __init__(self, url: str, batch_size: int = 50, timeout: float = 30.0,
                 session: requests.Session | None = None, version: str = "v0",
                 max_body: int = STOCK_MAX_BODY, assign_uids: bool = False) -> None:
        self.url = url.rstrip("/")
        self.batch_size = batch_size
        self.timeout = timeout
        self.session = session or _session(self.url)
        self.version = version
        self.max_body = max_body
        self.assign_uids = assign_uids

    # names -------------------------------------------------------------

    def metric(self, ref: SeriesRef, kind: str) -> str:
        """The metric name of one kind of value of a series."""
        middle = {"observation": "", "error": "error.", "exposure": "exposure.",
                  "oid": "oid."}[kind]
        return (f"{escape(ref.target)}.{escape(ref.bandpass_uid)}.{middle}photometry."
                f"{self.version}")

    def tags(self, ref: SeriesRef, kind: str = "observation") -> dict[str, str]:
        """The tags every point of a series carries (the magnitude adds its calibration)."""
        return {"obs": _obs(ref), "epoch": str(100 * epoch_shift(ref.start_us // 1000)),
                "source": escape(ref.source)}

    # HTTP --------------------------------------------------------------

    def _send(self, method: str, path: str, body: bytes | None = None,
              params: Any = None) -> requests.Response:
        try:
            return self.session.request(
                method, f"{self.url}{path}", data=body, params=params,
                timeout=self.timeout + 10,
                headers={"Content-Type": "application/json"} if body is not None else None)
        except requests.RequestException as exc:
            raise StoreError(f"OpenTSDB at {self.url} does not answer: "
                             f"{type(exc).__name__}") from None

    def _post(self, path: str, body: Any) -> requests.Response:
        return self._send("POST", path, json.dumps(body, allow_nan=False).encode())

    def _put_body(self, body: bytes) -> requests.Response:
        sync_ms = max(1000, int(self.timeout * 1000))
        return self._send("POST", f"/api/put?details&sync&sync_timeout={sync_ms}", body)

    def _put_batch(self, ref: SeriesRef, lines: list[str], assigned: bool = False) -> None:
        response = self._put_body(("[" + ",".join(lines) + "]").encode())
        answer = _json(response)
        if response.status_code == 200 and isinstance(answer, dict) \
                and answer.get("failed") == 0 and answer.get("success") == len(lines):
            return
        if not isinstance(answer, dict) or "failed" not in answer:
            raise StoreError(f"series {ref.series_id}: OpenTSDB refused the put "
                             f"(HTTP {response.status_code}): {_message(response)}"
                             f"{self._body_hint(response)}")
        errors = answer.get("errors") or []
        unknown = [e for e in errors if _unknown_name(str(e.get("error", "")))]
        if unknown and len(unknown) == len(errors):
            if not self.assign_uids:
                raise StoreError(
                    f"series {ref.series_id}: OpenTSDB does not know a metric or tag name of "
                    f"the series (it answered {errors[0].get('error')!r}) and assigns none "
                    "itself: set tsd.core.auto_create_metrics = true (and keep "
                    "tsd.core.auto_create_tagks/tagvs = true) on the server, or "
                    "[timeseries] assign_uids = true in skvo.ini")
            if not assigned:
                self._assign([e["datapoint"] for e in unknown])
                self._put_batch(ref, [_line(e["datapoint"]) for e in unknown], assigned=True)
                return
        first = errors[0].get("error") if errors else _message(response)
        raise StoreError(f"series {ref.series_id}: OpenTSDB stored "
                         f"{answer.get('success', 0)} and refused {answer.get('failed')} of "
                         f"{len(lines)} points: {first}")

    def _body_hint(self, response: requests.Response) -> str:
        if "chunk" in response.text.lower() or "content length" in response.text.lower():
            return (f" (SKVO sent a body of at most {self.max_body} bytes, [timeseries] "
                    "max_body; a stock OpenTSDB takes 8192, more needs "
                    "tsd.http.request.enable_chunked = true and tsd.http.request.max_chunk)")
        return ""

    def _assign(self, datapoints: list[dict[str, Any]]) -> None:
        names: dict[str, set[str]] = {"metric": set(), "tagk": set(), "tagv": set()}
        for dp in datapoints:
            names["metric"].add(dp["metric"])
            names["tagk"].update(dp["tags"])
            names["tagv"].update(dp["tags"].values())
        response = self._post("/api/uid/assign", {k: sorted(v) for k, v in names.items()})
        answer = _json(response)
        if response.status_code == 200:
            return
        problems = [str(message) for key, errors in (answer or {}).items()
                    if key.endswith("_errors") and isinstance(errors, dict)
                    for message in errors.values() if "already exists" not in str(message)]
        if problems or not isinstance(answer, dict):
            raise StoreError(f"OpenTSDB refused to assign the series' names: "
                             f"{problems[0] if problems else _message(response)}")

    # the store ---------------------------------------------------------

    def _lines(self, ref: SeriesRef, points: Points, shift_ms: int) -> list[str]:
        """Every point of the series as the JSON text of OpenTSDB data points."""
        heads = {}
        for kind in KINDS:
            metric = json.dumps(self.metric(ref, kind))
            heads[kind] = f'{{"metric":{metric},"timestamp":'
        common = self.tags(ref)
        plain = json.dumps(common, separators=(",", ":"))
        calibrations: dict[tuple[str, int, str], str] = {}
        oid = int(ref.series_id)
        lines = []
        stored = (points.time_us // 1000 + shift_ms).tolist()
        for i, t in enumerate(stored):
            cal = (str(points.flux_calibration[i]), int(points.flux_calibration_level[i]),
                   str(points.timeframe_reference_position[i]))
            tags = calibrations.get(cal)
            if tags is None:
                tags = calibrations[cal] = json.dumps({
                    **common, "flux_calibration": escape(cal[0]),
                    "flux_calibration_level": str(cal[1]),
                    "timeframe_reference_position": escape(cal[2])}, separators=(",", ":"))
            lines.append(f'{heads["observation"]}{t},"value":'
                         f'{float(points.magnitude[i])!r},"tags":{tags}}}')
            lines.append(f'{heads["error"]}{t},"value":'
                         f'{float(points.magnitude_error[i])!r},"tags":{plain}}}')
            lines.append(f'{heads["exposure"]}{t},"value":'
                         f'{float(points.exposure[i])!r},"tags":{plain}}}')
            lines.append(f'{heads["oid"]}{t},"value":{oid},"tags":{plain}}}')
        return lines

    def _batches(self, lines: list[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        size = 2
        for line in lines:
            grow = len(line.encode()) + (1 if batch else 0)
            if batch and (size + grow > self.max_body or len(batch) >= self.batch_size):
                yield batch
                batch, size, grow = [], 2, len(line.encode())
            if size + grow > self.max_body:
                raise StoreError(f"one OpenTSDB data point takes {grow} bytes, more than "
                                 f"[timeseries] max_body = {self.max_body}")
            batch.append(line)
            size += grow
        if batch:
            yield batch

    def put(self, ref: SeriesRef, points: Points) -> None:
        """Write every point of a series, or none (what was written is deleted again).

        Points already stored for the series are deleted first (and the
        delete confirmed), so a put replaces a series.
        """
        for name in ("magnitude", "magnitude_error", "exposure"):
            if not np.all(np.isfinite(getattr(points, name))):
                raise StoreError(f"series {ref.series_id}: {name} must be finite numbers")
        if not len(points):
            self.delete(ref)
            return
        if points.time_us.min() < ref.start_us or points.time_us.max() > ref.end_us:
            raise StoreError(f"series {ref.series_id}: points lie outside the series' time "
                             "range (start_us, end_us)")
        finer = off_resolution(points.time_us, self.time_resolution_us)
        if len(finer):
            raise StoreError(f"series {ref.series_id}: {len(finer)} point times have "
                             "sub-millisecond digits; OpenTSDB keeps milliseconds (refused "
                             "rather than truncated)")
        ms = points.time_us // 1000
        if len(np.unique(ms)) != len(ms):
            raise StoreError(f"series {ref.series_id}: two points in the same millisecond; "
                             "OpenTSDB keeps milliseconds")
        shift_ms = epoch_shift(ref.start_us // 1000) * SHIFT_MS
        if int(ms.max()) + shift_ms > STORED_MAX_MS:
            raise StoreError(
                f"series {ref.series_id}: OpenTSDB cannot store it: it spans "
                f"{(int(ms.max()) - int(ms.min())) / SHIFT_MS * 100:.0f} years from its first "
                "point, or ends after 2106-02-07 (OpenTSDB keeps 1970-2106; series before "
                "1971 are shifted by whole centuries)")
        if self._has_points(ref):
            self.delete(ref)
        try:
            for batch in self._batches(self._lines(ref, points, shift_ms)):
                self._put_batch(ref, batch)
        except StoreError as failure:
            try:
                self.delete(ref)
            except StoreError as undo:
                raise StoreError(f"{failure}; removing the points written so far failed "
                                 f"too: {undo}") from None
            raise

    def _window_s(self, ref: SeriesRef, start_us: int | None = None,
                  end_us: int | None = None) -> tuple[int, int, int]:
        """Stored query bounds in whole seconds (end > start), and the shift in ms."""
        shift_ms = epoch_shift(ref.start_us // 1000) * SHIFT_MS
        lo = (ref.start_us if start_us is None else max(start_us, ref.start_us)) // 1000
        hi = (ref.end_us if end_us is None else min(end_us, ref.end_us)) // 1000
        return (lo + shift_ms) // 1000, (hi + shift_ms) // 1000 + 1, shift_ms

    def _sub_query(self, ref: SeriesRef, kind: str) -> dict[str, Any]:
        return {"aggregator": "none", "metric": self.metric(ref, kind),
                "filters": [{"type": "literal_or", "tagk": "obs", "groupBy": True,
                             "filter": _obs(ref)}]}

    def _query(self, ref: SeriesRef, kinds: tuple[str, ...], start_s: int, end_s: int
               ) -> list[dict[str, Any]]:
        """One query for several metrics; never-seen names are no points."""
        body = {"start": start_s, "end": end_s, "msResolution": True,
                "queries": [self._sub_query(ref, kind) for kind in kinds]}
        response = self._post("/api/query", body)
        if response.status_code == 200:
            return _json(response) or []
        message = _message(response)
        if response.status_code == 400 and "No such name" in message:
            if "'tagv'" in message or len(kinds) == 1:
                return []  # the series' obs value, or this metric, was never written
            return [r for kind in kinds for r in self._query(ref, (kind,), start_s, end_s)]
        if "aggregator" in message.lower():
            message += " (SKVO needs OpenTSDB 2.3 or later for the none aggregator)"
        raise StoreError(f"OpenTSDB query of series {ref.series_id} failed "
                         f"(HTTP {response.status_code}): {message}")

    def _has_points(self, ref: SeriesRef) -> bool:
        start_s, end_s, _ = self._window_s(ref)
        return any(r.get("dps") for r in self._query(ref, KINDS, start_s, end_s))

    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The points of a series in time order (millisecond times)."""
        lo = ref.start_us if start_us is None else max(start_us, ref.start_us)
        hi = ref.end_us if end_us is None else min(end_us, ref.end_us)
        if hi < lo:
            return
        start_s, end_s, shift_ms = self._window_s(ref, start_us, end_us)
        rows: dict[int, list[Any]] = {}
        results = self._query(ref, ("observation", "error", "exposure"), start_s, end_s)
        names = {self.metric(ref, kind): kind for kind in ("observation", "error", "exposure")}
        for series in results:
            tags = series.get("tags", {})
            if int(tags.get("epoch", "0") or 0) != shift_ms // SHIFT_MS * 100:
                raise StoreError(f"series {ref.series_id} was stored with epoch "
                                 f"{tags.get('epoch')} but its start time gives "
                                 f"{shift_ms // SHIFT_MS * 100}")
            kind = names.get(series.get("metric", ""))
            if kind != "observation":
                continue
            for ts, value in series.get("dps", {}).items():
                rows[int(ts)] = [float(value), None, None, _unescape(tags.get(
                    "flux_calibration", "")), int(tags.get("flux_calibration_level", 0)),
                    _unescape(tags.get("timeframe_reference_position", ""))]
        for series in results:
            index = {"error": 1, "exposure": 2}.get(names.get(series.get("metric", ""), ""))
            if index is None:
                continue
            for ts, value in series.get("dps", {}).items():
                if int(ts) in rows:
                    rows[int(ts)][index] = float(value)
        times = sorted(t for t in rows if lo <= (t - shift_ms) * 1000 <= hi)
        for begin in range(0, len(times), chunk_size):
            part = times[begin : begin + chunk_size]
            values = [rows[t] for t in part]
            yield Points(
                time_us=(np.asarray(part, dtype=np.int64) - shift_ms) * 1000,
                magnitude=[v[0] for v in values],
                magnitude_error=[np.nan if v[1] is None else v[1] for v in values],
                exposure=[np.nan if v[2] is None else v[2] for v in values],
                flux_calibration=[v[3] for v in values],
                flux_calibration_level=[v[4] for v in values],
                timeframe_reference_position=[v[5] for v in values],
            )

    def count(self, ref: SeriesRef) -> int:
        """Number of magnitudes stored for a series."""
        return sum(len(p) for p in self.read(ref))

    def delete(self, ref: SeriesRef) -> None:
        """Delete every point of a series and wait until OpenTSDB confirms it.

        Uses the DELETE verb (``tsd.http.query.allow_delete = true``) over
        the hour rows of the series' time range; OpenTSDB removes the rows
        after it answers, so this queries until the series reads back empty.
        """
        start_s, end_s, _ = self._window_s(ref)
        start_s -= start_s % 3600
        end_s += 3600 - end_s % 3600
        if not any(r.get("dps") for r in self._query(ref, KINDS, start_s, end_s)):
            return
        for kind in KINDS:
            response = self._send("DELETE", "/api/query", params=[
                ("start", str(start_s)), ("end", str(end_s)),
                ("m", f"none:{self.metric(ref, kind)}{{obs={_obs(ref)}}}")])
            message = _message(response) if response.status_code != 200 else ""
            if response.status_code == 400 and "No such name" in message:
                continue
            if response.status_code != 200:
                raise StoreError(
                    f"OpenTSDB refused to delete series {ref.series_id} "
                    f"(HTTP {response.status_code}): {message}"
                    + (" (set tsd.http.query.allow_delete = true on the server)"
                       if "allow_delete" in message or "Deleting" in message else ""))
        deadline = time.monotonic() + self.timeout
        pause = 0.05
        while any(r.get("dps") for r in self._query(ref, KINDS, start_s, end_s)):
            if time.monotonic() > deadline:
                raise StoreError(f"OpenTSDB accepted the delete of series {ref.series_id} but "
                                 f"still returned its points after {self.timeout:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def _session(url: str) -> requests.Session:
    """A keep-alive session that reads the environment once, not on every request.

    requests looks up proxies (``*_proxy``, ``no_proxy``), the CA bundle and
    ``~/.netrc`` for each request of a session that trusts the environment: a
    fifth of the client's time per 8 KiB put.  Every request goes to ``url``'s
    host, so the settings it would find there are taken once and kept.
    """
    session = requests.Session()
    found = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.cert = found["cert"]
    netrc = requests.utils.get_netrc_auth(url)
    if netrc:
        session.auth = netrc
    session.trust_env = False
    return session


def _obs(ref: SeriesRef) -> str:
    return ref.observation_uuid.replace("-", "")


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    """The server's own error message (OpenTSDB: error.message and error.details)."""
    answer = _json(response)
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        parts = [str(error.get("message", "")).strip(), str(error.get("details", "")).strip()]
        text = ": ".join(p for p in parts if p and p != "None")
        if text:
            return text[:500]
    return (response.text.strip()[:500] or f"HTTP {response.status_code}")


def _unknown_name(error: str) -> bool:
    return "Unknown metric" in error or "No such name" in error


def _line(datapoint: dict[str, Any]) -> str:
    return json.dumps(datapoint, separators=(",", ":"), allow_nan=False)


def _unescape(text: str) -> str:
    """Undo :func:`escape` (tag values come back escaped)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "-" and _is_hex(text[i + 1 : i + 3]):
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            out.extend(text[i].encode("utf-8"))
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdef" for c in pair)
