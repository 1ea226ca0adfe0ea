"""Light-curve analysis (issue 11): periodograms, barycentric times, times of
minimum and O-C. Pure numpy/astropy: arrays in, dataclasses out; nothing here
knows about HTTP or the stores. Errors a client caused are AnalysisError
(a ValueError) whose ``parameter`` names the request parameter."""

from voservice.analysis.common import AnalysisError
from voservice.analysis.ephemeris import (
    OC,
    EphemerisFit,
    cycle_numbers,
    fit_ephemeris,
    fit_linear,
    fit_quadratic,
    o_minus_c,
    phase,
)
from voservice.analysis.minima import (
    Minimum,
    MinimumFit,
    classify,
    find_minima,
    kwee_van_woerden,
    polynomial_minimum,
)
from voservice.analysis.periodogram import (
    MAX_GRID,
    MAX_SECONDS,
    Peak,
    Periodogram,
    Plan,
    box_least_squares,
    compute_periodogram,
    estimate_seconds,
    frequency_grid,
    lomb_scargle,
    phase_dispersion,
    plan_periodogram,
)
from voservice.analysis.timescales import TimeConversion, convert_times, observatory

__all__ = [
    "MAX_GRID", "MAX_SECONDS", "OC", "AnalysisError", "EphemerisFit", "Minimum", "MinimumFit",
    "Peak", "Periodogram", "Plan", "TimeConversion", "box_least_squares", "classify",
    "convert_times", "cycle_numbers", "estimate_seconds", "find_minima", "fit_ephemeris",
    "fit_linear", "fit_quadratic", "frequency_grid", "kwee_van_woerden", "lomb_scargle",
    "o_minus_c", "observatory", "compute_periodogram", "phase", "phase_dispersion",
    "plan_periodogram", "polynomial_minimum",
]
