"""The portal's pages for people: search, results, star pages, frame galleries.

Routes (blueprint ``portal``):

- ``/``: one search box (a star name, or ICRS coordinates with a radius), band,
  time range and source; the holdings at a glance and a sky plot of the targets;
- ``/search``: one row per star x band curve (a single star goes to its page);
- ``/star/<id>`` (``/star/<name>`` redirects there): names, position, class,
  ephemerides, the nights, the plot, fold, periodogram and downloads;
- ``/star/<id>/frames``: the frames of each night with the point they belong to;
- ``/portal/api/sky``, ``/portal/api/star/<id>/curve``: the compact JSON the
  page scripts plot;
- ``/portal/vendor/plotly.min.js``: plotly.js from the installed ``plotly`` package.

Everything shown comes from the archive layer (:mod:`voservice.archive`, the
resolver, :mod:`voservice.access`) that the VO endpoints use; what the visitor
may not see does not exist here either.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import numpy as np
import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from voservice import catalog, ephemeris, resolver, tables, urls
from voservice.access import can_download, download_denial
from voservice.archive import lightcurves, stars, summary
from voservice.context import principal, services
from voservice.portal.search import (
    SearchError,
    mjd_to_iso,
    parse_position,
    parse_radius,
    parse_time_range,
)

bp = Blueprint("portal", __name__)

#: the largest id a database row can have (a signed 64-bit integer)
MAX_ID = 2**63 - 1
#: default search radius around coordinates (arcmin)
DEFAULT_RADIUS = 10.0
#: at most this many targets are listed in the results
MAX_TARGETS = 200
#: most points one curve request plots (the VO endpoint serves any number)
MAX_PLOT_POINTS = 2_000_000

#: (path, standard, what it serves) — the endpoint map shown on the home page
ENDPOINTS = (
    ("/tap", "TAP 1.1 (ADQL 2.1)", "queries over targets, observations, ivoa.obscore"),
    ("/scs", "Simple Cone Search 1.03", "targets within SR of RA, DEC"),
    ("/ssa", "SSA 1.1", "light curves, one record per photometry series"),
    ("/sia", "SIA 2.0", "image frames"),
    ("/datalink", "DataLink 1.1", "links of an observation: light curve, preview, frames"),
)


def _title() -> str:
    return str(services().settings.get("vo", "title"))


def _mjd(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _context(**values: Any) -> dict[str, Any]:
    who = principal()
    return {"site_title": _title(), "who": who, "mjd_to_iso": mjd_to_iso, "fmt_mjd": _mjd,
            **values}


# --------------------------------------------------------------------------
# Home and search


@bp.get("/")
def index() -> str:
    """The home page: search, holdings, sky plot."""
    svc, who = services(), principal()
    return render_template(
        "index.html", **_context(
            holdings=summary.holdings(svc.engine, who),
            bands=summary.bands(svc.engine, who), sources=summary.sources(svc.engine, who),
            base_url=svc.base_url, endpoints=ENDPOINTS, form={}, error=None,
            default_radius=DEFAULT_RADIUS))


def _form() -> dict[str, str]:
    return {k: (request.args.get(k) or "").strip()
            for k in ("q", "radius", "band", "time", "source")}


@bp.get("/search")
def search() -> Response:
    """Results: one row per star x band curve; one star goes straight to its page."""
    svc, who = services(), principal()
    form = _form()
    error = note = None
    rows: list[summary.CurveRow] = []
    suggestions: list[str] = []
    centre = None
    try:
        mjd_lo, mjd_hi = parse_time_range(form["time"])
        if not form["q"]:
            raise SearchError("q: type a star name (beta Lyr, HD 174638) or coordinates "
                              "(282.52 +33.36, 18 30 04.8 +33 21 46)")
        if len(form["q"]) > 255:
            raise SearchError("q: at most 255 characters")
        position = parse_position(form["q"])
        if position is not None:
            radius = parse_radius(form["radius"], DEFAULT_RADIUS)
            centre = position
            with svc.engine.connect() as conn:
                ids = [m.target_id for m in resolver.find_near(conn, who, *position, radius)]
            if not ids:
                note = (f"No star of the archive within {radius * 60:g} arcmin of "
                        f"RA {position[0]:.5f}, Dec {position[1]:+.5f}.")
        else:
            res = resolver.resolve(svc.engine, who, form["q"],
                                   resolver.ResolverConfig.from_settings(svc.settings),
                                   svc.writer())
            ids = [m.target_id for m in res.targets]
            if res.position is not None:
                centre = res.position
            if not ids:
                note = f"No match for “{form['q']}”: {res.note or 'unknown name'}."
                suggestions = summary.suggestions(svc.engine, who, form["q"])
        band = form["band"] or None
        source = form["source"] or None
        rows = summary.curve_rows(svc.engine, who, ids[:MAX_TARGETS], band=band,
                                  mjd_min=mjd_lo, mjd_max=mjd_hi, source=source,
                                  centre=centre)
        if ids and not rows:
            note = "The star(s) found have no nights matching the band, time range or source."
        if len({r.target_id for r in rows}) == 1 and position is None:
            return redirect(_star_link(rows[0].target_id, form))
    except SearchError as exc:
        error = str(exc)
    return Response(render_template(
        "results.html", **_context(
            form=form, rows=rows, error=error, note=note, suggestions=suggestions,
            centre=centre, bands=summary.bands(svc.engine, who),
            sources=summary.sources(svc.engine, who), default_radius=DEFAULT_RADIUS,
            star_link=lambda tid: _star_link(tid, form))),
        status=400 if error else 200, mimetype="text/html")


def _star_link(target_id: int, form: dict[str, str]) -> str:
    """The star page, keeping the search's band and time range."""
    args = {k: form[k] for k in ("band", "time") if form.get(k)}
    return url_for("portal.star", target_id=target_id, **args)


# --------------------------------------------------------------------------
# The star page


def _target_row(target_id: int) -> Any:
    """The target's row as the visitor may see it (TAP's visibility), or None."""
    t = tables.sa_table("skvo.target")
    query = catalog.visible_select("skvo.target", principal()).where(
        t.c.target_id == target_id)
    with services().engine.connect() as conn:
        return conn.execute(query).first()


def _find_star(target_id: int) -> stars.Star:
    if target_id > MAX_ID:
        abort(404)
    star = stars.find_star(services().engine, principal(), target_id)
    if star is None:
        abort(404)
    return star


def _sexagesimal(ra: float, dec: float) -> str:
    h = ra / 15.0
    hh, mm = int(h), int((h - int(h)) * 60)
    ss = (h * 3600) % 60
    sign = "-" if dec < 0 else "+"
    d = abs(dec)
    dd, dm = int(d), int((d - int(d)) * 60)
    ds = (d * 3600) % 60
    return f"{hh:02d}h{mm:02d}m{ss:05.2f}s {sign}{dd:02d}°{dm:02d}′{ds:04.1f}″"


@bp.get("/star/<int:target_id>")
def star(target_id: int) -> str:
    """A star's page: names, position, ephemerides, nights, plot, fold, periodogram."""
    svc, who = services(), principal()
    found = _find_star(target_id)
    target = _target_row(target_id)
    if target is None:
        abort(404)
    with svc.engine.connect() as conn:
        aliases = resolver.aliases_of(conn, [target_id])[target_id]
        ephs = ephemeris.ephemerides(conn, target_id, principal=who)
    nights = _nights(found)
    locked = [s for s in found.visible if not can_download(who, s.access, s.source)]
    base = svc.base_url
    bands = found.bands
    did = {b: catalog.star_did(svc.authority, target_id, b) for b in bands}
    has_location = any(s.longitude is not None for s in found.fetchable)
    scripting = {
        "tap": f"{base}/tap/sync?" + urlencode({
            "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable",
            "QUERY": f"SELECT * FROM skvo.point WHERE target_id = {target_id} ORDER BY mjd"}),
        "ssa": f"{base}/ssa?" + urlencode({"REQUEST": "queryData",
                                            "TARGETNAME": found.target}),
        "datalink": {b: urls.datalink_url(base, did[b]) for b in bands},
    }
    page = {
        "target_id": target_id, "target": found.target, "bands": bands,
        "curve_api": url_for("portal.curve_json", target_id=target_id),
        # paths under the mount point (a proxy may serve SKVO under a prefix)
        "root": request.script_root,
        "star_curve": {b: urls.star_curve_url(request.script_root, target_id, b)
                       for b in bands},
        "star_all": urls.star_url(request.script_root, target_id),
        "did": did, "base_url": base,
        "ephemeris": ({"period": ephs[0].period, "epoch": ephs[0].epoch,
                       "timescale": ephs[0].epoch_timescale, "refpos": ephs[0].epoch_refpos}
                      if ephs else None),
        "has_location": has_location,
        # eclipsing binaries have two minima a period: the default method is PDM, which
        # does not halve the period as a 1-term Lomb-Scargle does, and needs no duration
        "eclipsing": "eclips" in (target.target_class or "").lower()
        or any((e.var_type or "").upper().startswith("E") for e in ephs),
        "time": request.args.get("time", ""),
        "band": request.args.get("band", ""),
        "anonymous": who.anonymous,
        # nothing to fetch: the page asks for no points (it shows the locks)
        "fetchable": bool(found.fetchable),
        "denial": _denial(),
    }
    return render_template(
        "star.html", **_context(
            star=found, target=target, aliases=aliases, ephemerides=ephs, nights=nights,
            locked=locked, sexagesimal=_sexagesimal(target.right_ascension,
                                                    target.declination),
            scripting=scripting, page_json=json.dumps(page), bands=bands,
            has_location=has_location, denial=_denial()))


def _denial() -> str:
    """Why the visitor may not fetch some data, in words for people."""
    who = principal()
    if who.anonymous:
        return "their data are available on demand: log in with an account granted their source"
    return f"your account ({who.name}) has no grant for their source"


def _nights(found: stars.Star) -> list[dict[str, Any]]:
    """The star's nights (one row per night, source and instrument; its bands in it)."""
    who = principal()
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in found.visible:
        row = rows.setdefault((s.night, s.source, s.instrument), {
            "night": s.night, "source": s.source, "instrument": s.instrument,
            "mjd": s.mjd_start, "series": [], "points": 0, "frames": 0, "access": set(),
            "fetch": True})
        row["series"].append(s)
        row["points"] += s.n_points
        row["frames"] += s.n_frames
        row["access"].add(s.access)
        row["fetch"] = row["fetch"] and can_download(who, s.access, s.source)
    return sorted(rows.values(), key=lambda r: (r["mjd"] or 0.0, r["source"]))


@bp.get("/star/<path:name>")
def star_by_name(name: str) -> Response:
    """A star's permalink by name: redirects to /star/<id> (or the search)."""
    svc = services()
    res = resolver.resolve(svc.engine, principal(), name,
                           resolver.ResolverConfig.from_settings(svc.settings), svc.writer(),
                           use_sesame=False)
    if len(res.targets) == 1:
        return redirect(url_for("portal.star", target_id=res.targets[0].target_id))
    return redirect(url_for("portal.search", q=name))


# --------------------------------------------------------------------------
# Frames


def _frames_of(series: list[lightcurves.Series]) -> dict[int, list[Any]]:
    """The frame rows (frame_id, frame_index, mjd) of each series, by index."""
    fr = tables.sa_table("skvo.frame")
    ids = [s.photometry_id for s in series if s.n_frames]
    out: dict[int, list[Any]] = {i: [] for i in ids}
    if not ids:
        return out
    with services().engine.connect() as conn:
        for r in conn.execute(sa.select(fr.c.photometry_id, fr.c.frame_id, fr.c.frame_index,
                                        fr.c.mjd).where(fr.c.photometry_id.in_(ids))
                              .order_by(fr.c.photometry_id, fr.c.frame_index)):
            out[int(r.photometry_id)].append(r)
    return out


@bp.get("/star/<int:target_id>/frames")
def frames(target_id: int) -> str:
    """The frames of each night of a star, with the point each belongs to."""
    who = principal()
    found = _find_star(target_id)
    with_frames = [s for s in found.visible if s.n_frames]
    fetchable = [s for s in with_frames if can_download(who, s.access, s.source)]
    rows = _frames_of(fetchable)
    only = request.args.get("night")
    galleries = []
    for s in with_frames:
        if only and only not in (s.night, s.observation_uuid):
            continue
        items = []
        if s.photometry_id in rows:
            points = _series_points(s)
            for r in rows[s.photometry_id]:
                k = int(r.frame_index)
                mag = err = mjd = None
                if points is not None and k < len(points[0]):
                    mjd, mag, err = (float(points[i][k]) for i in range(3))
                items.append({"frame_id": int(r.frame_id), "index": k,
                              "mjd": mjd if mjd is not None else r.mjd, "mag": mag,
                              "err": err,
                              "url": url_for("lightcurve.frame", frame_id=int(r.frame_id))})
        galleries.append({"series": s, "fetch": s.photometry_id in rows, "frames": items})
    return render_template("frames.html", **_context(
        star=found, galleries=galleries, denial=_denial()))


def _series_points(s: lightcurves.Series) -> tuple[np.ndarray, ...] | None:
    """Times, magnitudes, errors of one series (frame k belongs to point k)."""
    from voservice.stores.timeseries.base import Points

    chunks = list(lightcurves.read(services().timeseries, s.ref, None, None))
    if not chunks:
        return None
    pts = Points.concat(chunks)
    return pts.mjd, pts.magnitude, pts.magnitude_error


# --------------------------------------------------------------------------
# JSON for the page scripts


def _json(doc: Any, status: int = 200, cache: str = "private, no-cache") -> Response:
    body = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = cache
    return response


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


@bp.get("/portal/api/sky")
def sky_json() -> Response:
    """The targets the visitor may see: id, name, ra, dec, class, nights."""
    rows = summary.sky(services().engine, principal())
    return _json({"targets": [
        {"id": t.target_id, "name": t.target, "ra": t.ra, "dec": t.dec,
         "class": t.target_class, "nights": t.nights,
         "url": url_for("portal.star", target_id=t.target_id)} for t in rows]})


def _arg(name: str) -> str | None:
    """A query parameter, whatever the case of its name."""
    for key, value in request.args.items():
        if key.upper() == name:
            return value
    return None


_FRAME_ID = re.compile(r"/frame/(\d+)$")


def _frame_ids(column: np.ndarray) -> list[int]:
    """Frame ids of a frame_url column (-1 where a point has no frame)."""
    out = []
    for url in column.tolist() if not isinstance(column, np.ma.MaskedArray) else \
            np.ma.filled(column.astype(object), None).tolist():
        m = _FRAME_ID.search(url) if isinstance(url, str) else None
        out.append(int(m.group(1)) if m else -1)
    return out


def _packed(values: Any, dtype: str) -> dict[str, str]:
    """A column as little-endian bytes in base64 (the page reads it as a typed array)."""
    data = np.ascontiguousarray(np.asarray(values), dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "b64": base64.b64encode(data.tobytes()).decode("ascii")}


@bp.get("/portal/api/star/<int:target_id>/curve")
def curve_json(target_id: int) -> Response:
    """The star's points per band and time reference, as /lightcurve/star serves them.

    Parameters (as /lightcurve/star names them, any case): ``TIMESYS`` (BJD_TDB,
    HJD_UTC, MJD_UTC: convert every time), ``CALIB`` (abs, dif), ``BAND`` (comma-separated).
    Columns per part, each ``{"dtype", "b64"}`` (little-endian bytes in base64, read by
    the page as typed arrays: no number is printed and parsed again): ``t`` (MJD, f8),
    ``m``, ``e`` (f4), ``k`` (night index, i4), ``f`` (frame id, -1: none).
    """
    svc, who = services(), principal()
    if target_id > MAX_ID:
        return _error(404, "no such star")
    found = stars.find_star(svc.engine, who, target_id)
    if found is None:
        return _error(404, "no such star")
    if not found.fetchable:
        return _error(*download_denial(who))
    try:
        convert = stars.parse_timesys(_arg("TIMESYS"))
        calib = stars.parse_calibration(_arg("CALIB"))
        wanted = [b.strip() for b in (_arg("BAND") or "").split(",") if b.strip()]
        unknown = sorted(set(wanted) - set(found.bands))
        if unknown:
            raise stars.StarError(f"BAND: {', '.join(unknown)} not observed for this star")
    except stars.StarError as exc:
        return _error(400, str(exc))
    parts = stars.parts(found, wanted or found.bands, calib, None, convert)
    nights: dict[str, int] = {}
    night_rows: list[dict[str, Any]] = []
    for s in found.fetchable:
        if s.observation_uuid not in nights:
            nights[s.observation_uuid] = len(night_rows)
            night_rows.append({"id": s.observation_uuid, "night": s.night, "source": s.source,
                               "instrument": s.instrument, "band": s.bandpass_uid})
    out_parts = []
    total = 0
    options = lightcurves.Options(maxrec=MAX_PLOT_POINTS)
    for part in parts:
        state: dict[str, bool] = {}
        chunks = list(stars.rows(svc.timeseries, svc.engine, "", part, options, state))
        names = stars.field_names(options)
        if chunks:
            cols = {n: np.concatenate([c.arrays[i] for c in chunks])
                    if not any(isinstance(c.arrays[i], np.ma.MaskedArray) for c in chunks)
                    else np.ma.concatenate([c.arrays[i] for c in chunks])
                    for i, n in enumerate(names)
                    if n in ("time", "magnitude", "magnitude_error", "obs_id", "frame_url")}
        else:
            cols = {n: np.empty(0) for n in ("time", "magnitude", "magnitude_error")}
            cols["obs_id"] = cols["frame_url"] = np.empty(0, dtype=object)
        n = len(cols["time"])
        total += n
        frame_ids = _frame_ids(cols["frame_url"])
        timescale, refpos = (stars.TIMESYSTEMS[part.convert] if part.convert else
                             (lightcurves.timesys(part.first).timescale, part.refposition))
        out_parts.append({
            "band": part.bandpass_uid, "refposition": refpos, "timescale": timescale,
            "calibration": part.calibration, "converted": part.convert, "n": n,
            "nights": len({s.observation_uuid for s in part.series}),
            "t": _packed(cols["time"], "f8"), "m": _packed(cols["magnitude"], "f4"),
            "e": _packed(cols["magnitude_error"], "f4"),
            "k": _packed([nights.get(u, -1) for u in cols["obs_id"].tolist()], "i4"),
            "f": _packed(frame_ids, "i4" if max(frame_ids, default=0) < 2**31 else "f8"),
            "overflow": bool(state.get("overflow")),
        })
    withheld = len({s.observation_uuid for s in found.visible}
                   - {s.observation_uuid for s in found.fetchable})
    notes = [x for part in parts for x in stars.conversion_notes(part)]
    return _json({"target_id": target_id, "target": found.target, "n": total,
                  "parts": out_parts, "nights": night_rows, "withheld": withheld,
                  "notes": notes})


# --------------------------------------------------------------------------
# JavaScript libraries from the installed packages

#: file name -> (package, resource path) of the JS libraries the pages load
VENDOR = {"plotly.min.js": ("plotly", "package_data/plotly.min.js")}
_VENDOR_CACHE: dict[str, tuple[bytes, str]] = {}


@bp.get("/portal/vendor/<name>")
def vendor(name: str) -> Response:
    """A JS library shipped by an installed Python package (pinned in pyproject.toml)."""
    if name not in VENDOR:
        abort(404)
    if name not in _VENDOR_CACHE:
        package, path = VENDOR[name]
        data = resources.files(package).joinpath(path).read_bytes()
        _VENDOR_CACHE[name] = (data, hashlib.sha256(data).hexdigest()[:32])
    data, etag = _VENDOR_CACHE[name]
    response = Response(data, mimetype="text/javascript")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response.make_conditional(request)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on every page without an icon link."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.app_template_filter("num")
def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}"


def register(app: Flask) -> None:
    """Add the portal to the application."""
    app.register_blueprint(bp)
