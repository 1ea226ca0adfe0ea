"""``/api/``: the original SKVO's JSON API for its old clients, on the new stores.

The routes, bodies and answers of the Django service SKVO replaces:

- ``GET /api/``: the map of the API;
- ``/api/photometry/lookup/``: the series whose target lies in a box of
  right ascension and declination (``box_size_ra``/``box_size_de`` degrees
  either side, default 5), around ``ra``/``de`` or a ``target`` name, in
  ``POST`` (form or JSON) or ``GET`` path form
  (``.../lookup/[dataset/<d>/](ra/<ra>/de/<de>|target/<name>)/[box_size_ra/<x>/][box_size_de/<y>/]``);
  only series whose points the requester may fetch are listed;
- ``POST /api/photometry/aref/``: the points of a series (the "access
  reference" body a lookup answer gives what to fill in with);
- ``GET /api/photometry/metadata/``: the nested metadata of every series
  the requester may see.

Search, access rules and points are the archive's
(:mod:`voservice.archive.records`, :mod:`voservice.archive.lightcurves`,
:mod:`voservice.access`, :mod:`voservice.resolver`), as for the VO endpoints.
Errors are JSON ``{"query_status": "ERROR", "detail": ..., "parameter": ...}``
naming the parameter, never a stack trace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, request

from voservice import resolver
from voservice.access import ACCESS_RIGHTS, can_download, download_denial
from voservice.archive import lightcurves, records
from voservice.context import principal, services
from voservice.protocols import dali
from voservice.stores.timeseries.base import StoreError
from voservice.urls import lightcurve_url

bp = Blueprint("seedapi", __name__)

#: the original SKVO's box half-widths when a request gives none (degrees)
DEFAULT_BOX_SIZE = 5.0
#: the GET path form's keys, in the original's order
PATH_KEYS = ("dataset", "ra", "de", "target", "box_size_ra", "box_size_de")
#: longest accepted target name / dataset
MAX_NAME = 255
JSON = "application/json"
#: the original's date format in the access-reference body (ISO 8601 is accepted too)
SEED_DATE = "%Y-%m-%d %H:%M:%S"
_EPOCH = dt.datetime(1970, 1, 1)


class ApiError(Exception):
    """A request the API answers with an error document."""

    def __init__(self, status: int, detail: str, parameter: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.parameter = status, detail, parameter
        self.headers = dict(headers or {})


def _json(doc: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(doc, indent=1, allow_nan=False) + "\n", status=status,
                    mimetype=JSON, headers=dict(headers or {}))


def error(exc: ApiError) -> Response:
    """The JSON error document of an ApiError."""
    doc = {"query_status": "ERROR", "detail": exc.detail, "parameter": exc.parameter}
    return _json(doc, exc.status, exc.headers)


def usage(parameter: str, detail: str) -> ApiError:
    """400: a parameter is wrong; the message names it."""
    return ApiError(400, f"UsageFault: {parameter}: {detail}", parameter)


# --------------------------------------------------------------------------
# Values


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise usage(name, "must be a string")
    text = str(value).strip()
    if len(text) > MAX_NAME or "\x00" in text:
        raise usage(name, f"at most {MAX_NAME} characters, no NUL")
    return text


def number(value: Any, name: str) -> float:
    """A finite number from a string or a JSON number (400 naming ``name`` otherwise)."""
    if isinstance(value, bool):
        raise usage(name, f"{value!r} is not a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise usage(name, f"{str(value)[:60]!r} is not a number") from None
    if not math.isfinite(out):
        raise usage(name, f"{str(value)[:60]!r} is not a finite number")
    return out


def _maxrec(values: Mapping[str, Any], default: int, hard: int) -> int:
    text = values.get("maxrec")
    if text is None or (isinstance(text, str) and not text.strip()):
        return default
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise usage("MAXREC", "must be a non-negative integer")
    try:
        value = int(text)
    except ValueError:
        raise usage("MAXREC", f"{str(text)[:60]!r} is not a non-negative integer") from None
    if value < 0:
        raise usage("MAXREC", "must be a non-negative integer")
    return min(value, hard)


def _limits() -> tuple[int, int]:
    settings = services().settings
    return int(settings.get("vo", "maxrec_default")), int(settings.get("vo", "maxrec_hard"))


def iso(value: Any) -> str | None:
    """A UTC time as the original answered it: ISO 8601 with ``Z``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", ""))
    return value.replace(tzinfo=None).isoformat() + "Z"


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# --------------------------------------------------------------------------
# The shapes of the original's answers


def _access_rights(access: str) -> dict[str, Any]:
    # the original kept access rights in a table; its ids follow ACCESS_RIGHTS' order
    return {"id": ACCESS_RIGHTS.index(access) + 1, "access": access}


def _target(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    t = r["target"]
    return {"id": t["target_id"], **{k: t[k] for k in (
        "target", "catalogue", "catalogue_value", "description", "right_ascension",
        "declination", "equinox", "target_class")}}


def _instrument(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    i = r["instrument"]
    return {"id": i["instrument_id"], **{k: _finite(i[k]) for k in (
        "instrument", "instrument_uid", "instrument_hash", "telescope", "camera", "spectroscope",
        "field_of_view", "description")}}


def _facility(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f = r["facility"]
    return {"id": f["facility_id"], "facility": f["facility"],
            "facility_uid": f["facility_uid"], "description": f["description"]}


def _organisation(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    g = r["organisation"]
    return {"id": g["organisation_id"], "organisation": g["organisation"],
            "organisation_did": g["organisation_did"], "email": g["email"]}


def _dataid(r: dict[str, dict[str, Any]], organisation: Any) -> dict[str, Any]:
    d = r["dataid"]
    return {"id": d["dataid_id"], "source": r["observation"]["source"], "title": d["title"],
            "publisher": d["publisher"], "publisher_did": d["publisher_did"],
            "organisation": organisation}


def _bandpass(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    b = r["bandpass"]
    return {"id": b["bandpass_id"], **{k: b[k] for k in (
        "bandpass", "bandpass_uid", "spectral_band_type", "photometric_system")}}


def _observation_ids(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    o = r["observation"]
    return {"id": o["observation_id"], "observation_hash": o["observation_hash"],
            "observation_uuid": o["observation_uuid"]}


def lookup_item(r: dict[str, dict[str, Any]], separation: float, base_url: str
                ) -> dict[str, Any]:
    """A lookup answer's entry (the original's shape, with the separation and the
    series' VOTable light curve)."""
    o, p = r["observation"], r["photometry"]
    return {
        "start_date": iso(p["start_date"]), "end_date": iso(p["end_date"]),
        "observation": _observation_ids(r), "instrument": _instrument(r),
        "dataid": _dataid(r, r["organisation"]["organisation_id"]),
        "organisation": _organisation(r), "facility": _facility(r),
        "access_rights": _access_rights(o["access"]), "target": _target(r),
        "bandpass": _bandpass(r), "samples": p["n_points"], "separation": separation,
        "lightcurve": lightcurve_url(base_url, o["observation_uuid"],
                                     r["bandpass"]["bandpass_uid"]),
    }


def metadata_item(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A metadata answer's entry: the nested document of the original's docs."""
    o, p = r["observation"], r["photometry"]
    return {
        "observation": {
            "id": o["observation_id"], "access": _access_rights(o["access"]),
            "target": _target(r), "instrument": _instrument(r), "facility": _facility(r),
            "dataid": _dataid(r, _organisation(r)), "observation_uuid": o["observation_uuid"],
            "observation_hash": o["observation_hash"],
        },
        "bandpass": _bandpass(r), "media": p["media"], "start_date": iso(p["start_date"]),
        "end_date": iso(p["end_date"]), "samples": p["n_points"],
    }


# --------------------------------------------------------------------------
# The API's map


@bp.route("/api/", methods=["GET"])
def api_root() -> Response:
    """The API's endpoints, as the original's ``api_root`` listed them."""
    base = services().base_url + "/api/photometry"
    return _json({
        "photometry-lookup": f"{base}/lookup/",
        "photometry-lookup-get-coo": f"{base}/lookup/ra/<ra>/de/<de>/",
        "photometry-lookup-get-target": f"{base}/lookup/target/<target>/",
        "photometry-access-reference": f"{base}/aref/",
        "metadata": f"{base}/metadata/",
    })


# --------------------------------------------------------------------------
# Lookup


def _body() -> dict[str, Any]:
    """A POST body's fields (JSON object or form), names lower-cased."""
    if request.mimetype == JSON or (request.data and not request.form):
        try:
            doc = json.loads(request.get_data(cache=True) or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise usage("body", "not a JSON document") from None
        if not isinstance(doc, dict):
            raise usage("body", "must be a JSON object")
        return {str(k).lower(): v for k, v in doc.items()}
    out: dict[str, Any] = {}
    for key, values in request.form.lists():
        if len(set(values)) > 1:
            raise usage(key, f"given {len(values)} times; it takes one value")
        out[key.lower()] = values[0]
    return out


def _query_args() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in request.args.lists():
        if len(set(values)) > 1:
            raise usage(key, f"given {len(values)} times; it takes one value")
        out[key.lower()] = values[0]
    return out


def parse_path(rest: str) -> dict[str, str]:
    """The key/value segments of the GET form (``ra/10/de/15/box_size_ra/3/``)."""
    parts = [seg for seg in rest.split("/") if seg != ""]
    out: dict[str, str] = {}
    if len(parts) % 2:
        raise usage(parts[-1][:60], "a path segment without its value; the path is "
                    "[dataset/<d>/](ra/<ra>/de/<de>|target/<name>)/[box_size_ra/<x>/]"
                    "[box_size_de/<y>/]")
    for key, value in zip(parts[::2], parts[1::2], strict=True):
        if key not in PATH_KEYS:
            raise usage(key[:60], f"unknown path segment; known: {', '.join(PATH_KEYS)}")
        if key in out:
            raise usage(key, "given twice")
        out[key] = value
    return out


def _centre(values: Mapping[str, Any]) -> tuple[float, float]:
    """The box centre: ``ra``/``de``, else the position the ``target`` name resolves to."""
    ra, de = values.get("ra"), values.get("de")
    given = [v is not None and v != "" for v in (ra, de)]
    if all(given):
        dec = number(de, "de")
        if not -90.0 <= dec <= 90.0:
            raise usage("de", f"{dec!r} is outside [-90, 90] degrees")
        return number(ra, "ra") % 360.0, dec
    if any(given):
        missing = "de" if given[0] else "ra"
        raise usage(missing, "missing: ra and de go together")
    name = values.get("target")
    if name is None or name == "":
        raise usage("target", "missing: give target, or ra and de")
    name = _text(name, "target")
    svc = services()
    res = resolver.resolve(svc.engine, principal(), name,
                           resolver.ResolverConfig.from_settings(svc.settings), svc.writer())
    if res.position is None:
        raise ApiError(404, f"NotFoundFault: target: {name!r}: {res.note}", "target")
    return res.position


def _half(values: Mapping[str, Any], name: str, top: float) -> float:
    value = values.get(name)
    if value is None or value == "":
        return DEFAULT_BOX_SIZE
    size = number(value, name)
    if not 0.0 <= size <= top:
        raise usage(name, f"{size!r}: must be from 0 to {top:g} degrees (either side)")
    return size


def lookup(values: Mapping[str, Any]) -> Response:
    """The series in the box that the requester may fetch, nearest first."""
    default, hard = _limits()
    maxrec = _maxrec(values, default, hard)
    half_ra = _half(values, "box_size_ra", 360.0)
    half_de = _half(values, "box_size_de", 180.0)
    dataset = values.get("dataset")
    dataset = _text(dataset, "dataset") if dataset not in (None, "") else None
    ra, dec = _centre(values)
    svc = services()
    box = records.Box(ra, dec, min(half_ra, 180.0), half_de)
    found, overflow = records.series_in_box(svc.engine, principal(), box, source=dataset,
                                            limit=maxrec, target_limit=hard)
    base = svc.base_url
    doc = [lookup_item(r, sep, base) for r, sep in found]
    return _json(doc, headers=_status_headers(overflow))


def _status_headers(overflow: bool) -> dict[str, str]:
    # a JSON list has no room for DALI's QUERY_STATUS: it travels in a header
    return {"X-SKVO-Query-Status": "OVERFLOW" if overflow else "OK"}


def _answer(make: Any, *args: Any) -> Response:
    try:
        return make(*args)
    except ApiError as exc:
        return error(exc)


@bp.route("/api/photometry/lookup/", methods=["GET", "POST"])
def lookup_form() -> Response:
    """POST (form or JSON body; the original's form); GET with a query string too."""
    def make() -> Response:
        values = _query_args()
        if request.method == "POST":
            values.update(_body())
        return lookup(values)

    return _answer(make)


@bp.route("/api/photometry/lookup/<path:rest>", methods=["GET"])
def lookup_path(rest: str) -> Response:
    """The GET path forms."""
    def make() -> Response:
        values: dict[str, Any] = {k: v for k, v in _query_args().items() if k == "maxrec"}
        values.update(parse_path(rest))
        return lookup(values)

    return _answer(make)


# --------------------------------------------------------------------------
# Access reference: the points of a series


def _field(doc: Mapping[str, Any], outer: str, inner: str) -> Any:
    part = doc.get(outer)
    if part is None:
        return None
    if not isinstance(part, dict):
        raise usage(outer, f"must be an object with {inner}")
    return part.get(inner)


def _when(value: Any, name: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise usage(name, "must be a string YYYY-MM-DD HH:MM:SS (UTC)")
    text = value.strip()
    try:
        return dt.datetime.strptime(text, SEED_DATE)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise usage(name, f"{text[:60]!r}: not a time YYYY-MM-DD HH:MM:SS (UTC)") from None
    if when.tzinfo is not None:
        if when.utcoffset() != dt.timedelta(0):
            raise usage(name, f"{text[:60]!r}: give UTC (no offset)")
        when = when.replace(tzinfo=None)
    return when


def _us(when: dt.datetime | None) -> int | None:
    return None if when is None else int((when - _EPOCH) / dt.timedelta(microseconds=1))


def _series_of(doc: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], int | None,
                                                int | None]:
    """The record the body names (404 if the requester may not see it) and the window."""
    oid = _field(doc, "observation", "id")
    if oid is None:
        raise usage("observation.id", "missing")
    if isinstance(oid, bool) or not isinstance(oid, int | str):
        raise usage("observation.id", "must be an integer")
    try:
        observation_id = int(oid)
    except ValueError:
        raise usage("observation.id", f"{str(oid)[:60]!r} is not an integer") from None
    if not 0 <= observation_id < 2**63:
        raise usage("observation.id", "out of range")
    start = _when(doc.get("start_date"), "start_date")
    end = _when(doc.get("end_date"), "end_date")
    if start is not None and end is not None and start > end:
        raise usage("start_date", "after end_date")
    band = _field(doc, "bandpass", "bandpass_uid")
    found = records.series_records(services().engine, principal(), fetchable=False,
                                   observation_id=observation_id, limit=1000)
    if not found:
        raise ApiError(404, f"NotFoundFault: observation.id: no observation {observation_id}",
                       "observation.id")
    if band is None and len(found) > 1:
        raise usage("bandpass.bandpass_uid", "missing: the observation has "
                    f"{len(found)} bandpasses")
    if band is not None:
        found = [r for r in found if r["bandpass"]["bandpass_uid"] == str(band)]
        if not found:
            raise ApiError(404, f"NotFoundFault: bandpass.bandpass_uid: observation "
                           f"{observation_id} has no series in {str(band)[:60]!r}",
                           "bandpass.bandpass_uid")
    record = found[0]
    checks = (("instrument", "instrument_hash", record["instrument"]["instrument_hash"]),
              ("target", "catalogue_value", record["target"]["catalogue_value"]),
              ("dataid", "source", record["observation"]["source"]))
    for outer, inner, actual in checks:
        given = _field(doc, outer, inner)
        if given is not None and str(given) != str(actual):
            raise ApiError(404, f"NotFoundFault: {outer}.{inner}: {str(given)[:60]!r} is not "
                           f"that of observation {observation_id}", f"{outer}.{inner}")
    end_us = _us(end)
    if end_us is not None and end is not None and not end.microsecond:
        end_us += 999_999  # a time to the second (the original's format) means all of it
    return record, _us(start), end_us


def _point(i: int, chunk: Any) -> dict[str, Any]:
    us = int(chunk.time_us[i])
    return {
        "magnitude": _finite(float(chunk.magnitude[i])),
        "error": _finite(float(chunk.magnitude_error[i])),
        "timestamp": (_EPOCH + dt.timedelta(microseconds=us)).isoformat() + "Z",
        "mjd": float(chunk.mjd[i]),
        "timeframe_reference_position": chunk.timeframe_reference_position[i],
        "flux_calibration": chunk.flux_calibration[i],
        "flux_calibration_level": int(chunk.flux_calibration_level[i]),
        "exposure": _finite(float(chunk.exposure[i])),
    }


def _aref_body(store: Any, series: lightcurves.Series, record: dict[str, dict[str, Any]],
               start: int | None, end: int | None, maxrec: int) -> Iterator[bytes]:
    """``{"data": [points...], "metadata": {...}}``, the points streamed as read (the
    metadata, which counts them, comes last; JSON objects are unordered)."""
    reader = lightcurves.read(store, series.ref, start, end)
    with contextlib.closing(reader):
        head, sent, first, last, overflow = b'{"data": [', 0, None, None, False
        for chunk in reader:
            n = len(chunk)
            if sent + n > maxrec:
                n, overflow = maxrec - sent, True
            items = [json.dumps(_point(i, chunk), allow_nan=False) for i in range(n)]
            if n:
                first = first or items[0]
                last = items[-1]
                yield head + (b",\n" if sent else b"\n") + ",\n".join(items).encode()
                head = b""
                sent += n
            if overflow:
                break
    meta = {
        "start_date": json.loads(first)["timestamp"] if first else None,
        "end_date": json.loads(last)["timestamp"] if last else None,
        "observation": _observation_ids(record), "instrument": _instrument(record),
        "bandpass": _bandpass(record), "samples": sent, "target": _target(record),
        "dataid": _dataid(record, record["organisation"]["organisation_id"]),
        "organisation": _organisation(record), "facility": _facility(record),
        "access_rights": _access_rights(record["observation"]["access"]),
        "query_status": "OVERFLOW" if overflow else "OK",
    }
    yield head + b'\n], "metadata": ' + json.dumps(meta, allow_nan=False).encode() + b"}\n"


def _store_error(message: str, status: int) -> Response:
    # a StoreError (answered 400 by dali.stream) is the store failing: 503
    return error(ApiError(503 if status == 400 else status, f"Error: {message}"))


@bp.route("/api/photometry/aref/", methods=["POST"])
def aref() -> Response:
    """The points of one series (the original's access-reference body and answer)."""
    def make() -> Response:
        try:
            doc = json.loads(request.get_data(cache=True) or b"")
        except (ValueError, UnicodeDecodeError):
            raise usage("body", "send the access reference as a JSON object") from None
        if not isinstance(doc, dict):
            raise usage("body", "must be a JSON object")
        _default, hard = _limits()
        maxrec = _maxrec({**{k.lower(): v for k, v in doc.items() if k.lower() == "maxrec"},
                          **_query_args()}, hard, hard)
        record, start, end = _series_of(doc)
        who = principal()
        o = record["observation"]
        if not can_download(who, o["access"], o["source"]):
            status, message = download_denial(who)
            headers = {"WWW-Authenticate": 'Basic realm="SKVO"'} if status == 401 else {}
            raise ApiError(status, message, "observation.id", headers)
        svc = services()
        series = lightcurves.find_series(svc.engine, o["observation_uuid"],
                                         record["bandpass"]["bandpass_uid"])
        if not series:  # removed in between
            raise ApiError(404, "NotFoundFault: observation.id: the series is gone",
                           "observation.id")
        body = _aref_body(svc.timeseries, series[0], record, start, end, maxrec)
        return dali.stream(body, JSON, safe=(StoreError,), error=_store_error)

    return _answer(make)


# --------------------------------------------------------------------------
# Metadata


@bp.route("/api/photometry/metadata/", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def metadata() -> Response:
    """The nested metadata of the series the requester may see (MAXREC, OFFSET)."""
    def make() -> Response:
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed: metadata are loaded with `skvo ingest`, "
                           "not through the API; GET lists them", None, {"Allow": "GET, HEAD"})
        values = _query_args()
        default, hard = _limits()
        maxrec = _maxrec(values, default, hard)
        offset = values.get("offset")
        try:
            skip = int(offset) if offset not in (None, "") else 0
        except ValueError:
            raise usage("OFFSET", f"{offset[:60]!r} is not a non-negative integer") from None
        if not 0 <= skip < 2**62:
            raise usage("OFFSET", "must be a non-negative integer")
        found = records.series_records(services().engine, principal(), fetchable=False,
                                       limit=maxrec + 1, offset=skip)
        overflow = len(found) > maxrec
        headers = _status_headers(overflow)
        if overflow:
            nxt = (f"{services().base_url}/api/photometry/metadata/"
                   f"?MAXREC={maxrec}&OFFSET={skip + maxrec}")
            headers["Link"] = f'<{nxt}>; rel="next"'
        return _json([metadata_item(r) for r in found[:maxrec]], headers=headers)

    return _answer(make)


@bp.route("/api/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str) -> Response:
    """Anything else under /api/: a JSON 404 (the original's media upload is not served)."""
    return error(ApiError(404, f"NotFoundFault: /api/{rest[:80]} is not an endpoint of this "
                          f"API; see {services().base_url}/api/"))


def register(app: Flask) -> None:
    """Add ``/api/`` to the application."""
    app.register_blueprint(bp)
