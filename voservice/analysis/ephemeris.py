"""O-C against an ephemeris and linear / quadratic ephemeris fits.

An ephemeris predicts minima at ``C(E) = epoch + period * E`` (linear) or
``epoch + period * E + quadratic * E**2`` (quadratic: the period changes by
``dP/dE = 2 * quadratic`` per cycle). Cycle numbers E are half-integers for
secondary minima. Fits are weighted least squares (numpy.polyfit with
weights 1/error); the covariance is the formal one, scaled by the reduced
chi-square when that exceeds 1 (so scatter beyond the stated errors widens
the errors, never narrows them); without errors it is scaled by the
residual scatter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from voservice.analysis.common import AnalysisError

SECONDS_PER_YEAR = 365.25 * 86400.0


@dataclass(frozen=True)
class OC:
    """O-C of times of minimum (days) against an ephemeris."""

    cycle: NDArray[np.float64]
    observed: NDArray[np.float64]
    calculated: NDArray[np.float64]
    error: NDArray[np.float64] | None
    period: float
    epoch: float
    quadratic: float = 0.0

    @property
    def oc(self) -> NDArray[np.float64]:
        return self.observed - self.calculated

    def calculate(self, cycle: ArrayLike) -> NDArray[np.float64]:
        """The ephemeris' times at cycle numbers."""
        e = np.asarray(cycle, dtype=float)
        return self.epoch + self.period * e + self.quadratic * e**2


@dataclass(frozen=True)
class EphemerisFit:
    """A fitted ephemeris: ``epoch`` (time of cycle 0), ``period`` (days),
    ``quadratic`` (days; 0 for a linear fit) with their errors and covariance
    (in that order), chi-square, degrees of freedom and the residual O-C."""

    degree: int
    epoch: float
    period: float
    quadratic: float
    epoch_error: float
    period_error: float
    quadratic_error: float
    covariance: NDArray[np.float64]
    chi2: float
    dof: int
    cycle: NDArray[np.float64]
    residuals: NDArray[np.float64]

    @property
    def period_change(self) -> float:
        """dP/dt, days per day (dimensionless): 2 * quadratic / period."""
        return 2.0 * self.quadratic / self.period

    @property
    def period_change_error(self) -> float:
        return 2.0 * self.quadratic_error / self.period

    @property
    def period_change_s_per_year(self) -> float:
        """dP/dt in seconds per year."""
        return self.period_change * SECONDS_PER_YEAR

    def predict(self, cycle: ArrayLike) -> NDArray[np.float64]:
        """Calculated times of minimum for cycle numbers."""
        e = np.asarray(cycle, dtype=float)
        return self.epoch + self.period * e + self.quadratic * e**2


def _check_ephemeris(period: float, epoch: float) -> tuple[float, float]:
    try:
        p = float(period)
    except (TypeError, ValueError):
        p = math.nan
    if not (math.isfinite(p) and p > 0):
        raise AnalysisError(f"PERIOD={period!r} must be a positive number of days", "PERIOD")
    try:
        t0 = float(epoch)
    except (TypeError, ValueError):
        t0 = math.nan
    if not math.isfinite(t0):
        raise AnalysisError(f"EPOCH={epoch!r} must be a time", "EPOCH")
    return p, t0


def cycle_numbers(times: ArrayLike, period: float, epoch: float, *,
                  half: bool = True) -> NDArray[np.float64]:
    """The nearest cycle number of each time: integers, or with ``half`` also
    half-integers (secondary minima at phase 0.5)."""
    period, epoch = _check_ephemeris(period, epoch)
    x = (np.asarray(times, dtype=float) - epoch) / period
    return np.round(2 * x) / 2 if half else np.round(x)


def phase(times: ArrayLike, period: float, epoch: float = 0.0) -> NDArray[np.float64]:
    """Phase in [0, 1) of each time for folding a curve."""
    period, epoch = _check_ephemeris(period, epoch)
    x = (np.asarray(times, dtype=float) - epoch) / period
    return x - np.floor(x)


def o_minus_c(times: ArrayLike, period: float, epoch: float, *,
              errors: ArrayLike | None = None, cycles: ArrayLike | None = None,
              quadratic: float = 0.0, half: bool = True) -> OC:
    """O-C of times of minimum against ``epoch + period * E (+ quadratic E^2)``;
    the cycle numbers E are the nearest (half-)integers unless given."""
    period, epoch = _check_ephemeris(period, epoch)
    t = np.asarray(times, dtype=float).ravel()
    e = (cycle_numbers(t, period, epoch, half=half) if cycles is None
         else np.asarray(cycles, dtype=float).ravel())
    if e.size != t.size:
        raise AnalysisError(f"{t.size} times but {e.size} cycle numbers", "cycles")
    err = None if errors is None else np.asarray(errors, dtype=float).ravel()
    if err is not None and err.size != t.size:
        raise AnalysisError(f"{t.size} times but {err.size} errors", "errors")
    calc = epoch + period * e + quadratic * e**2
    return OC(cycle=e, observed=t, calculated=calc, error=err, period=period, epoch=epoch,
              quadratic=float(quadratic))


def fit_ephemeris(cycle: ArrayLike, times: ArrayLike, errors: ArrayLike | None = None,
                  *, degree: int = 1) -> EphemerisFit:
    """Weighted least-squares ephemeris of ``degree`` 1 (linear) or 2
    (quadratic) through times of minimum at cycle numbers."""
    if degree not in (1, 2):
        raise AnalysisError(f"degree={degree!r} must be 1 (linear) or 2 (quadratic)",
                            "degree")
    e = np.asarray(cycle, dtype=float).ravel()
    t = np.asarray(times, dtype=float).ravel()
    if e.size != t.size:
        raise AnalysisError(f"{e.size} cycle numbers but {t.size} times", "cycles")
    if np.unique(e).size < degree + 1 or t.size < degree + 2:
        raise AnalysisError(f"a degree-{degree} ephemeris needs at least {degree + 2} "
                            f"minima at {degree + 1} different cycles", "cycles")
    w = None
    if errors is not None:
        err = np.asarray(errors, dtype=float).ravel()
        if err.size != t.size or not np.all(np.isfinite(err) & (err > 0)):
            raise AnalysisError("errors must be positive, one per time", "errors")
        w = 1.0 / err
    t_ref = float(t[np.argmin(np.abs(e))])
    y = t - t_ref
    coef, cov = np.polyfit(e, y, degree, w=w, cov="unscaled")
    resid = y - np.polyval(coef, e)
    dof = t.size - degree - 1
    chi2 = float(np.sum((resid * (1.0 if w is None else w)) ** 2))
    red = chi2 / dof if dof > 0 else 1.0
    cov = cov * (red if w is None else max(red, 1.0))
    # polyfit: highest power first -> (quadratic,) period, epoch
    coef = coef[::-1]
    cov = cov[::-1, ::-1]
    if degree == 1:
        cov3 = np.zeros((3, 3))
        cov3[:2, :2] = cov
        coef = np.append(coef, 0.0)
    else:
        cov3 = cov
    sig = np.sqrt(np.maximum(np.diag(cov3), 0.0))
    return EphemerisFit(
        degree=degree, epoch=float(coef[0] + t_ref), period=float(coef[1]),
        quadratic=float(coef[2]), epoch_error=float(sig[0]), period_error=float(sig[1]),
        quadratic_error=float(sig[2]), covariance=cov3, chi2=chi2, dof=dof, cycle=e,
        residuals=resid)


def fit_linear(cycle: ArrayLike, times: ArrayLike,
               errors: ArrayLike | None = None) -> EphemerisFit:
    """Linear ephemeris ``epoch + period * E``."""
    return fit_ephemeris(cycle, times, errors, degree=1)


def fit_quadratic(cycle: ArrayLike, times: ArrayLike,
                  errors: ArrayLike | None = None) -> EphemerisFit:
    """Quadratic ephemeris ``epoch + period * E + quadratic * E**2``."""
    return fit_ephemeris(cycle, times, errors, degree=2)
