"""Times of minimum light of eclipsing binaries.

* :func:`kwee_van_woerden`: the method of Kwee & van Woerden (1956, BAN 12,
  327), written out here because no maintained library has it: the branch
  data are linearly interpolated to N equal time steps, folded about each
  trial time T of the middle half, and the mean square S(T) of the magnitude
  differences of the N/4 pairs reflected about T is computed; the best T and
  its two neighbours (one step apart) give a parabola S = A T^2 + B T + C through them gives
  T0 = -B / 2A and the error sigma^2 = (4AC - B^2) / (4 A^2 (Z - 1)), with Z
  the number of independent magnitude pairs, taken as N/4 for N
  observations in the window (Kwee & van Woerden's choice for interpolated
  data). The error is known to be optimistic when the observations scatter
  more than their number suggests; the polynomial fit is an independent check.
* :func:`polynomial_minimum`: a weighted polynomial (degree 4 by default)
  fitted to the window; the minimum is the extremum nearest the KvW time and
  its error is propagated from the fit's covariance.
* :func:`find_minima`: splits a curve into nights at gaps, and per night (and
  band) reports a minimum only when the night covers one: the faintest part
  of the smoothed curve is not at the night's edge and the star brightens on
  both sides by more than ``min_depth`` and 5 times the noise.
* :func:`classify`: primary / secondary against an ephemeris.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from voservice.analysis.common import AnalysisError, clean_series

#: fewest observations in a minimum's window (Z = N/4 >= 3 independent pairs)
MIN_POINTS = 12


@dataclass(frozen=True)
class MinimumFit:
    """One determination of a time of minimum (days, input time scale)."""

    time: float
    error: float
    method: str
    n_points: int


@dataclass(frozen=True)
class Minimum:
    """A time of minimum found in one night (and band).

    ``time``/``error``/``method`` are the Kwee-van Woerden result;
    ``check_time``/``check_error`` the polynomial fit's (None when that fit
    failed). ``kind`` is "primary" or "secondary" and ``cycle`` the epoch
    number (half-integer for secondaries) when an ephemeris was given.
    """

    time: float
    error: float
    method: str
    band: str | None
    night_start: float
    night_end: float
    n_points: int
    depth: float
    check_time: float | None = None
    check_error: float | None = None
    kind: str | None = None
    cycle: float | None = None


def kwee_van_woerden(time: ArrayLike, mag: ArrayLike) -> MinimumFit:
    """Time of minimum and its error by Kwee & van Woerden (1956) from
    observations covering both branches of one minimum (magnitudes: larger is
    fainter). AnalysisError when the data do not define a minimum."""
    t = np.asarray(time, dtype=float).ravel()
    m = np.asarray(mag, dtype=float).ravel()
    order = np.argsort(t)
    t, m = t[order], m[order]
    n_obs = t.size
    if n_obs < MIN_POINTS:
        raise AnalysisError(f"Kwee-van Woerden needs at least {MIN_POINTS} points, "
                            f"got {n_obs}", "TIME")
    t_ref = t[0]
    x = t - t_ref
    n = n_obs
    grid = np.linspace(x[0], x[-1], n)
    dt = grid[1] - grid[0]
    if dt <= 0:
        raise AnalysisError("the observations span no time", "TIME")
    y = np.interp(grid, x, m)

    # trial centres in the middle half of the data, each folded with the same
    # number k of pairs; the best one and its neighbours give the parabola
    k = n // 4
    if k < 3:
        raise AnalysisError("too few points for Kwee-van Woerden", "TIME")
    centres = np.arange(k, n - k)
    s_all = np.zeros(centres.size)
    for j in range(1, k + 1):
        d = y[centres - j] - y[centres + j]
        s_all += d * d
    s_all /= k
    best = int(np.argmin(s_all))
    if best == 0 or best == centres.size - 1:
        raise AnalysisError("the reflected branches do not define a minimum inside the data",
                            "TIME")
    c = int(centres[best])
    bottom = float(np.median(y[c - 1:c + 2]))
    if not (y[c - k:c - k // 2].mean() < bottom and y[c + k // 2 + 1:c + k + 1].mean() < bottom):
        raise AnalysisError("the data do not brighten on both sides of the best fold: "
                            "no minimum", "TIME")

    def s_of(centre: int, pairs: int) -> float:
        d = y[centre - pairs:centre][::-1] - y[centre + 1:centre + 1 + pairs]
        return float(np.mean(d * d))

    # refine with all the pairs the data allow around the best centre (KvW's
    # own procedure: step towards the smaller S until S(c) is the least of three)
    seen: set[int] = set()
    while True:
        pairs = min(c - 1, n - 2 - c)
        s_lo, s_mid, s_hi = s_of(c - 1, pairs), s_of(c, pairs), s_of(c + 1, pairs)
        if s_mid <= s_lo and s_mid <= s_hi:
            break
        seen.add(c)
        c = c - 1 if s_lo < s_hi else c + 1
        if c in seen or not k <= c < n - k:
            raise AnalysisError("the reflected branches do not define a minimum", "TIME")
    tt = np.array([grid[c - 1], grid[c], grid[c + 1]]) - grid[c]
    a, b, cc = np.polyfit(tt, [s_lo, s_mid, s_hi], 2)
    if not a > 0:
        raise AnalysisError("the reflected branches do not define a minimum", "TIME")
    t0 = -b / (2 * a)
    z = n_obs / 4.0
    var = (4 * a * cc - b * b) / (4 * a * a * (z - 1))
    error = math.sqrt(max(var, 0.0))
    if error == 0.0:  # a noiseless parabola: the step's resolution is the limit
        error = dt / 10
    return MinimumFit(time=float(t_ref + grid[c] + t0), error=error, method="kvw",
                      n_points=n_obs)


def polynomial_minimum(time: ArrayLike, mag: ArrayLike, err: ArrayLike | None = None,
                       *, degree: int = 4, near: float | None = None) -> MinimumFit:
    """Time of minimum light from a weighted polynomial fit of ``degree`` to
    the window: the faintest extremum (the one nearest ``near`` if given)
    inside the data, its error propagated from the coefficients' covariance
    (scaled by the reduced chi-square when that exceeds 1)."""
    t = np.asarray(time, dtype=float).ravel()
    m = np.asarray(mag, dtype=float).ravel()
    if t.size < degree + 3:
        raise AnalysisError(f"a degree-{degree} fit needs at least {degree + 3} points",
                            "TIME")
    t_mid = float(np.mean(t))
    scale = float(np.ptp(t)) / 2 or 1.0
    x = (t - t_mid) / scale
    w = None if err is None else 1.0 / np.asarray(err, dtype=float).ravel()
    coef, cov = np.polyfit(x, m, degree, w=w, cov="unscaled")
    resid = m - np.polyval(coef, x)
    dof = t.size - degree - 1
    chi2 = float(np.sum((resid * (1.0 if w is None else w)) ** 2)) / dof
    cov = cov * (chi2 if w is None else max(chi2, 1.0))
    d1 = np.polyder(coef)
    roots = np.roots(d1)
    roots = roots[np.abs(roots.imag) < 1e-9].real
    d2 = np.polyder(d1)
    roots = roots[(np.abs(roots) <= 1.0) & (np.polyval(d2, roots) < 0)]  # mag maxima
    if roots.size == 0:
        raise AnalysisError("the polynomial has no minimum of light inside the data", "TIME")
    if near is not None:
        r = roots[np.argmin(np.abs(roots - (near - t_mid) / scale))]
    else:
        r = roots[np.argmax(np.polyval(coef, roots))]
    # dr/dc_k = -(d p'/d c_k)(r) / p''(r); p' = sum_k c_k * (deg-k) * r**(deg-k-1)
    powers = np.arange(degree, -1, -1)
    grad_d1 = np.where(powers > 0, powers * r ** np.maximum(powers - 1, 0), 0.0)
    g = -grad_d1 / np.polyval(d2, r)
    error = math.sqrt(max(float(g @ cov @ g), 0.0)) * scale
    return MinimumFit(time=float(t_mid + r * scale), error=error, method=f"poly{degree}",
                      n_points=int(t.size))


def nights(time: ArrayLike, gap: float = 0.2) -> list[slice]:
    """Slices of the (sorted) times split wherever consecutive times are more
    than ``gap`` days apart."""
    t = np.asarray(time, dtype=float).ravel()
    if t.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(t) > gap) + 1
    edges = np.concatenate(([0], cuts, [t.size]))
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _running_median(y: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Medians of the k-point windows that fit entirely (n - k + 1 values,
    centred on indices k//2 .. n-1-k//2): no padding that would let a single
    edge point through unsmoothed."""
    if k <= 1:
        return y.copy()
    return np.median(np.lib.stride_tricks.sliding_window_view(y, k), axis=1)


def _noise(m: NDArray[np.float64], e: NDArray[np.float64] | None) -> float:
    if e is not None:
        return float(np.median(e))
    d = np.diff(m)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2)) if d.size else 0.0


def _night_minimum(t: NDArray[np.float64], m: NDArray[np.float64],
                   e: NDArray[np.float64] | None, min_depth: float, min_points: int
                   ) -> tuple[MinimumFit, MinimumFit | None, float] | None:
    n = t.size
    if n < min_points:
        return None
    k = max(3, (n // 15) | 1)
    sm = _running_median(m, k)
    tc = t[k // 2:n - k // 2]  # the times the medians are centred on
    i = int(np.argmax(sm))
    if i < 2 or i > sm.size - 3:
        return None  # the faintest part is at the edge: one branch only
    rise_left = sm[i] - sm[:i].min()
    rise_right = sm[i] - sm[i + 1:].min()
    need = max(min_depth, 5 * _noise(m, e))
    if min(rise_left, rise_right) < need:
        return None
    covered = float(min(rise_left, rise_right))
    # KvW: the window where both branches cover the same depth, symmetric in
    # time about the minimum; the first guess (the faintest median) can sit
    # anywhere on a flat bottom, so the window is re-centred on the KvW time
    # until it stays put
    level = sm[i] - 0.95 * covered
    centre = float(tc[i])
    kvw = None
    for _ in range(4):
        half = _half_width(t, tc, sm, centre, level)
        sel = np.abs(t - centre) <= half
        if sel.sum() < min_points or (t[sel] < centre).sum() < 4 or (t[sel] > centre).sum() < 4:
            return None
        try:
            kvw = kwee_van_woerden(t[sel], m[sel])
        except AnalysisError:
            return None
        moved = abs(kvw.time - centre)
        centre = kvw.time
        if moved <= max(kvw.error, 1e-6):
            break
    assert kvw is not None
    # the polynomial check: the fainter half of the minimum, around the KvW time
    half = _half_width(t, tc, sm, kvw.time, sm[i] - 0.5 * covered)
    sel = np.abs(t - kvw.time) <= half
    try:
        poly = polynomial_minimum(t[sel], m[sel], None if e is None else e[sel], near=kvw.time)
    except (AnalysisError, np.linalg.LinAlgError, ValueError):
        poly = None
    return kvw, poly, covered


def _half_width(t: NDArray[np.float64], tc: NDArray[np.float64], sm: NDArray[np.float64],
                centre: float, level: float) -> float:
    """Half the time span about ``centre`` over which the smoothed curve (``sm``
    at times ``tc``) stays fainter than ``level`` on both sides, within the
    data ``t`` (the shorter side counts)."""
    left = np.flatnonzero((tc < centre) & (sm <= level))
    right = np.flatnonzero((tc > centre) & (sm <= level))
    t_left = tc[left[-1]] if left.size else t[0]
    t_right = tc[right[0]] if right.size else t[-1]
    return float(max(min(centre - t_left, t_right - centre), 0.0))


def find_minima(
    time: ArrayLike,
    mag: ArrayLike,
    err: ArrayLike | None = None,
    bands: ArrayLike | None = None,
    *,
    gap: float = 0.2,
    min_depth: float = 0.03,
    min_points: int = MIN_POINTS,
    period: float | None = None,
    epoch: float | None = None,
    secondary_phase: float = 0.5,
    tolerance: float = 0.1,
) -> list[Minimum]:
    """Times of minimum per night (split at gaps longer than ``gap`` days)
    and band, only in nights that cover a minimum (see the module docstring).

    With ``period`` and ``epoch`` (of a primary minimum) each minimum is
    classified by :func:`classify`. Sorted by time.
    """
    if not gap > 0:
        raise AnalysisError(f"GAP={gap!r} must be a positive number of days", "GAP")
    if min_points < MIN_POINTS:
        raise AnalysisError(f"min_points must be at least {MIN_POINTS}", "min_points")
    s = clean_series(time, mag, err, bands)
    labels = [None] if s.bands is None else [str(b) for b in np.unique(s.bands)]
    found: list[Minimum] = []
    for band in labels:
        sel = slice(None) if band is None else s.bands == band
        t, m = s.time[sel], s.mag[sel]
        e = None if s.err is None else s.err[sel]
        for night in nights(t, gap):
            res = _night_minimum(t[night], m[night], None if e is None else e[night],
                                 min_depth, min_points)
            if res is None:
                continue
            kvw, poly, depth = res
            found.append(Minimum(
                time=kvw.time, error=kvw.error, method=kvw.method, band=band,
                night_start=float(t[night][0]), night_end=float(t[night][-1]),
                n_points=kvw.n_points, depth=depth,
                check_time=None if poly is None else poly.time,
                check_error=None if poly is None else poly.error))
    found.sort(key=lambda x: x.time)
    if period is not None and epoch is not None and found:
        kinds, cycles = classify([x.time for x in found], period, epoch,
                                 secondary_phase=secondary_phase, tolerance=tolerance)
        found = [replace(x, kind=k, cycle=None if k is None else float(c))
                 for x, k, c in zip(found, kinds, cycles, strict=True)]
    return found


def classify(times: ArrayLike, period: float, epoch: float, *, secondary_phase: float = 0.5,
             tolerance: float = 0.1) -> tuple[list[str | None], NDArray[np.float64]]:
    """Primary / secondary for each time of minimum given an ephemeris
    (``epoch`` of a primary minimum, ``period`` days): "primary" within
    ``tolerance`` (in phase) of phase 0, "secondary" within it of
    ``secondary_phase`` (0.5 unless the orbit is eccentric), else None.
    Returns the kinds and the cycle numbers (E for primaries, E +
    secondary_phase for secondaries, the nearest integer otherwise)."""
    if not (period and period > 0):
        raise AnalysisError(f"PERIOD={period!r} must be a positive number of days", "PERIOD")
    if not 0 < tolerance < 0.25:
        raise AnalysisError("tolerance must be between 0 and 0.25 in phase", "tolerance")
    x = (np.asarray(times, dtype=float) - epoch) / period
    e_primary = np.round(x)
    e_secondary = np.round(x - secondary_phase) + secondary_phase
    kinds: list[str | None] = []
    cycles = np.empty(x.size)
    for k in range(x.size):
        if abs(x[k] - e_primary[k]) <= tolerance:
            kinds.append("primary")
            cycles[k] = e_primary[k]
        elif abs(x[k] - e_secondary[k]) <= tolerance:
            kinds.append("secondary")
            cycles[k] = e_secondary[k]
        else:
            kinds.append(None)
            cycles[k] = e_primary[k]
    return kinds, cycles
