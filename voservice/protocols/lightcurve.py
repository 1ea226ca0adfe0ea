"""Light curves, their previews and the image frames, by stable URLs.

- ``/lightcurve/<uuid>/<bandpass_uid>``: one series as a VOTable 1.4 with a
  TIMESYS (or CSV, ...: RESPONSEFORMAT); TIME, PERIOD/EPOCH, BIN, MAXREC.
- ``/lightcurve/<uuid>``: every bandpass of that night in one table (BAND=).
- ``/lightcurve/<uuid>/<bandpass_uid>/preview.png``: a plot.
- ``/frame/<frame_id>``: the bytes of a frame (ETag, Range).

Restricted series do not exist for users without a grant (404); on_demand
data answer 401/403 without one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, request

from voservice import lightcurves, preview, tables
from voservice.access import can_download, can_see, download_denial
from voservice.app import principal, services
from voservice.catalog import publisher_did
from voservice.lightcurves import OptionError, Series
from voservice.protocols import dali
from voservice.stores.timeseries.base import StoreError
from voservice.votable import Info, UnwritableValue, write_table

log = logging.getLogger(__name__)

bp = Blueprint("lightcurve", __name__)

#: the largest id a database row can have (a signed 64-bit integer)
MAX_ID = 2**63 - 1


def _not_found(what: str) -> Response:
    return Response(f"NotFoundFault: no {what} here\n", status=404, mimetype="text/plain")


def _denied() -> Response:
    status, message = download_denial(principal())
    headers = {"WWW-Authenticate": 'Basic realm="SKVO"'} if status == 401 else {}
    return Response(message + "\n", status=status, mimetype="text/plain", headers=headers)


def _check(series: list[Series]) -> Response | None:
    """404 for series the user may not see, 401/403 for data they may not fetch."""
    who = principal()
    if not series or not all(can_see(who, s.access, s.source) for s in series):
        return _not_found("such light curve")
    if not all(can_download(who, s.access, s.source) for s in series):
        return _denied()
    return None


def _serve(series: list[Series], multiband: bool) -> Response:
    svc = services()
    p = dali.params()
    try:
        maxrec = dali.maxrec(p, svc.settings.get("vo", "maxrec_hard"),
                             svc.settings.get("vo", "maxrec_hard"))
        fmt = dali.response_format(p)
        options = lightcurves.parse_options(lambda name: dali.single(p, name), maxrec)
    except (dali.UsageError, OptionError) as exc:
        return dali.error_response(f"UsageFault: {exc}")
    if multiband and options.bands is not None:
        series = [s for s in series if s.bandpass_uid in options.bands]
        if not series:
            return dali.error_response(f"UsageFault: BAND: none of {sorted(options.bands)} "
                                       "was observed that night")
    first = series[0]
    did = publisher_did(svc.authority, first.observation_uuid)
    state: dict[str, bool] = {}

    trailer = dali.overflow_trailer(state, options.maxrec, "points")
    settings = svc.settings
    ivoid = f"ivo://{svc.authority}/skvo"
    origin = lightcurves.data_origin(
        publisher=settings.get("vo", "publisher"), ivoid=ivoid,
        contact=settings.get("vo", "contact"),
        citation=settings.get("vo", "citation") or f"{settings.get('vo', 'title')}, {ivoid}",
        requested=dt.datetime.now(dt.UTC))
    source = _points(lightcurves.rows(svc.timeseries, series, options, multiband, state))
    try:
        # read the first points now: a store that fails (or a full pool) answers an
        # error document, not a cut transfer
        head = next(source, None)
    except StoreError as exc:
        return dali.error_response(f"Error: {exc}", 503)
    rows = dali.Guarded(source if head is None else itertools.chain([head], source),
                        source.close)
    chunks = write_table(
        lightcurves.fields(first, options, multiband),
        rows,
        format=fmt.name,
        infos=[Info("standardID", "ivo://ivoa.net/std/DALI#results-1.1"),
               Info("publisher_did", did), *origin],
        params=lightcurves.params(first, options, did, multiband),
        timesys=[lightcurves.timesys(first)],
        coosys=[lightcurves.coosys()],
        groups=lightcurves.groups(series, multiband),
        table_name="lightcurve",
        table_description=lightcurves.description(series, options, multiband),
        trailer=trailer,
        catch=(StoreError,),
        value_errors=True,
    )
    return dali.stream(chunks, fmt.mime, safe=(StoreError, UnwritableValue),
                       error=lambda message, status: dali.error_response(f"Error: {message}",
                                                                         status))


def _points(rows: Iterator[Any]) -> Iterator[Any]:
    """The light curve's chunks; a failure to read them raises StoreError (logged)."""
    with contextlib.closing(rows):
        try:
            yield from rows
        except StoreError:
            raise
        except Exception as exc:
            if dali.is_pool_timeout(exc):
                raise
            log.error("reading light-curve points failed", exc_info=exc)
            raise StoreError("the light-curve points could not be read; the error is "
                             "logged") from None


@bp.route("/lightcurve/<uuid>/<path:bandpass_uid>", methods=["GET", "POST"])
def lightcurve(uuid: str, bandpass_uid: str) -> Response:
    """One light curve."""
    if bandpass_uid.endswith("/preview.png"):
        return preview_png(uuid, bandpass_uid[: -len("/preview.png")])
    series = lightcurves.find_series(services().engine, uuid, bandpass_uid)
    return _check(series) or _serve(series, multiband=False)


@bp.route("/lightcurve/<uuid>", methods=["GET", "POST"])
def multiband(uuid: str) -> Response:
    """Every bandpass of the night of an observation, in one table."""
    engine = services().engine
    found = lightcurves.find_series(engine, uuid)
    who = principal()
    if not any(can_see(who, s.access, s.source) for s in found):
        # a restricted uuid is unknown, even when its night has other, visible series
        return _not_found("such light curve")
    night = [s for s in lightcurves.night_series(engine, found[0])
             if can_see(who, s.access, s.source)]
    return _check(night) or _serve(night, multiband=True)


def preview_png(uuid: str, bandpass_uid: str) -> Response:
    """A PNG plot of a light curve (cached)."""
    svc = services()
    series = lightcurves.find_series(svc.engine, uuid, bandpass_uid)
    refused = _check(series)
    if refused is not None:
        return refused
    s = series[0]

    def make() -> bytes:
        from voservice.stores.timeseries.base import Points

        points = Points.concat(list(svc.timeseries.read(s.ref)))
        return preview.render(points, f"{s.target} {s.night} ({s.source})", s.bandpass_uid)

    data = preview.cached(svc.settings.get("server", "cache_path"),
                          f"{s.photometry_id}:{s.data_md5}", make)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/frame/<int:frame_id>", methods=["GET", "HEAD"])
def frame(frame_id: int) -> Response:
    """The bytes of a frame, with ETag and Range support."""
    if frame_id > MAX_ID:
        return _not_found("such frame")  # no database integer holds it
    svc = services()
    fr, ph = tables.sa_table("skvo.frame"), tables.sa_table("skvo.photometry")
    o = tables.sa_table("skvo.observation")
    with svc.engine.connect() as conn:
        row = conn.execute(
            sa.select(fr.c.media_ref, fr.c.content_type, fr.c.md5, o.c.access, o.c.source)
            .select_from(fr.join(ph, ph.c.photometry_id == fr.c.photometry_id)
                         .join(o, o.c.observation_id == ph.c.observation_id))
            .where(fr.c.frame_id == frame_id)).first()
    who = principal()
    if row is None or not can_see(who, row.access, row.source):
        return _not_found("such frame")
    if not can_download(who, row.access, row.source):
        return _denied()
    try:
        data, content_type = svc.media.get(row.media_ref)
    except KeyError:
        return _not_found("frame bytes (the media store lost them)")
    response = Response(data, mimetype=content_type or row.content_type)
    response.set_etag(row.md5)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))


def register(app: Flask) -> None:
    """Add the light-curve and frame endpoints."""
    app.register_blueprint(bp)
