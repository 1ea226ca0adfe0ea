"""Barycentric and heliocentric times with astropy.time.

:func:`convert_times` takes times as MJD numbers in a stated time scale
(utc, tt, tdb) and at a stated reference position (topocenter: as observed;
heliocenter: already HJD; barycenter: already BJD), the target's ICRS
position and the observatory's location, and returns them as

* ``BJD_TDB``: barycentric, TDB (``t.tdb + t.light_travel_time(target, "barycentric")``);
* ``HJD_UTC``: heliocentric, UTC (``t.utc + t.light_travel_time(target, "heliocentric")``);
* ``MJD_UTC``: as observed (topocentric), UTC.

Never a double correction: times that are already heliocentric or
barycentric are first brought back to the observer by undoing their
correction (the light travel time depends on the time it is computed for,
so this is iterated to a fixed point; three rounds leave < 1 microsecond),
and only then corrected to the requested reference. Times already at the
requested reference position only change scale (no light-travel term).

A missing observatory location is not an error by default: the geocentre
is used, which leaves an error of at most R_earth / c = 21.3 ms
(:data:`GEOCENTRE_ERROR_S`) in the light travel time (and ~ 1.6 us in TDB-TT);
the result says so (``max_error_s``, ``notes``). With
``require_location=True`` a missing location is an AnalysisError instead.
The target's proper motion is ignored (its position is taken as fixed).
Solar-system positions are astropy's "builtin" ephemeris (ERFA epv00,
some km, i.e. ~ 10 us) unless another is named. The light travel time is
interpolated between exact values 30 min apart (error < 0.1 ms), which are
cached per target and observatory: astropy's exact call costs ~0.3 ms per time
and ~20 ms per call, and a star curve converts each night and band apart.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time, TimeDelta
from numpy.typing import ArrayLike, NDArray

from voservice.analysis.common import AnalysisError

Scale = Literal["utc", "tt", "tdb"]
Reference = Literal["topocenter", "heliocenter", "barycenter"]
Target = Literal["BJD_TDB", "HJD_UTC", "MJD_UTC"]

SCALES = ("utc", "tt", "tdb")
REFERENCES = ("topocenter", "heliocenter", "barycenter")
TIMESYS = ("BJD_TDB", "HJD_UTC", "MJD_UTC")

#: light travel time across the Earth's equatorial radius, seconds: the
#: largest error of a correction computed for the geocentre instead of the observatory
GEOCENTRE_ERROR_S = 6378137.0 / 299792458.0
#: rounds of the fixed-point iteration that undoes a correction
UNDO_ROUNDS = 3
#: light travel times are computed exactly at nodes LTT_NODE_DAYS apart (only
#: where there are times) and interpolated linearly (astropy takes ~0.3 ms per time
#: and ~20 ms per call); the interpolation error is below 0.1 ms
#: (diurnal term 21 ms * (omega h)^2 / 8 ~ 5e-5 s, annual ~ 1e-5 s)
LTT_NODE_DAYS = 1.0 / 48
#: the exact values at the nodes are kept per (target, observatory, kind, scale) in the
#: process, so that the many small conversions of one star (a call per night and band,
#: three more to undo a given correction) cost one astropy call per stretch of nights;
#: at most this many (target, observatory, ...) keys and nodes per key
LTT_CACHE_KEYS = 512
LTT_CACHE_NODES = 200_000
#: a missing node is computed together with its neighbours up to this many days away
LTT_BLOCK_DAYS = 2.0

_OUTPUT = {
    "BJD_TDB": ("barycenter", "tdb", "BARYCENTER"),
    "HJD_UTC": ("heliocenter", "utc", "HELIOCENTER"),
    "MJD_UTC": ("topocenter", "utc", "TOPOCENTER"),
}
_KIND = {"barycenter": "barycentric", "heliocenter": "heliocentric"}


@dataclass(frozen=True)
class TimeConversion:
    """Converted times.

    ``mjd``: the times as MJD numbers (JD - 2400000.5) in ``timescale`` at
    ``refposition`` (the VO TIMESYS attributes; ``refposition`` GEOCENTER
    when observer times had to be reconstructed without a location);
    ``jd``: the same as JD. ``max_error_s`` bounds the error from a missing
    location (0 when the location was known or not needed).
    """

    mjd: NDArray[np.float64]
    timesys: str
    timescale: str
    refposition: str
    description: str
    max_error_s: float
    notes: tuple[str, ...]

    @property
    def jd(self) -> NDArray[np.float64]:
        return self.mjd + 2400000.5


def observatory(lon: float, lat: float, height: float = 0.0) -> EarthLocation:
    """An EarthLocation from geodetic longitude and latitude (degrees, east
    positive) and height above the WGS84 ellipsoid (metres); AnalysisError
    naming the value when it is out of range."""
    checks = (("longitude", lon, -360.0, 360.0), ("latitude", lat, -90.0, 90.0),
              ("height", height, -500.0, 10000.0))
    for name, value, lo, hi in checks:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise AnalysisError(f"observatory {name}={value!r} is not a number",
                                "location") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise AnalysisError(f"observatory {name}={value!r} is outside {lo:g}..{hi:g}",
                                "location")
    return EarthLocation.from_geodetic(float(lon) * u.deg, float(lat) * u.deg,
                                       float(height) * u.m)


def _location(location: EarthLocation | tuple[float, float, float] | None
              ) -> EarthLocation | None:
    if location is None or isinstance(location, EarthLocation):
        return location
    try:
        lon, lat, height = location
    except (TypeError, ValueError):
        raise AnalysisError("location must be an EarthLocation or (lon, lat, height)",
                            "location") from None
    return observatory(lon, lat, height)


def _target(ra: float, dec: float) -> SkyCoord:
    try:
        r, d = float(ra), float(dec)
    except (TypeError, ValueError):
        raise AnalysisError(f"target position ra={ra!r}, dec={dec!r} is not numeric",
                            "POS") from None
    if not (math.isfinite(r) and math.isfinite(d) and -90 <= d <= 90):
        raise AnalysisError(f"target position ra={ra!r}, dec={dec!r} is not a sky position",
                            "POS")
    return SkyCoord(r * u.deg, d * u.deg, frame="icrs")


def light_travel_time(t: Time, target: SkyCoord, kind: str,
                      ephemeris: str = "builtin") -> TimeDelta:
    """``t.light_travel_time(target, kind)``, interpolated linearly between exact
    values at nodes LTT_NODE_DAYS apart (error < 0.1 ms; the nodes are cached)."""
    mjd = np.asarray(t.mjd, dtype=float)
    step = LTT_NODE_DAYS
    bins = np.floor(mjd / step).astype(np.int64)
    node_k = np.unique(np.concatenate((bins, bins + 1)))
    at_nodes = _nodes(node_k, t, target, kind, ephemeris)
    i = np.searchsorted(node_k, bins)
    frac = mjd / step - bins
    sec = at_nodes[i] * (1.0 - frac) + at_nodes[i + 1] * frac
    return TimeDelta(sec, format="sec", scale="tdb")


_LTT_CACHE: OrderedDict[tuple, dict[int, float]] = OrderedDict()
_LTT_LOCK = threading.Lock()


def _nodes(node_k: NDArray[np.int64], t: Time, target: SkyCoord, kind: str,
           ephemeris: str) -> NDArray[np.float64]:
    """Exact light travel times (s) at the nodes ``node_k * LTT_NODE_DAYS`` (cached)."""
    loc = t.location
    where = (None if loc is None else
             tuple(round(float(np.ravel(c.to_value(u.m))[0]), 3) for c in loc.geocentric))
    key = (round(float(target.ra.deg), 9), round(float(target.dec.deg), 9), where, kind,
           t.scale, ephemeris)
    with _LTT_LOCK:
        known = _LTT_CACHE.get(key)
        if known is None:
            known = _LTT_CACHE[key] = {}
            while len(_LTT_CACHE) > LTT_CACHE_KEYS:
                _LTT_CACHE.popitem(last=False)
        _LTT_CACHE.move_to_end(key)
        missing = [int(k) for k in node_k if int(k) not in known]
    if missing:
        reach = int(LTT_BLOCK_DAYS / LTT_NODE_DAYS)
        wanted = np.unique(np.add.outer(np.asarray(missing), np.arange(-reach, reach + 1)))
        nodes = Time(wanted * LTT_NODE_DAYS, format="mjd", scale=t.scale, location=loc)
        values = nodes.light_travel_time(target, kind, ephemeris=ephemeris).to_value(u.s)
        with _LTT_LOCK:
            if len(known) + len(wanted) > LTT_CACHE_NODES:
                known.clear()
            known.update(zip(wanted.tolist(), np.atleast_1d(values).tolist(), strict=True))
            out = np.array([known.get(int(k), np.nan) for k in node_k])
        if np.isnan(out).any():  # cleared by another thread meanwhile: compute them here
            exact = Time(node_k * LTT_NODE_DAYS, format="mjd", scale=t.scale, location=loc)
            return np.atleast_1d(exact.light_travel_time(target, kind,
                                                         ephemeris=ephemeris).to_value(u.s))
        return out
    with _LTT_LOCK:
        return np.array([known[int(k)] for k in node_k])


def convert_times(
    mjd: ArrayLike,
    *,
    ra: float,
    dec: float,
    to: Target = "BJD_TDB",
    scale: Scale = "utc",
    reference: Reference = "topocenter",
    location: EarthLocation | tuple[float, float, float] | None = None,
    require_location: bool = False,
    ephemeris: str = "builtin",
) -> TimeConversion:
    """Times (MJD numbers in ``scale`` at ``reference``) of a target at ICRS
    ``ra``, ``dec`` (degrees) as ``to`` (BJD_TDB, HJD_UTC or MJD_UTC).

    ``location``: the observatory (EarthLocation or (lon deg, lat deg, height
    m)); when None the geocentre is used (error <= 21.3 ms, stated in the
    result) unless ``require_location`` makes it an AnalysisError. See the
    module docstring for how heliocentric/barycentric input is handled.
    """
    if to not in TIMESYS:
        raise AnalysisError(f"TIMESYS={to!r} is not one of {', '.join(TIMESYS)}", "TIMESYS")
    if scale not in SCALES:
        raise AnalysisError(f"time scale {scale!r} is not one of {', '.join(SCALES)}",
                            "timescale")
    if reference not in REFERENCES:
        raise AnalysisError(f"reference position {reference!r} is not one of "
                            f"{', '.join(REFERENCES)}", "refposition")
    values = np.asarray(mjd, dtype=float).ravel()
    if not np.all(np.isfinite(values)):
        raise AnalysisError("times must be finite MJD numbers", "TIME")
    out_ref, out_scale, refposition = _OUTPUT[to]
    notes: list[str] = []
    if reference == out_ref:
        # already at the requested position: only the scale changes
        t = Time(values, format="mjd", scale=scale)
        res = getattr(t, out_scale)
        return TimeConversion(
            mjd=np.asarray(res.mjd, dtype=float), timesys=to, timescale=out_scale.upper(),
            refposition=refposition,
            description=f"{_describe(to)}; given at the {reference} in {scale.upper()}, "
                        "only the time scale converted", max_error_s=0.0, notes=())
    target = _target(ra, dec)
    loc = _location(location)
    max_error = 0.0
    where = "the observatory"
    if loc is None:
        if require_location:
            raise AnalysisError(
                f"{to} needs the observatory location (longitude, latitude, height) of "
                "the facility, which is not known", "location")
        loc = EarthLocation.from_geocentric(0 * u.m, 0 * u.m, 0 * u.m)
        max_error = GEOCENTRE_ERROR_S
        where = "the geocentre"
        notes.append("observatory location unknown: corrections computed for the "
                     f"geocentre, error up to {GEOCENTRE_ERROR_S * 1e3:.1f} ms")
    else:
        where = (f"the observatory (lon {loc.lon.deg:.4f}, lat {loc.lat.deg:.4f} deg, "
                 f"height {loc.height.to_value(u.m):.0f} m)")
    given = Time(values, format="mjd", scale=scale, location=loc)
    if reference == "topocenter":
        observed = given
    else:
        # undo the given correction: observed = given - ltt(observed), iterated
        kind = _KIND[reference]
        observed = given
        for _ in range(UNDO_ROUNDS):
            ltt = light_travel_time(observed, target, kind, ephemeris)
            observed = given - ltt
        notes.append(f"input {reference} times brought back to the observer before "
                     "correcting")
    if to == "MJD_UTC":
        res = observed.utc
        if max_error and reference != "topocenter":
            refposition = "GEOCENTER"
    else:
        ltt = light_travel_time(observed, target, _KIND[out_ref], ephemeris)
        res = (observed.tdb if out_scale == "tdb" else observed.utc) + ltt
    return TimeConversion(
        mjd=np.asarray(res.mjd, dtype=float), timesys=to, timescale=out_scale.upper(),
        refposition=refposition,
        description=(f"{_describe(to)}; light travel time by astropy ({ephemeris} "
                     f"ephemeris) for {where}, target ICRS {target.ra.deg:.5f} "
                     f"{target.dec.deg:+.5f}; given at the {reference} in {scale.upper()}"),
        max_error_s=max_error, notes=tuple(notes))


def _describe(timesys: str) -> str:
    return {
        "BJD_TDB": "Barycentric Julian Date in TDB",
        "HJD_UTC": "Heliocentric Julian Date in UTC",
        "MJD_UTC": "Modified Julian Date in UTC as observed (topocentric)",
    }[timesys]
