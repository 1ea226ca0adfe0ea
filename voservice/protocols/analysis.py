"""Light-curve analysis as a service: ``/analysis/periodogram``.

``ID`` is a star curve's publisher DID (``ivo://<authority>/skvo?star/<target>/<band>``,
the ``obs_publisher_did`` of its ObsCore record); DataLink offers the call as
a ``#derivation`` link with a service descriptor, so pyvo and TOPCAT call it
without knowing this module.  The points are the star curve's (the same
nights, CALIB and TIME rules, :mod:`voservice.archive.stars`); the numbers
come from :mod:`voservice.analysis.periodogram` (astropy's LombScargle and
BoxLeastSquares, and PDM).

Parameters: METHOD (lombscargle, bls, pdm), MINPERIOD, MAXPERIOD (days),
OVERSAMPLE, NTERMS (Lomb-Scargle), NPEAKS, BAND (more bands of the same star,
combined with per-band offsets: ``BAND=johnson.b,johnson.v``), TIME, CALIB,
TIMEREF, RESPONSEFORMAT (a VOTable holds the peaks and the periodogram as two
TABLEs; CSV and the other one-table formats hold ``TABLE=periodogram`` or
``TABLE=peaks``; ``image/png`` is the plot).  A request whose grid or
estimated CPU time is above the documented limits is refused up front.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Response

from voservice import tables, urls
from voservice.access import download_denial
from voservice.analysis import periodogram as pg
from voservice.analysis.common import AnalysisError
from voservice.analysis.ephemeris import EphemerisFit, fit_ephemeris, o_minus_c
from voservice.analysis.plots import oc_png, periodogram_png
from voservice.archive import lightcurves, stars
from voservice.archive.minima import eclipsing, star_minima
from voservice.catalog import parse_star_did
from voservice.context import principal, services
from voservice.protocols import dali
from voservice.votable import (
    Columns,
    Field,
    Group,
    Info,
    Param,
    Resource,
    TablePart,
    TimeSys,
    write_tables,
)

bp = Blueprint("analysis", __name__, url_prefix="/analysis")

#: the one-table formats choose one of these (TABLE=)
TABLES = ("periodogram", "peaks")
PNG = "image/png"

#: the input parameters (name, datatype, unit, description, options), as the
#: DataLink service descriptor announces them and this module reads them
INPUTS: tuple[tuple[str, str, str | None, str, tuple[str, ...]], ...] = (
    ("METHOD", "char", None, "lombscargle (sinusoids, pulsators), bls (box least squares: "
     "eclipses) or pdm (phase dispersion minimisation)", pg.METHODS),
    ("MINPERIOD", "double", "d", f"Shortest trial period (default {pg.DEFAULT_MIN_PERIOD} d)",
     ()),
    ("MAXPERIOD", "double", "d", "Longest trial period (default: half the time span)", ()),
    ("OVERSAMPLE", "double", None, f"Grid points per peak width (default "
     f"{pg.DEFAULT_OVERSAMPLE:g})", ()),
    ("NTERMS", "int", None, "Harmonics of the Lomb-Scargle model (default 1)", ()),
    ("NPEAKS", "int", None, "Number of best distinct peaks listed (default 5)", ()),
    ("BAND", "char", None, "Further bands of the star to combine (per-band offsets), "
     "comma-separated", ()),
    ("TIME", "char", None, "MJD range lo/hi of the points used", ()),
    ("CALIB", "char", None, "abs or dif (default: as the star curve)", ("abs", "dif")),
    ("TIMEREF", "char", None, "Time reference position of the nights used, when they differ",
     ()),
    ("TIMESYS", "char", None, "Convert every time to one system first", ("BJD_TDB", "HJD_UTC",
                                                                         "MJD_UTC")),
    ("RESPONSEFORMAT", "char", None, "votable (peaks and periodogram), csv (with TABLE=), "
     "image/png", ()),
)


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


def _number(p: Any, name: str, kind: type = float) -> Any:
    text = dali.single(p, name)
    if text is None or not text.strip():
        return None
    try:
        value = kind(text)
    except ValueError:
        raise AnalysisError(f"{name}={text!r} is not {'an integer' if kind is int else 'a number'}"
                            ) from None
    if kind is float and not math.isfinite(value):
        raise AnalysisError(f"{name}={text!r} must be finite")
    return value


def _points(star: stars.Star, bands: list[str], options: lightcurves.Options,
            calib: str | None, timeref: str | None, convert: str | None
            ) -> tuple[np.ndarray, ...]:
    """Times, magnitudes, errors and band labels of the star's points in the bands."""
    svc = services()
    parts = stars.parts(star, bands, calib, timeref, convert)
    refs = sorted({part.refposition for part in parts})
    if len(refs) > 1:
        raise AnalysisError(f"the nights' times are at different reference positions "
                            f"({', '.join(refs)}): choose one with TIMEREF=, or convert "
                            "them all with TIMESYS=BJD_TDB")
    cols: list[list[np.ndarray]] = [[], [], [], []]
    for part in parts:
        for chunk in stars.rows(svc.timeseries, svc.engine, "", part, options, {}):
            t, m, e = chunk.arrays[0], chunk.arrays[1], chunk.arrays[2]
            cols[0].append(np.asarray(t, float))
            cols[1].append(np.asarray(m, float))
            cols[2].append(np.asarray(e, float))
            cols[3].append(np.full(len(t), part.bandpass_uid, dtype=object))
    if not cols[0]:
        raise AnalysisError("no points match (BAND, CALIB, TIME)")
    return tuple(np.concatenate(c) for c in cols)


def _star(p: Any) -> tuple[stars.Star, list[str]]:
    """The star of the ID parameter and its bands (the ID's, then BAND's), or _Refused."""
    svc = services()
    did = dali.single(p, "ID")
    if not did:
        raise AnalysisError("ID (a star curve's publisher DID) is missing")
    key = parse_star_did(svc.authority, did)
    if key is None:
        raise _Refused(dali.error_response(
            f"NotFoundFault: ID={did} is not a star curve of this service", 404))
    # the whole star (BAND may add its other bands), refused as the ID's band would be
    star = stars.find_star(svc.engine, principal(), key[0])
    if star is None or all(s.bandpass_uid != key[1] for s in star.visible):
        raise _Refused(dali.error_response(f"NotFoundFault: ID={did} is not known", 404))
    if all(s.bandpass_uid != key[1] for s in star.fetchable):
        status, message = dali_denial()
        raise _Refused(dali.error_response(message, status))
    bands = [key[1]]
    for band in (dali.single(p, "BAND") or "").split(","):
        band = band.strip()
        if band and band not in bands:
            if band not in star.bands:
                raise AnalysisError(f"BAND: {band} was not observed for this star")
            bands.append(band)
    return star, bands


def _request() -> tuple[stars.Star, str, dict[str, Any], tuple[np.ndarray, ...]]:
    """The star, its band, the method's parameters and the points (or _Refused)."""
    p = dali.params()
    star, bands = _star(p)
    try:
        options = lightcurves.parse_options(
            lambda name: dali.single(p, name) if name == "TIME" else None, None)
    except lightcurves.OptionError as exc:
        raise AnalysisError(str(exc)) from None
    method = (dali.single(p, "METHOD") or "lombscargle").strip().lower()
    if method not in pg.METHODS:
        raise AnalysisError(f"METHOD={method!r}: must be one of {', '.join(pg.METHODS)}")
    params: dict[str, Any] = {
        "min_period": _number(p, "MINPERIOD"), "max_period": _number(p, "MAXPERIOD"),
    }
    if (value := _number(p, "OVERSAMPLE")) is not None:
        params["oversample"] = value
    if (value := _number(p, "NTERMS", int)) is not None:
        if method == "lombscargle":
            params["nterms"] = value
        elif value != 1:  # 1 is every method's model; clients send the default
            raise AnalysisError("NTERMS applies to METHOD=lombscargle only")
    n_peaks = _number(p, "NPEAKS", int)
    points = _points(star, bands, options, stars.parse_calibration(dali.single(p, "CALIB")),
                     stars.parse_timeref(dali.single(p, "TIMEREF")),
                     stars.parse_timesys(dali.single(p, "TIMESYS")))
    bands_arg = points[3] if len(bands) > 1 else None
    pg.plan_periodogram(method, points[0], bands_arg, **params)  # refuses runaway grids
    if n_peaks is not None:
        params["n_peaks"] = n_peaks
    return star, bands[0], {"method": method, **params}, points


def dali_denial() -> tuple[int, str]:
    """Status and message for a star whose data the user may not fetch."""
    return download_denial(principal())


PERIODOGRAM_FIELDS = [
    Field("frequency", "double", unit="d-1", ucd="time.frequency",
          description="Trial frequency."),
    Field("period", "double", unit="d", ucd="time.period", description="Trial period."),
    Field("power", "double", ucd="stat.value",
          description="Periodogram power (higher is better; see the TABLE description)."),
]


def _peak_fields() -> list[Field]:
    return [
        Field("rank", "int", ucd="meta.number", description="1 for the best peak."),
        Field("period", "double", unit="d", ucd="time.period;meta.main",
              description="Period of the peak (refined on a fine local grid)."),
        Field("frequency", "double", unit="d-1", ucd="time.frequency",
              description="Frequency of the peak."),
        Field("power", "double", ucd="stat.value", description="Power at the peak."),
        Field("fap", "double", ucd="stat.probability",
              description="False-alarm probability (Lomb-Scargle, Baluev; null where "
                          "astropy gives none)."),
        Field("depth", "double", unit="mag", ucd="phot.mag;arith.diff",
              description="BLS: depth of the box (fainter in the box)."),
        Field("duration", "double", unit="d", ucd="time.duration",
              description="BLS: duration of the box."),
        Field("epoch", "double", unit="d", ucd="time.epoch",
              description="BLS: MJD of mid-box (a minimum), in the curve's time system."),
        Field("theta", "double", ucd="stat.value",
              description="PDM: dispersion ratio theta (lower is better)."),
        Field("fold_url", "char", arraysize="*", ucd="meta.ref.url",
              description="The star's curve folded at this period."),
        Field("fold_preview", "char", arraysize="*", ucd="meta.ref.url;datalink.preview",
              description="PNG of the curve folded at this period."),
    ]


def _peak_rows(result: pg.Periodogram, star: stars.Star, band: str) -> list[tuple[Any, ...]]:
    base = services().base_url
    rows = []
    for peak in result.peaks:
        epoch = peak.epoch if peak.epoch is not None else 0.0
        fold = {"PERIOD": repr(peak.period), "EPOCH": repr(epoch)}
        query = "&".join(f"{k}={v}" for k, v in fold.items())
        rows.append((peak.rank, peak.period, peak.frequency, peak.power, peak.fap, peak.depth,
                     peak.duration, peak.epoch, peak.theta,
                     f"{urls.star_curve_url(base, star.target_id, band)}?{query}",
                     f"{urls.star_preview_url(base, star.target_id, band, True)}?{query}"))
    return rows


@bp.route("/periodogram", methods=["GET", "POST"])
def periodogram() -> Response:
    """The periodogram of a star curve (VOTable, CSV or PNG)."""
    p = dali.params()
    try:
        wanted = (dali.single(p, "RESPONSEFORMAT") or "votable").strip()
        png = wanted.lower() in (PNG, "png")
        fmt = None if png else dali.response_format(p)
        table = (dali.single(p, "TABLE") or "periodogram").strip().lower()
        if table not in TABLES:
            raise AnalysisError(f"TABLE={table!r}: must be periodogram or peaks")
        star, band, params, points = _request()
        method = params.pop("method")
        result = pg.compute_periodogram(method, points[0], points[1], points[2],
                                        points[3] if len(set(points[3])) > 1 else None,
                                        **params)
    except _Refused as refused:
        return refused.response
    except (AnalysisError, dali.UsageError, stars.StarError) as exc:
        return dali.error_response(f"UsageFault: {exc}")
    title = f"{star.target} {band}: {method}"
    if png:
        return Response(periodogram_png(result, title), mimetype=PNG)
    plan = result.plan
    described = (f"{method} periodogram of {star.target} in {', '.join(sorted(set(points[3])))}: "
                 f"{plan.n_points} points over {plan.baseline:.2f} d, {plan.n_frequencies} "
                 f"trial frequencies, periods {plan.min_period:g} to {plan.max_period:g} d; "
                 f"power: {result.power_description}.")
    params_out = [
        Param("method", "char", arraysize="*", ucd="meta.code", value=method,
              description="Periodogram method."),
        Param("band_method", "char", arraysize="*", ucd="meta.code", value=result.band_method,
              description="How bands were combined (single, multiband or mean)."),
        Param("n_points", "int", ucd="meta.number", value=plan.n_points,
              description="Points used."),
    ]
    notes = [Info("note", n) for n in result.notes]
    peaks = TablePart(fields=_peak_fields(), chunks=[_peak_rows(result, star, band)],
                      params=params_out, name="peaks",
                      description=f"The best distinct peaks. {described}")
    grid = TablePart(fields=PERIODOGRAM_FIELDS,
                     chunks=[Columns([result.frequency, result.period, result.power])],
                     params=params_out, name="periodogram", description=described)
    assert fmt is not None  # not png
    parts = [peaks, grid] if fmt.name.startswith("votable") else [
        peaks if table == "peaks" else grid]
    body = write_tables(parts, format=fmt.name,
                        infos=[Info("standardID", "ivo://ivoa.net/std/DALI#results-1.1"),
                               *notes])
    return dali.stream(body, fmt.mime)


# --------------------------------------------------------------------------
# O-C of the times of minimum (skvo.minimum) against the default ephemeris

#: TYPE= values of /analysis/oc
OC_TYPES = ("all", "primary", "secondary")
OC_TIMESYS_ID = "timesys_ephem"


def _oc_fields() -> list[Field]:
    minimum = tables.table("skvo.minimum")

    def field(name: str, **changes: Any) -> Field:
        col = minimum.column(name)
        out = Field(name, col.datatype, arraysize="*" if col.datatype == "char" else None,
                    unit=col.unit, ucd=col.ucd, description=col.description)
        for key, value in changes.items():
            setattr(out, key, value)
        return out

    return [
        field("cycle"),
        field("time_ephem", ref=OC_TIMESYS_ID, ucd="time.epoch;meta.main"),
        field("calculated", ref=OC_TIMESYS_ID),
        field("o_c"),
        field("time_error"),
        field("min_type"),
        field("time_bjd"),
        field("bandpass_uid"),
        field("night"),
        field("method"),
        field("check_time"),
        field("obs_publisher_did"),
    ]


def _fit_params(fit: EphemerisFit | None, prefix: str, what: str) -> list[Param]:
    """PARAMs of a fitted ephemeris (none when it could not be fitted)."""
    if fit is None:
        return []
    values = [("epoch", fit.epoch, fit.epoch_error, "d", "time.epoch",
               "MJD of cycle 0 (the ephemeris' time system)"),
              ("period", fit.period, fit.period_error, "d", "time.period", "Period")]
    if fit.degree == 2:
        values.append(("quadratic", fit.quadratic, fit.quadratic_error, "d", "time.epoch",
                       "Quadratic term Q of epoch + P E + Q E^2 (dP/dE = 2Q)"))
        values.append(("dpdt", fit.period_change_s_per_year,
                       fit.period_change_error * 365.25 * 86400.0, "s/yr", "time.period;arith.rate",
                       "Period change dP/dt = 2Q/P"))
    out = []
    for name, value, error, unit, ucd, text in values:
        out.append(Param(f"{prefix}_{name}", "double", unit=unit, ucd=ucd, value=value,
                         description=f"{what}: {text}."))
        out.append(Param(f"{prefix}_{name}_error", "double", unit=unit,
                         ucd=f"stat.error;{ucd.split(';')[0]}", value=error,
                         description=f"{what}: 1-sigma error of {prefix}_{name}."))
    out.append(Param(f"{prefix}_chi2", "double", ucd="stat.fit.chi2", value=fit.chi2,
                     description=f"{what}: chi-square of the weighted fit."))
    out.append(Param(f"{prefix}_dof", "int", ucd="stat.fit.dof", value=fit.dof,
                     description=f"{what}: degrees of freedom."))
    return out


def _fit(cycles: np.ndarray, times: np.ndarray, errors: np.ndarray, degree: int
         ) -> tuple[EphemerisFit | None, str | None]:
    """An ephemeris fit, or None and why not."""
    try:
        return fit_ephemeris(cycles, times, errors, degree=degree), None
    except AnalysisError as exc:
        return None, str(exc)


@bp.route("/oc", methods=["GET", "POST"])
def oc() -> Response:
    """O-C of a star's times of minimum against its default ephemeris (VOTable, CSV, PNG)."""
    from voservice import ephemeris as ephemerides

    svc = services()
    p = dali.params()
    try:
        wanted = (dali.single(p, "RESPONSEFORMAT") or "votable").strip()
        png = wanted.lower() in (PNG, "png")
        fmt = None if png else dali.response_format(p)
        kind = (dali.single(p, "TYPE") or "all").strip().lower()
        if kind not in OC_TYPES:
            raise AnalysisError(f"TYPE={kind!r}: must be one of {', '.join(OC_TYPES)}")
        star, bands = _star(p)
        with svc.engine.connect() as conn:
            eph = ephemerides.default_ephemeris(conn, star.target_id, principal=principal())
    except _Refused as refused:
        return refused.response
    except (AnalysisError, dali.UsageError) as exc:
        return dali.error_response(f"UsageFault: {exc}")
    if not eclipsing(eph):
        return dali.error_response(
            f"NotFoundFault: ID: {star.target} has no eclipsing-binary ephemeris to compute "
            "O-C against (skvo target ephemeris adds one)", 404)
    minima = [m for m in star_minima(svc.engine, principal(), svc.authority, star.target_id,
                                     bands)
              if m.cycle is not None and m.ephemeris_id == eph.ephemeris_id
              and (kind == "all" or m.min_type == kind)]
    cycles = np.array([m.cycle for m in minima], float)
    observed = np.array([m.time_ephem for m in minima], float)
    errors = np.array([m.time_error for m in minima], float)
    linear, why_linear = _fit(cycles, observed, errors, 1)
    quadratic, why_quadratic = _fit(cycles, observed, errors, 2)
    title = f"{star.target} ({', '.join(bands)}): O-C against P = {eph.period:g} d"
    if png:
        result = o_minus_c(observed, eph.period, eph.epoch, errors=errors, cycles=cycles)
        return Response(oc_png(result, quadratic or linear, title), mimetype=PNG)
    params_out = [
        Param("ephemeris_id", "long", ucd="meta.id", value=eph.ephemeris_id,
              description="The target's default ephemeris (skvo.ephemeris) O-C is against."),
        Param("period", "double", unit="d", ucd="time.period", value=eph.period,
              description="Period of the ephemeris."),
        Param("epoch", "double", unit="d", ucd="time.epoch", value=eph.epoch, ref=OC_TIMESYS_ID,
              description="Epoch (cycle 0) of the ephemeris, MJD in its time system."),
        Param("n_minima", "int", ucd="meta.number", value=len(minima),
              description="Times of minimum with a cycle number (primary or secondary)."),
        *_fit_params(linear, "linear", "Linear ephemeris fitted to the minima"),
        *_fit_params(quadratic, "quadratic", "Quadratic ephemeris fitted to the minima"),
    ]
    notes = [Info("note", f"{name} fit: {why}") for name, why in
             (("linear", why_linear), ("quadratic", why_quadratic)) if why]
    rows = [(m.cycle, m.time_ephem, m.calculated, m.o_c, m.time_error, m.min_type, m.time_bjd,
             m.bandpass_uid, m.night, m.method, m.check_time, m.obs_publisher_did)
            for m in minima]
    timesys = TimeSys(id=OC_TIMESYS_ID, timescale=eph.epoch_timescale,
                      refposition=eph.epoch_refpos.upper(), timeorigin=2400000.5)
    table = TablePart(
        fields=_oc_fields(), chunks=[rows] if rows else [], params=params_out, name="oc",
        description=f"O-C of the times of minimum of {star.target} in {', '.join(bands)} "
                    f"(skvo.minimum, nights you may fetch) against its default ephemeris "
                    f"{eph.ephemeris_id} (P = {eph.period!r} d, epoch MJD {eph.epoch!r}, "
                    f"{eph.epoch_timescale} at the {eph.epoch_refpos}); times in that system. "
                    "Fits: weighted least squares, errors scaled by the reduced chi-square "
                    "when above 1.")
    assert fmt is not None
    body = write_tables([table], format=fmt.name, timesys=[timesys],
                        infos=[Info("standardID", "ivo://ivoa.net/std/DALI#results-1.1"),
                               *notes])
    return dali.stream(body, fmt.mime)


def service_descriptor(index: int, did: str, star: stars.Star) -> Resource:
    """The DataLink service descriptor of the periodogram of one star curve's DID.

    Numeric inputs carry their defaults (MAXPERIOD: the time span of the star's
    nights), the others an empty value: clients send what they change.
    """
    baseline = (max(s.mjd_end or 0.0 for s in star.fetchable)
                - min(s.mjd_start or 0.0 for s in star.fetchable))
    defaults = {"MINPERIOD": pg.DEFAULT_MIN_PERIOD, "MAXPERIOD": round(baseline, 6),
                "OVERSAMPLE": pg.DEFAULT_OVERSAMPLE, "NTERMS": 1, "NPEAKS": 5,
                "METHOD": "lombscargle"}
    inputs = [Param("ID", "char", arraysize="*", ucd="meta.id;meta.main", value=did,
                    description="Publisher DID of the star's light curve.")]
    for name, datatype, unit, description, options in INPUTS:
        text = description + (f" ({', '.join(options)})" if options else "")
        inputs.append(Param(name, datatype, arraysize="*" if datatype == "char" else None,
                            unit=unit, value=defaults.get(name, ""), description=text))
    return Resource(
        type="meta", utype="adhoc:service", id=f"periodogram_{index}",
        description="Periodogram of the star's light curve (Lomb-Scargle, BLS or PDM), "
                    "computed by the service: the best peaks with fold links, the "
                    "periodogram, or its plot (RESPONSEFORMAT=image/png).",
        params=[Param("accessURL", "char", arraysize="*", ucd="meta.ref.url",
                      value=f"{services().base_url}/analysis/periodogram")],
        groups=[Group(name="inputParams", params=inputs)],
    )


def register(app: Flask) -> None:
    """Add ``/analysis``."""
    app.register_blueprint(bp)
