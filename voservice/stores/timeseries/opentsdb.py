"""Light-curve points in OpenTSDB, with the original SKVO metric scheme.

Per series four metrics, one value per timestamp (``<v>`` = version, ``v0``):

- ``<target>.<bandpass>.photometry.<v>``: magnitude, tagged with the
  calibration (``flux_calibration``, ``flux_calibration_level``,
  ``timeframe_reference_position``);
- ``<target>.<bandpass>.error.photometry.<v>``: magnitude error;
- ``<target>.<bandpass>.exposure.photometry.<v>``: exposure;
- ``<target>.<bandpass>.oid.photometry.<v>``: the photometry row id.

Names and tag values write every character outside ``[a-zA-Z0-9_]`` as ``-``
and its UTF-8 bytes in hex (``johnson.u`` -> ``johnson-2eu``), as the original
system did.  Every point also carries ``instrument`` (hash), ``target``,
``source``, ``dtype`` and ``obs`` (the observation uuid), so series never mix.

What it keeps: times to the millisecond (OpenTSDB's resolution; two points in
one millisecond are refused), 1970 and later; values as float64 on OpenTSDB
2.4+ (float32 on 2.3 and older).  Deleting needs OpenTSDB 2.2+ with
``tsd.http.query.allow_delete = true``.  New metric names are assigned
through ``/api/uid/assign`` when the server does not auto-create them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import requests

from voservice.stores.timeseries.base import Points, SeriesRef, StoreError, TimeSeriesStore

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
KINDS = ("observation", "error", "exposure", "oid")
_END_OF_TIME_MS = 4_102_444_800_000  # 2100-01-01


def escape(text: str) -> str:
    """The original SKVO escaping of metric parts and tag values."""
    out = []
    for char in str(text):
        if char in _SAFE:
            out.append(char)
        else:
            out.append("".join(f"-{b:02x}" for b in char.encode("utf-8")))
    return "".join(out)


class OpenTsdbTimeSeriesStore(TimeSeriesStore):
    """Points in OpenTSDB through its HTTP API."""

    def __init__(self, url: str, batch_size: int = 50, timeout: float = 30.0,
                 session: requests.Session | None = None, version: str = "v0") -> None:
        self.url = url.rstrip("/")
        self.batch_size = batch_size
        self.timeout = timeout
        self.session = session or requests.Session()
        self.version = version

    # names -------------------------------------------------------------

    def metric(self, ref: SeriesRef, kind: str) -> str:
        """The metric name of one kind of value of a series."""
        middle = {"observation": "", "error": "error.", "exposure": "exposure.",
                  "oid": "oid."}[kind]
        return (f"{escape(ref.target)}.{escape(ref.bandpass_uid)}.{middle}photometry."
                f"{self.version}")

    def tags(self, ref: SeriesRef, kind: str) -> dict[str, str]:
        """The tags every point of a series carries."""
        return {"instrument": escape(ref.instrument_hash), "target": escape(ref.target),
                "source": escape(ref.source), "dtype": kind,
                "obs": ref.observation_uuid.replace("-", "")}

    # HTTP --------------------------------------------------------------

    def _post(self, path: str, body: Any) -> requests.Response:
        data = json.dumps(body, allow_nan=False).encode()
        try:
            return self.session.post(f"{self.url}{path}", data=data, timeout=self.timeout,
                                     headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise StoreError(f"OpenTSDB at {self.url} does not answer: "
                             f"{type(exc).__name__}") from None

    def _put_batch(self, points: list[dict[str, Any]], assigned: bool = False) -> None:
        response = self._post("/api/put?details", points)
        if response.status_code in (200, 204):
            return
        try:
            errors = response.json().get("errors", [])
        except ValueError:
            errors = []
        unknown = sorted({e["datapoint"]["metric"] for e in errors
                          if "Unknown metric" in str(e.get("error", ""))})
        if unknown and not assigned:
            self._post("/api/uid/assign", {"metric": unknown})
            self._put_batch(points, assigned=True)
            return
        first = errors[0].get("error") if errors else f"HTTP {response.status_code}"
        raise StoreError(f"OpenTSDB refused {len(errors) or 'some'} points: {first}")

    # the store ---------------------------------------------------------

    def put(self, ref: SeriesRef, points: Points) -> None:
        """Write every point of a series, or none (what was written is deleted again)."""
        for name in ("magnitude", "magnitude_error", "exposure"):
            if not np.all(np.isfinite(getattr(points, name))):
                raise StoreError(f"series {ref.series_id}: {name} must be finite numbers")
        if len(points) and points.time_us.min() < 0:
            raise StoreError(f"series {ref.series_id}: OpenTSDB cannot store times before 1970")
        ms = points.time_us // 1000
        if len(np.unique(ms)) != len(ms):
            raise StoreError(f"series {ref.series_id}: two points in the same millisecond; "
                             "OpenTSDB keeps milliseconds")
        self.delete(ref)
        datapoints = []
        base = {kind: (self.metric(ref, kind), self.tags(ref, kind)) for kind in KINDS}
        for i, t in enumerate(ms.tolist()):
            metric, tags = base["observation"]
            datapoints.append({"metric": metric, "timestamp": t,
                               "value": float(points.magnitude[i]), "tags": {
                                   **tags,
                                   "flux_calibration": escape(points.flux_calibration[i]),
                                   "flux_calibration_level":
                                       str(int(points.flux_calibration_level[i])),
                                   "timeframe_reference_position":
                                       escape(points.timeframe_reference_position[i])}})
            for kind, values in (("error", points.magnitude_error),
                                 ("exposure", points.exposure)):
                metric, tags = base[kind]
                datapoints.append({"metric": metric, "timestamp": t,
                                   "value": float(values[i]), "tags": tags})
            metric, tags = base["oid"]
            datapoints.append({"metric": metric, "timestamp": t, "value": int(ref.series_id),
                               "tags": tags})
        try:
            for start in range(0, len(datapoints), self.batch_size):
                self._put_batch(datapoints[start : start + self.batch_size])
        except StoreError:
            self.delete(ref)
            raise

    def _query(self, ref: SeriesRef, kind: str, start_ms: int, end_ms: int,
               delete: bool = False) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "start": max(start_ms, 0), "end": end_ms, "msResolution": True,
            "queries": [{"aggregator": "none", "metric": self.metric(ref, kind),
                         "filters": [{"type": "literal_or", "tagk": "obs", "groupBy": True,
                                      "filter": ref.observation_uuid.replace("-", "")}]}],
        }
        if delete:
            body["delete"] = True
        response = self._post("/api/query", body)
        if response.status_code == 400 and "No such name" in response.text:
            return []
        if response.status_code != 200:
            raise StoreError(f"OpenTSDB query failed with HTTP {response.status_code}")
        return response.json()

    def _window(self, ref: SeriesRef, start_us: int | None, end_us: int | None
                ) -> tuple[int, int]:
        start = (ref.start_us if start_us is None else start_us)
        end = (ref.end_us if end_us is None else end_us)
        return math.floor(start / 1000), math.ceil(end / 1000)

    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The points of a series in time order (millisecond times)."""
        start_ms, end_ms = self._window(ref, start_us, end_us)
        if end_ms < start_ms:
            return
        rows: dict[int, list[Any]] = {}
        for series in self._query(ref, "observation", start_ms, end_ms):
            tags = series.get("tags", {})
            for ts, value in series.get("dps", {}).items():
                rows[int(ts)] = [float(value), None, None, _unescape(tags.get(
                    "flux_calibration", "")), int(tags.get("flux_calibration_level", 0)),
                    _unescape(tags.get("timeframe_reference_position", ""))]
        for index, kind in ((1, "error"), (2, "exposure")):
            for series in self._query(ref, kind, start_ms, end_ms):
                for ts, value in series.get("dps", {}).items():
                    if int(ts) in rows:
                        rows[int(ts)][index] = float(value)
        times = sorted(t for t in rows
                       if (start_us is None or t * 1000 >= start_us)
                       and (end_us is None or t * 1000 <= end_us))
        for begin in range(0, len(times), chunk_size):
            part = times[begin : begin + chunk_size]
            values = [rows[t] for t in part]
            yield Points(
                time_us=np.asarray(part, dtype=np.int64) * 1000,
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
        """Delete every point of a series (all four metrics, at any time)."""
        for kind in KINDS:
            self._query(ref, kind, 0, _END_OF_TIME_MS, delete=True)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


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
