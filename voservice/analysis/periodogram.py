"""Periodograms of light curves: Lomb-Scargle, box least squares, PDM.

Everything here takes numpy arrays (time in days, magnitudes, errors, optional
band labels) and returns dataclasses of numpy arrays; it knows nothing of HTTP
or the stores. A request handler calls :func:`plan_periodogram` first (it
validates the parameters, builds the grid size and estimates the CPU time
without computing anything, raising :class:`AnalysisError` above the limits)
and then :func:`compute_periodogram` (or one of :func:`lomb_scargle`,
:func:`box_least_squares`, :func:`phase_dispersion`).

Limits (documented constants):

* :data:`MAX_GRID` frequencies at most in any grid;
* :data:`MAX_SECONDS` estimated CPU seconds at most (the estimate of
  :func:`estimate_seconds`, calibrated on a 2-core development machine; it is a
  guard against runaway requests, not a promise).

Grids are uniform in frequency for Lomb-Scargle and PDM (step
``1 / (OVERSAMPLE * baseline)``: OVERSAMPLE grid points per peak width) and
uniform in log frequency for BLS (relative step ``min(DURATION) /
(OVERSAMPLE * baseline)``: a box keeps its phase across the baseline to a
fraction of its own width). After the grid, each of the best peaks is refined
on a fine local grid with an exact (slow) evaluation, so the peak period is
not limited to the grid step.

Bands: with band labels of more than one band, Lomb-Scargle combines them
either with astropy's ``LombScargleMultiband`` (``band_method="multiband"``:
one shared NTERMS-harmonic model plus a free offset per band, fitted together
at every frequency; astropy's "flexible" method, exact but O(N x Nfreq) in
Python, so slow) or by subtracting each band's weighted mean magnitude and
running one ``LombScargle`` (``band_method="mean"``: fast, but the offsets are
estimated without the periodic model, biased when a band covers the phase
unevenly). ``"auto"`` (the default) takes "multiband" when astropy has it and
its estimated time is at most :data:`MULTIBAND_AUTO_SECONDS`, else "mean"; the
result's ``band_method`` says which was used. BLS and PDM always use "mean".

False-alarm probabilities (Lomb-Scargle only) come from astropy's
``false_alarm_probability(method="baluev")``, which astropy implements for
NTERMS=1 single-model periodograms only (so not for "multiband" nor NTERMS>1:
``fap`` is None there, with a note); it needs scipy.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from astropy.timeseries import BoxLeastSquares, LombScargle
from numpy.typing import ArrayLike, NDArray

from voservice.analysis.common import AnalysisError, Series, clean_series

try:  # astropy >= 6.0
    from astropy.timeseries import LombScargleMultiband
except ImportError:  # pragma: no cover - depends on the installed astropy
    LombScargleMultiband = None

#: largest number of trial frequencies of any periodogram
MAX_GRID = 1_000_000
#: largest estimated CPU time of one periodogram, seconds (see estimate_seconds)
MAX_SECONDS = 120.0
#: "auto" combines bands with LombScargleMultiband up to this estimated time
MULTIBAND_AUTO_SECONDS = 10.0
#: default grid points per peak width
DEFAULT_OVERSAMPLE = 5.0
#: default shortest trial period, days
DEFAULT_MIN_PERIOD = 0.1
MAX_OVERSAMPLE = 100.0
MAX_NTERMS = 6
MAX_PEAKS = 100
#: points of each of the two local grids a peak is refined on
REFINE_POINTS = 9

METHODS = ("lombscargle", "bls", "pdm")
Method = Literal["lombscargle", "bls", "pdm"]
BandMethod = Literal["auto", "multiband", "mean"]

#: whether the installed astropy has LombScargleMultiband
HAS_MULTIBAND = LombScargleMultiband is not None


@dataclass(frozen=True)
class Grid:
    """A trial-frequency grid (frequencies in 1/day).

    ``kind`` "linear": ``fmin + step * k``; "log": ``fmin * (1 + step) ** k``,
    k = 0 .. n-1.
    """

    kind: Literal["linear", "log"]
    fmin: float
    fmax: float
    step: float
    n: int

    def frequencies(self) -> NDArray[np.float64]:
        """The grid's frequencies, ascending."""
        k = np.arange(self.n, dtype=float)
        if self.kind == "linear":
            return self.fmin + self.step * k
        return self.fmin * np.exp(k * math.log1p(self.step))


@dataclass(frozen=True)
class Plan:
    """What a periodogram request will compute, known before computing it."""

    method: Method
    n_points: int
    n_bands: int
    band_method: Literal["single", "multiband", "mean"]
    baseline: float
    min_period: float
    max_period: float
    oversample: float
    nterms: int
    durations: NDArray[np.float64] | None
    n_bins: int
    grid: Grid
    seconds: float

    @property
    def n_frequencies(self) -> int:
        return self.grid.n


@dataclass(frozen=True)
class Peak:
    """One distinct periodogram peak (frequency 1/day, period days).

    ``fap``: Lomb-Scargle false-alarm probability (None where astropy has
    none). BLS: ``depth`` and ``depth_error`` in magnitudes (positive = fainter
    in the box), ``duration`` days, ``epoch`` the time of mid-box (minimum) in
    the input time scale, ``snr`` the depth's signal to noise. PDM: ``theta``.
    """

    rank: int
    frequency: float
    period: float
    power: float
    fap: float | None = None
    depth: float | None = None
    depth_error: float | None = None
    duration: float | None = None
    epoch: float | None = None
    snr: float | None = None
    theta: float | None = None


@dataclass(frozen=True)
class Periodogram:
    """A periodogram: arrays over the grid plus the best distinct peaks.

    ``power`` is "higher is better" for every method: Lomb-Scargle power
    (standard normalization, 0..1), BLS log-likelihood improvement
    (objective "likelihood") or SNR (objective "snr"), PDM ``1 - theta``.
    """

    method: Method
    frequency: NDArray[np.float64]
    period: NDArray[np.float64]
    power: NDArray[np.float64]
    power_description: str
    peaks: tuple[Peak, ...]
    plan: Plan
    notes: tuple[str, ...] = field(default=())

    @property
    def band_method(self) -> str:
        return self.plan.band_method

    @property
    def best(self) -> Peak | None:
        return self.peaks[0] if self.peaks else None


# --------------------------------------------------------------------------- grid


def _positive(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AnalysisError(f"{name}={value!r} is not a number", name) from None
    if not math.isfinite(v) or v <= 0:
        raise AnalysisError(f"{name}={value!r} must be a positive number", name)
    return v


def _check_oversample(oversample: float) -> float:
    v = _positive(oversample, "OVERSAMPLE")
    if not 1 <= v <= MAX_OVERSAMPLE:
        raise AnalysisError(
            f"OVERSAMPLE={oversample:g} must be between 1 and {MAX_OVERSAMPLE:g}", "OVERSAMPLE")
    return v


def frequency_grid(
    baseline: float,
    min_period: float,
    max_period: float,
    oversample: float = DEFAULT_OVERSAMPLE,
    *,
    kind: Literal["linear", "log"] = "linear",
    min_duration: float | None = None,
) -> Grid:
    """The trial-frequency grid for periods min_period..max_period (days) of a
    curve spanning ``baseline`` days, without building it.

    "linear": step ``1 / (oversample * baseline)``; "log" (BLS): relative step
    ``min_duration / (oversample * baseline)``. Raises AnalysisError naming the
    parameter when the grid would exceed MAX_GRID frequencies.
    """
    baseline = _positive(baseline, "TIME")
    min_period = _positive(min_period, "MINPERIOD")
    max_period = _positive(max_period, "MAXPERIOD")
    oversample = _check_oversample(oversample)
    if max_period <= min_period:
        raise AnalysisError(
            f"MAXPERIOD={max_period:g} must be larger than MINPERIOD={min_period:g}", "MAXPERIOD")
    fmin, fmax = 1.0 / max_period, 1.0 / min_period
    if kind == "linear":
        step = 1.0 / (oversample * baseline)
        n = int(math.floor((fmax - fmin) / step)) + 1
        what = f"OVERSAMPLE={oversample:g}"
    else:
        if min_duration is None:
            raise AnalysisError("a log grid needs the shortest DURATION", "DURATION")
        step = _positive(min_duration, "DURATION") / (oversample * baseline)
        n = int(math.floor(math.log(fmax / fmin) / math.log1p(step))) + 1
        what = f"OVERSAMPLE={oversample:g} and DURATION={min_duration:g}"
    n = max(n, 2)
    if n > MAX_GRID:
        raise AnalysisError(
            f"MINPERIOD={min_period:g} with {what} over a {baseline:.4g}-day curve needs "
            f"{n:,} frequencies; the limit is {MAX_GRID:,} (raise MINPERIOD, lower "
            "MAXPERIOD or OVERSAMPLE, or cut the curve in TIME)", "MINPERIOD")
    return Grid(kind=kind, fmin=fmin, fmax=fmax, step=step, n=n)


# --------------------------------------------------------------------------- cost


def estimate_seconds(
    method: Method,
    n_points: int,
    grid: Grid,
    *,
    nterms: int = 1,
    n_bands: int = 1,
    band_method: str = "single",
    durations: NDArray[np.float64] | None = None,
) -> float:
    """Rough CPU seconds of one periodogram on ``grid``.

    Calibrated on the 2-core development machine with astropy 8 (figures vary
    by a factor of 2 with the machine's load): LombScargle NTERMS=1 on 100k
    points x 1e5 frequencies ~1.1 s; LombScargleMultiband 2000 points x 1e4
    frequencies ~3.9 s; BLS costs ~8e-9 s per point and period plus ~1e-8 s
    per phase bin (10 per shortest duration) and duration; PDM ~2.5e-8 s per
    point and frequency.
    """
    n, nf = float(n_points), float(grid.n)
    if method == "lombscargle":
        if band_method == "multiband":
            k = 1 + 2 * nterms + n_bands
            return 3.3e-8 * k * n * nf + 2e-5 * nf
        if nterms == 1:
            return 8e-6 * nf + 6e-6 * n
        return 1.2e-5 * nterms**2 * nf + 8e-6 * nterms * n
    if method == "bls":
        durs = np.asarray([0.1] if durations is None else durations, dtype=float)
        if grid.kind == "log":
            sum_periods = (1 / grid.fmin - 1 / grid.fmax) / math.log1p(grid.step) + 1 / grid.fmin
        else:
            sum_periods = float(np.sum(1.0 / grid.frequencies()))
        bins = 10.0 * sum_periods / float(durs.min())
        return 8e-9 * n * nf + 1e-8 * bins * durs.size
    if method == "pdm":
        return 2.5e-8 * n * nf
    raise AnalysisError(f"METHOD={method!r} is not one of {', '.join(METHODS)}", "METHOD")


def default_durations(min_period: float, max_period: float) -> NDArray[np.float64]:
    """BLS box durations (days) when none are given: 8 log-spaced from
    0.04 * MINPERIOD to min(0.6 * MINPERIOD, 0.15 * MAXPERIOD) (eclipses of
    binaries last some 5-15 % of the period; a box must be shorter than the
    shortest trial period)."""
    lo = 0.04 * min_period
    hi = max(min(0.6 * min_period, 0.15 * max_period), lo)
    return np.geomspace(lo, hi, 8)


def _band_count(bands: NDArray[np.str_] | None) -> int:
    return 1 if bands is None else int(np.unique(bands).size)


def plan_periodogram(
    method: Method,
    time: ArrayLike,
    bands: ArrayLike | None = None,
    *,
    min_period: float | None = None,
    max_period: float | None = None,
    oversample: float = DEFAULT_OVERSAMPLE,
    nterms: int = 1,
    durations: Sequence[float] | None = None,
    n_bins: int = 10,
    band_method: BandMethod = "auto",
) -> Plan:
    """Validates the parameters and sizes the request without computing it.

    ``min_period`` defaults to DEFAULT_MIN_PERIOD, ``max_period`` to the
    curve's baseline. Raises AnalysisError (naming METHOD, MINPERIOD,
    MAXPERIOD, OVERSAMPLE, NTERMS, DURATION, NBINS or TIME) for bad values,
    a grid above MAX_GRID or an estimate above MAX_SECONDS.
    """
    if method not in METHODS:
        raise AnalysisError(f"METHOD={method!r} is not one of {', '.join(METHODS)}", "METHOD")
    t = np.asarray(time, dtype=float).ravel()
    t = t[np.isfinite(t)]
    if t.size < 5:
        raise AnalysisError(f"the curve has {t.size} usable points; a periodogram needs "
                            "at least 5", "TIME")
    baseline = float(t.max() - t.min())
    if baseline <= 0:
        raise AnalysisError("the curve spans no time: all points have the same time", "TIME")
    if isinstance(nterms, bool) or not isinstance(nterms, int | np.integer) or not (
            1 <= nterms <= MAX_NTERMS):
        raise AnalysisError(f"NTERMS={nterms!r} must be an integer from 1 to {MAX_NTERMS}",
                            "NTERMS")
    nterms = int(nterms)
    min_p = DEFAULT_MIN_PERIOD if min_period is None else _positive(min_period, "MINPERIOD")
    if max_period is None:
        max_p = baseline
        if max_p <= min_p:
            raise AnalysisError(
                f"MINPERIOD={min_p:g} is not shorter than the curve's {baseline:.4g}-day "
                "baseline (the default MAXPERIOD)", "MINPERIOD")
    else:
        max_p = _positive(max_period, "MAXPERIOD")
    b = None if bands is None else np.asarray(bands).astype(str).ravel()
    n_bands = _band_count(b)
    if band_method not in ("auto", "multiband", "mean"):
        raise AnalysisError(f"band_method={band_method!r} is not auto, multiband or mean",
                            "BANDS")
    durs: NDArray[np.float64] | None = None
    nb = 10
    if method == "bls":
        durs = (default_durations(min_p, max_p) if durations is None
                else np.asarray(durations, dtype=float).ravel())
        if durs.size == 0 or durs.size > 50 or not np.all(np.isfinite(durs) & (durs > 0)):
            raise AnalysisError("DURATION must be 1 to 50 positive durations in days",
                                "DURATION")
        if durs.max() >= min_p:
            raise AnalysisError(
                f"the longest DURATION={durs.max():g} must be shorter than "
                f"MINPERIOD={min_p:g}", "DURATION")
        grid = frequency_grid(baseline, min_p, max_p, oversample, kind="log",
                              min_duration=float(durs.min()))
    else:
        grid = frequency_grid(baseline, min_p, max_p, oversample)
    if method == "pdm":
        if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or not (
                3 <= n_bins <= 100):
            raise AnalysisError(f"NBINS={n_bins!r} must be an integer from 3 to 100", "NBINS")
        nb = int(n_bins)
    used: Literal["single", "multiband", "mean"]
    if n_bands <= 1:
        used = "single"
    elif method != "lombscargle" or band_method == "mean":
        used = "mean"
    elif band_method == "multiband":
        if not HAS_MULTIBAND:
            raise AnalysisError("the installed astropy has no LombScargleMultiband; use the "
                                "per-band mean subtraction", "BANDS")
        used = "multiband"
    else:
        mb = estimate_seconds(method, t.size, grid, nterms=nterms, n_bands=n_bands,
                              band_method="multiband")
        used = "multiband" if HAS_MULTIBAND and mb <= MULTIBAND_AUTO_SECONDS else "mean"
    seconds = estimate_seconds(method, t.size, grid, nterms=nterms, n_bands=n_bands,
                               band_method=used, durations=durs)
    if seconds > MAX_SECONDS:
        extra = f" and {durs.size} durations" if durs is not None else ""
        raise AnalysisError(
            f"METHOD={method} on {t.size:,} points with MINPERIOD={min_p:g}, "
            f"MAXPERIOD={max_p:g}, OVERSAMPLE={float(oversample):g}{extra} "
            f"({grid.n:,} frequencies) is estimated at {seconds:.0f} s of CPU; the limit is "
            f"{MAX_SECONDS:g} s (raise MINPERIOD, lower MAXPERIOD or OVERSAMPLE, or cut the "
            "curve in TIME)", "MINPERIOD")
    return Plan(method=method, n_points=int(t.size), n_bands=n_bands, band_method=used,
                baseline=baseline, min_period=min_p, max_period=max_p,
                oversample=float(oversample), nterms=nterms, durations=durs, n_bins=nb,
                grid=grid, seconds=seconds)


# --------------------------------------------------------------------------- peaks


def distinct_peaks(power: NDArray[np.float64], n: int, separation: int) -> NDArray[np.intp]:
    """Indices of the ``n`` highest distinct peaks of ``power``, best first.

    A local maximum is not distinct when it is less than ``separation`` grid
    points from a higher peak already taken, or when it and that peak stand
    on one hill: the power between them stays above the half height of the
    lower one (half way from the median power to its top).
    """
    p = np.asarray(power, dtype=float)
    if p.size == 0:
        return np.zeros(0, dtype=np.intp)
    q = np.where(np.isfinite(p), p, -np.inf)
    left = np.concatenate(([-np.inf], q[:-1]))
    right = np.concatenate((q[1:], [-np.inf]))
    cand = np.flatnonzero((q >= left) & (q >= right) & ((q > left) | (q > right))
                          & np.isfinite(q))
    cand = cand[np.argsort(-q[cand], kind="stable")]
    base = float(np.median(q[np.isfinite(q)]))
    chosen: list[int] = []
    for i in cand:
        i = int(i)
        if any(abs(i - j) < separation for j in chosen):
            continue
        half = 0.5 * (q[i] + base)
        same_hill = False
        for j in chosen:
            lo, hi = (i, j) if i < j else (j, i)
            if np.min(q[lo:hi + 1]) > half:
                same_hill = True
                break
        if same_hill:
            continue
        chosen.append(i)
        if len(chosen) == n:
            break
    return np.asarray(chosen, dtype=np.intp)


def _refine_peak(freq: NDArray[np.float64], power: NDArray[np.float64], i: int,
                 evaluate: Callable[[NDArray[np.float64]], NDArray[np.float64]],
                 points: int = REFINE_POINTS, stages: int = 2) -> tuple[float, float]:
    """The peak at grid index i refined with an exact evaluation: ``points``
    points over the neighbouring grid steps, (with 2 stages) as many over the
    best sub-step, then the vertex of the parabola through the best three
    (stages * points + 1 evaluations)."""
    lo, hi = freq[max(i - 1, 0)], freq[min(i + 1, freq.size - 1)]
    best_f, best_p = float(freq[i]), float(power[i])
    for _ in range(stages):
        f = np.linspace(lo, hi, points)
        p = np.asarray(evaluate(f), dtype=float)
        k = int(np.nanargmax(p))
        if p[k] > best_p:
            best_f, best_p = float(f[k]), float(p[k])
        lo, hi = f[max(k - 1, 0)], f[min(k + 1, f.size - 1)]
    if 0 < k < f.size - 1:
        y0, y1, y2 = p[k - 1], p[k], p[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            fv = float(f[k] + 0.5 * (y0 - y2) / denom * (f[1] - f[0]))
            pv = float(np.asarray(evaluate(np.array([fv])), dtype=float)[0])
            if pv > best_p:
                best_f, best_p = fv, pv
    return best_f, best_p


def _check_peaks(n_peaks: int) -> int:
    if isinstance(n_peaks, bool) or not isinstance(n_peaks, int | np.integer) or not (
            1 <= n_peaks <= MAX_PEAKS):
        raise AnalysisError(f"NPEAKS={n_peaks!r} must be an integer from 1 to {MAX_PEAKS}",
                            "NPEAKS")
    return int(n_peaks)


def _band_means_removed(s: Series) -> NDArray[np.float64]:
    """Magnitudes minus their band's weighted mean (the overall one without bands)."""
    w = None if s.err is None else 1.0 / s.err**2
    y = s.mag.copy()
    if s.bands is None:
        return y - np.average(y, weights=w)
    for band in np.unique(s.bands):
        sel = s.bands == band
        y[sel] -= np.average(s.mag[sel], weights=None if w is None else w[sel])
    return y


def _prepare(method: Method, time: ArrayLike, mag: ArrayLike, err: ArrayLike | None,
             bands: ArrayLike | None, n_peaks: int, **plan_kw: Any
             ) -> tuple[Series, Plan, float, int]:
    s = clean_series(time, mag, err, bands)
    plan = plan_periodogram(method, s.time, s.bands, **plan_kw)
    t_ref = float(np.floor(s.time[0]))
    return s, plan, t_ref, _check_peaks(n_peaks)


def _refined(freq: NDArray[np.float64], power: NDArray[np.float64], idx: NDArray[np.intp],
             evaluate: Callable[[NDArray[np.float64]], NDArray[np.float64]], refine: bool,
             points: int = REFINE_POINTS, stages: int = 2) -> list[tuple[float, float]]:
    out = [_refine_peak(freq, power, int(i), evaluate, points, stages) if refine
           else (float(freq[i]), float(power[i])) for i in idx]
    out.sort(key=lambda fp: -fp[1])  # refining can reorder close competitors
    return out


# --------------------------------------------------------------------------- methods


def lomb_scargle(
    time: ArrayLike,
    mag: ArrayLike,
    err: ArrayLike | None = None,
    bands: ArrayLike | None = None,
    *,
    min_period: float | None = None,
    max_period: float | None = None,
    oversample: float = DEFAULT_OVERSAMPLE,
    nterms: int = 1,
    n_peaks: int = 5,
    band_method: BandMethod = "auto",
    refine: bool = True,
) -> Periodogram:
    """Lomb-Scargle periodogram (astropy ``LombScargle``, floating mean,
    standard normalization) of magnitudes against time (days); see the module
    docstring for bands, grid and false-alarm probabilities."""
    s, plan, t_ref, n_peaks = _prepare(
        "lombscargle", time, mag, err, bands, n_peaks, min_period=min_period,
        max_period=max_period, oversample=oversample, nterms=nterms, band_method=band_method)
    t = s.time - t_ref
    freq = plan.grid.frequencies()
    notes = list(s.notes)
    model: Any
    if plan.band_method == "multiband":
        assert LombScargleMultiband is not None
        model = LombScargleMultiband(t, s.mag, s.bands, s.err, nterms_base=plan.nterms,
                                     nterms_band=0)
        power = np.asarray(model.power(freq, method="flexible"), dtype=float)

        def evaluate(f: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.asarray(model.power(f, method="flexible"), dtype=float)
        description = ("Lomb-Scargle power, astropy LombScargleMultiband (shared "
                       f"{plan.nterms}-term model + per-band offsets), standard normalization")
    else:
        y = _band_means_removed(s) if plan.band_method == "mean" else s.mag
        model = LombScargle(t, y, s.err, nterms=plan.nterms)
        power = np.asarray(model.power(freq, assume_regular_frequency=True), dtype=float)
        exact = "cython" if plan.nterms == 1 else "chi2"

        def evaluate(f: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.asarray(model.power(f, method=exact), dtype=float)
        how = ("per-band mean magnitudes subtracted, " if plan.band_method == "mean" else "")
        description = (f"Lomb-Scargle power, astropy LombScargle ({how}{plan.nterms} term"
                       f"{'s' if plan.nterms > 1 else ''}, floating mean), standard "
                       "normalization")
    idx = distinct_peaks(power, n_peaks, max(2, int(math.ceil(plan.oversample))))
    # the exact evaluations cost O(N) each: 5 points and the parabola's vertex
    # (a smooth Lomb-Scargle peak is a parabola over +-1 grid step)
    refined = _refined(freq, power, idx, evaluate, refine, points=5, stages=1)
    faps: list[float | None] = [None] * len(refined)
    if plan.band_method == "multiband":
        notes.append("no false-alarm probability: astropy has none for LombScargleMultiband")
    elif plan.nterms != 1:
        notes.append("no false-alarm probability: astropy has one for NTERMS=1 only")
    elif refined:
        try:
            values = model.false_alarm_probability(
                np.array([p for _, p in refined]), method="baluev",
                minimum_frequency=plan.grid.fmin, maximum_frequency=plan.grid.fmax)
            faps = [float(v) for v in np.atleast_1d(values)]
        except ImportError:
            notes.append("no false-alarm probability: scipy is not installed")
    peaks = tuple(Peak(rank=k + 1, frequency=f, period=1.0 / f, power=p, fap=faps[k])
                  for k, (f, p) in enumerate(refined))
    return Periodogram(method="lombscargle", frequency=freq, period=1.0 / freq, power=power,
                       power_description=description, peaks=peaks, plan=plan,
                       notes=tuple(notes))


def box_least_squares(
    time: ArrayLike,
    mag: ArrayLike,
    err: ArrayLike | None = None,
    bands: ArrayLike | None = None,
    *,
    min_period: float | None = None,
    max_period: float | None = None,
    oversample: float = DEFAULT_OVERSAMPLE,
    durations: Sequence[float] | None = None,
    n_peaks: int = 5,
    objective: Literal["likelihood", "snr"] = "likelihood",
    refine: bool = True,
) -> Periodogram:
    """Box least squares (astropy ``BoxLeastSquares``) for eclipses: boxes of
    the given durations (days; default :func:`default_durations`) where the star
    is fainter. Per-band mean magnitudes are subtracted first. Peaks carry
    depth (mag), its error, duration, epoch (mid-eclipse, input time scale)
    and the depth's SNR at the best duration."""
    if objective not in ("likelihood", "snr"):
        raise AnalysisError(f"objective={objective!r} is not likelihood or snr", "OBJECTIVE")
    s, plan, t_ref, n_peaks = _prepare(
        "bls", time, mag, err, bands, n_peaks, min_period=min_period, max_period=max_period,
        oversample=oversample, durations=durations)
    assert plan.durations is not None
    durs = plan.durations
    t = s.time - t_ref
    y = -_band_means_removed(s)  # eclipses: fainter = larger mag = a dip in -mag
    model = BoxLeastSquares(t, y, dy=s.err)
    freq = plan.grid.frequencies()
    res = model.power(1.0 / freq, durs, objective=objective)
    power = np.asarray(res.power, dtype=float)
    idx = distinct_peaks(power, n_peaks, max(2, int(math.ceil(plan.oversample))))
    def evaluate(f: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(model.power(1.0 / f, durs, objective=objective).power, dtype=float)

    found = []
    for f_best, _ in _refined(freq, power, idx, evaluate, refine):
        stats = model.power(np.array([1.0 / f_best]), durs, objective=objective)
        j = 0
        found.append(Peak(
            rank=0, frequency=f_best, period=1.0 / f_best, power=float(stats.power[j]),
            depth=float(stats.depth[j]), depth_error=float(stats.depth_err[j]),
            duration=float(stats.duration[j]), epoch=float(stats.transit_time[j]) + t_ref,
            snr=float(stats.depth_snr[j])))
    found.sort(key=lambda pk: -pk.power)
    peaks = [replace(pk, rank=k + 1) for k, pk in enumerate(found)]
    description = (f"BLS {'log-likelihood improvement' if objective == 'likelihood' else 'SNR'}"
                   f", astropy BoxLeastSquares, {durs.size} durations "
                   f"{durs.min():.4g}-{durs.max():.4g} d")
    if plan.band_method == "mean":
        description += ", per-band mean magnitudes subtracted"
    return Periodogram(method="bls", frequency=freq, period=1.0 / freq, power=power,
                       power_description=description, peaks=tuple(peaks), plan=plan,
                       notes=s.notes)


#: PDM evaluates at most this many phase values per numpy block
_PDM_BLOCK = 2_000_000


def pdm_theta(time: ArrayLike, mag: ArrayLike, frequency: ArrayLike,
              err: ArrayLike | None = None, n_bins: int = 10) -> NDArray[np.float64]:
    """Stellingwerf's (1978) PDM statistic theta at each frequency: the pooled
    within-phase-bin variance over the total variance (weights 1/err^2 when
    errors are given; one cover of ``n_bins`` equal bins). Vectorised over
    blocks of frequencies."""
    t = np.asarray(time, dtype=float)
    y = np.asarray(mag, dtype=float)
    f = np.asarray(frequency, dtype=float)
    w = np.ones_like(y) if err is None else 1.0 / np.asarray(err, dtype=float) ** 2
    w = w / w.mean()
    ybar = np.sum(w * y) / np.sum(w)
    total = np.sum(w * (y - ybar) ** 2)
    n = y.size
    wy = w * (y - ybar)
    wyy = np.sum(wy * (y - ybar))
    theta = np.empty(f.size)
    block = max(1, _PDM_BLOCK // max(n, 1))
    for start in range(0, f.size, block):
        fb = f[start:start + block]
        c = fb.size
        phase = np.outer(fb, t)
        phase -= np.floor(phase)
        idx = np.minimum((phase * n_bins).astype(np.intp), n_bins - 1)
        idx += (np.arange(c) * n_bins)[:, None]
        flat = idx.ravel()
        sw = np.bincount(flat, weights=np.broadcast_to(w, (c, n)).ravel(), minlength=c * n_bins)
        swy = np.bincount(flat, weights=np.broadcast_to(wy, (c, n)).ravel(),
                          minlength=c * n_bins)
        cnt = np.bincount(flat, minlength=c * n_bins).reshape(c, n_bins)
        sw = sw.reshape(c, n_bins)
        swy = swy.reshape(c, n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            between = np.where(sw > 0, swy**2 / sw, 0.0).sum(axis=1)
        within = wyy - between
        m = (cnt > 0).sum(axis=1)
        theta[start:start + c] = (within / np.maximum(n - m, 1)) / (total / (n - 1))
    return theta


def phase_dispersion(
    time: ArrayLike,
    mag: ArrayLike,
    err: ArrayLike | None = None,
    bands: ArrayLike | None = None,
    *,
    min_period: float | None = None,
    max_period: float | None = None,
    oversample: float = DEFAULT_OVERSAMPLE,
    n_bins: int = 10,
    n_peaks: int = 5,
    refine: bool = True,
) -> Periodogram:
    """Phase dispersion minimisation (:func:`pdm_theta`, per-band means
    subtracted); ``power`` is ``1 - theta`` so that peaks are maxima, each peak
    also carries ``theta``."""
    s, plan, t_ref, n_peaks = _prepare(
        "pdm", time, mag, err, bands, n_peaks, min_period=min_period, max_period=max_period,
        oversample=oversample, n_bins=n_bins)
    t = s.time - t_ref
    y = _band_means_removed(s)
    freq = plan.grid.frequencies()

    def evaluate(f: NDArray[np.float64]) -> NDArray[np.float64]:
        return 1.0 - pdm_theta(t, y, f, s.err, plan.n_bins)

    power = evaluate(freq)
    idx = distinct_peaks(power, n_peaks, max(2, int(math.ceil(plan.oversample))))
    refined = _refined(freq, power, idx, evaluate, refine)
    peaks = tuple(Peak(rank=k + 1, frequency=f, period=1.0 / f, power=p, theta=1.0 - p)
                  for k, (f, p) in enumerate(refined))
    return Periodogram(method="pdm", frequency=freq, period=1.0 / freq, power=power,
                       power_description=f"1 - PDM theta ({plan.n_bins} phase bins)",
                       peaks=peaks, plan=plan, notes=s.notes)


def compute_periodogram(
    method: Method,
    time: ArrayLike,
    mag: ArrayLike,
    err: ArrayLike | None = None,
    bands: ArrayLike | None = None,
    **params: Any,
) -> Periodogram:
    """Dispatches to :func:`lomb_scargle`, :func:`box_least_squares` or
    :func:`phase_dispersion` by METHOD, passing the keyword parameters on."""
    funcs: dict[str, Callable[..., Periodogram]] = {
        "lombscargle": lomb_scargle, "bls": box_least_squares, "pdm": phase_dispersion}
    if method not in funcs:
        raise AnalysisError(f"METHOD={method!r} is not one of {', '.join(METHODS)}", "METHOD")
    func = funcs[method]
    known = inspect.signature(func).parameters
    for name in params:
        if name not in known or known[name].kind is not inspect.Parameter.KEYWORD_ONLY:
            raise AnalysisError(f"METHOD={method} does not take the parameter {name}",
                                name.upper())
    return func(time, mag, err, bands, **params)
