"""Light curves, their previews and the image frames, by stable URLs.

- ``/lightcurve/<uuid>/<bandpass_uid>``: one series as a VOTable 1.4 with a
  TIMESYS (or CSV, ...: RESPONSEFORMAT); TIME, PERIOD/EPOCH, BIN, MAXREC;
  ``TIMESYS=BJD_TDB|HJD_UTC|MJD_UTC`` converts its times (as star curves do).
- ``/lightcurve/<uuid>``: every bandpass of that night in one table (BAND=).
- ``/lightcurve/<uuid>/<bandpass_uid>/preview.png``: a plot.
- ``/lightcurve/star/<target_id>/<bandpass_uid>``: a star's curve in one band
  over all the nights the user may fetch (:mod:`voservice.archive.stars`);
  CALIB, TIMEREF besides the options above; ``PERIOD=catalog`` folds on the
  star's default ephemeris.  ``.../preview.png`` plots it,
  ``.../preview-folded.png`` folded on that ephemeris.
  ``TIMESYS=BJD_TDB|HJD_UTC|MJD_UTC`` converts every time to one system.
- ``/lightcurve/star/<target_id>``: every band of the star, a TABLE per band.
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
from dataclasses import replace
from typing import Any

import numpy as np
import sqlalchemy as sa
from flask import Blueprint, Flask, Response, request

from voservice import ephemeris, preview, tables
from voservice.access import can_download, can_see, download_denial
from voservice.analysis.common import AnalysisError
from voservice.archive import lightcurves, stars
from voservice.archive.lightcurves import OptionError, Series
from voservice.catalog import publisher_did, star_did
from voservice.context import principal, services
from voservice.protocols import dali
from voservice.stores.timeseries.base import StoreError
from voservice.votable import Info, TablePart, TimeSys, UnwritableValue, write_table, write_tables

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
        get = _with_catalog_period(p, series[0].target_id)
        options = lightcurves.parse_options(get, maxrec)
        convert = stars.parse_timesys(dali.single(p, "TIMESYS"))
    except (dali.UsageError, OptionError, stars.StarError) as exc:
        return dali.error_response(f"UsageFault: {exc}")
    if multiband and options.bands is not None:
        series = [s for s in series if s.bandpass_uid in options.bands]
        if not series:
            return dali.error_response(f"UsageFault: BAND: none of {sorted(options.bands)} "
                                       "was observed that night")
    first = series[0]
    refused = _convertible(series, options, convert)
    if refused is not None:
        return dali.error_response(f"UsageFault: TIMESYS={convert}: {refused}")
    did = publisher_did(svc.authority, first.observation_uuid)
    state: dict[str, bool] = {}

    trailer = dali.overflow_trailer(state, options.maxrec, "points")
    origin = _origin()
    source = _points(_converting(lightcurves.rows(svc.timeseries, series, options, multiband,
                                                  state), first, options, convert))
    try:
        # read the first points now: a store that fails (or a full pool) answers an
        # error document, not a cut transfer
        head = next(source, None)
    except StoreError as exc:
        return dali.error_response(f"Error: {exc}", 503)
    rows = dali.Guarded(source if head is None else itertools.chain([head], source),
                        source.close)
    fields = lightcurves.fields(first, options, multiband)
    timesys = lightcurves.timesys(first)
    notes: list[Info] = []
    if convert is not None:
        timescale, refposition = stars.TIMESYSTEMS[convert]
        timesys = replace(timesys, timescale=timescale, refposition=refposition)
        fields[0].description = converted_time_description(convert)
        notes = [Info("note", n) for n in stars.conversion_notes(
            stars.Part(first.bandpass_uid, refposition, "", [first], convert))]
    chunks = write_table(
        fields,
        rows,
        format=fmt.name,
        infos=[Info("standardID", "ivo://ivoa.net/std/DALI#results-1.1"),
               Info("publisher_did", did), *origin, *notes],
        params=lightcurves.params(first, options, did, multiband),
        timesys=[timesys],
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


def converted_time_description(convert: str) -> str:
    """The time FIELD's description when its times are converted to ``convert``."""
    return (f"Time of the point as {convert} (MJD = {convert[:3]} - 2400000.5), "
            "converted by SKVO with astropy from the times the provider gave (their "
            "reference position and the facility's location; the geocentre where the "
            "location is unknown, at most 21 ms off).")


def _convertible(series: list[Series], options: lightcurves.Options, convert: str | None
                 ) -> str | None:
    """Why a night's times cannot be converted to ``convert`` (None: they can)."""
    if convert is None:
        return None
    if options.bin is not None and options.folded:
        return ("phase bins are formed on the times as delivered; fold the star's curve "
                "(/lightcurve/star/...) or leave BIN out")
    if len({stars.refposition(s) for s in series}) > 1:
        return "the bands of this night have times at different reference positions"
    return None


def _converting(chunks: Iterator[Any], series: Series, options: lightcurves.Options,
                convert: str | None) -> Iterator[Any]:
    """The chunks with their times (column 0) converted to ``convert`` (and the phase,
    the last column of unbinned folded curves, recomputed from them)."""
    if convert is None:
        yield from chunks
        return
    from voservice.votable import Columns

    with contextlib.closing(chunks):
        for chunk in chunks:
            cols = list(chunk.arrays)
            cols[0] = stars.converted(np.asarray(cols[0], float), series, convert).mjd
            if options.folded and options.bin is None:
                cols[-1] = lightcurves.phase(cols[0], options)
            yield Columns(cols, chunk.masks)


def _origin() -> list[Info]:
    """The DataOrigin INFOs of a light curve."""
    svc = services()
    settings = svc.settings
    ivoid = f"ivo://{svc.authority}/skvo"
    return lightcurves.data_origin(
        publisher=settings.get("vo", "publisher"), ivoid=ivoid,
        contact=settings.get("vo", "contact"),
        citation=settings.get("vo", "citation") or f"{settings.get('vo', 'title')}, {ivoid}",
        requested=dt.datetime.now(dt.UTC))


#: the PERIOD value that folds on the target's default ephemeris
CATALOG_PERIOD = "catalog"


def _with_catalog_period(p: Any, target_id: int | None) -> Any:
    """``get(NAME)`` for parse_options, with PERIOD=catalog replaced by the target's
    default ephemeris (EPOCH defaults to its epoch)."""
    period = dali.single(p, "PERIOD")
    if period is None or period.strip().lower() != CATALOG_PERIOD:
        return lambda name: dali.single(p, name)
    eph = _default_ephemeris(target_id)
    if eph is None:
        raise OptionError("PERIOD=catalog: this star has no stored ephemeris; give PERIOD "
                          "in days")
    values = {"PERIOD": repr(eph.period), "EPOCH": dali.single(p, "EPOCH") or repr(eph.epoch)}
    return lambda name: values[name] if name in values else dali.single(p, name)


def _default_ephemeris(target_id: int | None) -> ephemeris.Ephemeris | None:
    if target_id is None:
        return None
    with services().engine.connect() as conn:
        return ephemeris.default_ephemeris(conn, target_id, principal=principal())


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


# --------------------------------------------------------------------------
# A star's light curve over all its nights


def _star(target_id: int, bandpass_uid: str | None) -> stars.Star | Response:
    """The star as the user may see it, or the refusal (404, 401/403)."""
    if target_id > MAX_ID:
        return _not_found("such star")
    star = stars.find_star(services().engine, principal(), target_id, bandpass_uid)
    if star is None:
        return _not_found("such star" if bandpass_uid is None else "such star or band")
    if not star.fetchable:
        return _denied()
    return star


def _star_options(p: Any, star: stars.Star
                  ) -> tuple[lightcurves.Options, str | None, str | None, str | None]:
    svc = services()
    maxrec = dali.maxrec(p, svc.settings.get("vo", "maxrec_hard"),
                         svc.settings.get("vo", "maxrec_hard"))
    options = lightcurves.parse_options(_with_catalog_period(p, star.target_id), maxrec)
    calib = stars.parse_calibration(dali.single(p, "CALIB"))
    timeref = stars.parse_timeref(dali.single(p, "TIMEREF"))
    convert = stars.parse_timesys(dali.single(p, "TIMESYS"))
    return options, calib, timeref, convert


def _table_part(star: stars.Star, part: stars.Part, options: lightcurves.Options, index: int,
                single: bool, by_band: bool, state: dict[str, bool]
                ) -> tuple[TablePart, TimeSys]:
    """One TABLE of a star's curve and its TIMESYS (IDs unique in the document)."""
    svc = services()
    suffix = "" if single else f"_{index}"
    first = part.first
    did = star_did(svc.authority, star.target_id, part.bandpass_uid)
    fields = lightcurves.fields(first, options, False, stars.field_names(options))
    timesys = lightcurves.timesys(first)
    timescale, refposition = (stars.TIMESYSTEMS[part.convert] if part.convert
                              else (timesys.timescale, timesys.refposition))
    timesys = TimeSys(id=timesys.id + suffix, timescale=timescale, refposition=refposition,
                      timeorigin=timesys.timeorigin)
    fields[0].ref = timesys.id
    if part.convert:
        fields[0].description = converted_time_description(part.convert)
    fields[1].id = lightcurves.MAGNITUDE_ID + suffix
    fields[1].ref = lightcurves.PHOTCAL_ID + suffix
    group = lightcurves.groups([first], False)[0]
    group.id, group.field_refs = lightcurves.PHOTCAL_ID + suffix, [fields[1].id]
    chunks = stars.rows(svc.timeseries, svc.engine, svc.base_url, part, options, state)
    notes = [Info("note", n) for n in stars.conversion_notes(part)]
    return TablePart(
        fields=fields, chunks=_points(chunks),
        params=stars.params(star, part, options, did),
        trailer=(lambda: notes) if notes else None,
        groups=[group], name=f"lightcurve_{part.bandpass_uid}" if by_band else "lightcurve",
        description=stars.description(star, part, options),
    ), timesys


def _serve_star(star: stars.Star, bands: list[str], multiband: bool) -> Response:
    p = dali.params()
    try:
        fmt = dali.response_format(p)
        options, calib, timeref, convert = _star_options(p, star)
        if options.bands is not None:
            unknown = sorted(options.bands - set(bands))
            if unknown:
                raise OptionError(f"BAND: {', '.join(unknown)} not observed for this star")
            bands = [b for b in bands if b in options.bands]
        parts = stars.parts(star, bands, calib, timeref, convert)
        if not parts:
            raise OptionError("no points match: no night of this star has "
                              f"{calib or 'such'} photometry"
                              + (f" at TIMEREF={timeref}" if timeref else ""))
        if len(parts) > 1 and not fmt.name.startswith("votable"):
            names = "; ".join(f"{x.bandpass_uid} at {x.refposition}" for x in parts)
            raise OptionError(f"RESPONSEFORMAT={fmt.name} holds one table, this curve has "
                              f"{len(parts)} ({names}): choose one with BAND= and TIMEREF=, "
                              "or ask for a VOTable")
    except (dali.UsageError, OptionError, stars.StarError, AnalysisError) as exc:
        return dali.error_response(f"UsageFault: {exc}")
    state: dict[str, bool] = {}
    single = len(parts) == 1
    built = [_table_part(star, part, options, i, single, multiband or not single, state)
             for i, part in enumerate(parts)]
    try:
        head = next(built[0][0].chunks, None)  # a failing store answers an error document
    except StoreError as exc:
        for tp, _ in built:
            tp.chunks.close()
        return dali.error_response(f"Error: {exc}", 503)
    first = built[0][0]
    rest = first.chunks
    first_rows = dali.Guarded(rest if head is None else itertools.chain([head], rest),
                              rest.close)
    built[0] = (replace(first, chunks=first_rows), built[0][1])
    infos = [Info("standardID", "ivo://ivoa.net/std/DALI#results-1.1")]
    if len(parts) == 1:
        infos.append(Info("publisher_did", star_did(services().authority, star.target_id,
                                                    parts[0].bandpass_uid)))
    chunks = write_tables(
        [tp for tp, _ in built], format=fmt.name,
        infos=[*infos, *_origin()],
        timesys=[ts for _, ts in built],
        coosys=[lightcurves.coosys()],
        trailer=dali.overflow_trailer(state, options.maxrec, "points"),
        catch=(StoreError,), value_errors=True,
    )
    return dali.stream(chunks, fmt.mime, safe=(StoreError, UnwritableValue),
                       error=lambda message, status: dali.error_response(f"Error: {message}",
                                                                         status))


@bp.route("/lightcurve/star/<int:target_id>/<path:bandpass_uid>", methods=["GET", "POST"])
def star_curve(target_id: int, bandpass_uid: str) -> Response:
    """A star's light curve in one band over all its nights."""
    for name, folded in (("/preview.png", False), ("/preview-folded.png", True)):
        if bandpass_uid.endswith(name):
            return star_preview(target_id, bandpass_uid[: -len(name)], folded)
    star = _star(target_id, bandpass_uid)
    if isinstance(star, Response):
        return star
    return _serve_star(star, [bandpass_uid], multiband=False)


@bp.route("/lightcurve/star/<int:target_id>", methods=["GET", "POST"])
def star_bands(target_id: int) -> Response:
    """Every band of a star over all its nights: one TABLE per band."""
    star = _star(target_id, None)
    if isinstance(star, Response):
        return star
    return _serve_star(star, star.bands, multiband=True)


def star_preview(target_id: int, bandpass_uid: str, folded: bool) -> Response:
    """A PNG of a star's curve in a band (folded on its default ephemeris), cached."""
    svc = services()
    star = _star(target_id, bandpass_uid)
    if isinstance(star, Response):
        return star
    parts = stars.parts(star, [bandpass_uid], None, None)
    if not parts:
        return _not_found("points of this star in this band")
    eph = _default_ephemeris(target_id) if folded else None
    if folded and eph is None:
        return _not_found("ephemeris of this star (a folded plot needs one)")
    options = lightcurves.Options(period=eph.period if eph else None,
                                  epoch=eph.epoch if eph else None)
    key = ":".join(["star", str(target_id), bandpass_uid, repr(options.period),
                    repr(options.epoch)] + [f"{s.photometry_id}={s.data_md5}"
                                            for x in parts for s in x.series])

    def make() -> bytes:
        curves = []
        for part in parts:
            chunks = list(stars.rows(svc.timeseries, svc.engine, "", part, options, {}))
            if chunks:
                cols = [np.concatenate([c.arrays[k] for c in chunks]) for k in range(3)]
                phase = (np.concatenate([c.arrays[-1] for c in chunks])
                         if options.folded else None)
                curves.append((part.refposition, cols[0], cols[1], cols[2], phase))
        title = f"{star.target} ({len({s.night for x in parts for s in x.series})} nights)"
        if eph is not None:
            title += f", P = {eph.period:g} d"
        return preview.render_curves(curves, title, bandpass_uid, folded)

    data = preview.cached(svc.settings.get("server", "cache_path"), key, make)
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
