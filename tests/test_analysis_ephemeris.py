"""O-C and ephemeris fits (voservice.analysis.ephemeris) on synthetic times of
minimum with a known period change, and the PNG plots (voservice.analysis.plots)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from voservice.analysis import (
    AnalysisError,
    cycle_numbers,
    fit_linear,
    fit_quadratic,
    lomb_scargle,
    o_minus_c,
    phase,
)
from voservice.analysis.plots import oc_png, periodogram_png

EPOCH = 2452500.1234
PERIOD = 2.867315
#: dP/dE = 2Q: with Q = 3e-9 d the period grows by 6e-9 d per cycle (~6.6 s per century)
QUAD = 3e-9


def minima(rng: np.random.Generator, quad: float = QUAD) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Times of minimum over ~8000 cycles (60 years), a few secondaries, errors 1-6 min."""
    cycles = np.sort(rng.choice(np.arange(0, 8000), 120, replace=False)).astype(float)
    cycles[::10] += 0.5  # some secondaries
    err = rng.uniform(60, 360, cycles.size) / 86400
    times = EPOCH + PERIOD * cycles + quad * cycles**2 + rng.normal(0, 1, cycles.size) * err
    return cycles, times, err


def test_quadratic_fit_recovers_the_period_change() -> None:
    rng = np.random.default_rng(31)
    cycles, times, err = minima(rng)
    # O-C against the linear ephemeris finds the cycles and shows the parabola
    oc = o_minus_c(times, PERIOD, EPOCH, errors=err)
    np.testing.assert_array_equal(oc.cycle, cycles)
    np.testing.assert_allclose(oc.oc, times - EPOCH - PERIOD * cycles, rtol=0, atol=1e-8)
    quad = fit_quadratic(oc.cycle, oc.observed, oc.error)
    assert abs(quad.quadratic - QUAD) < 4 * quad.quadratic_error
    assert quad.quadratic_error < QUAD / 10  # a significant detection
    assert abs(quad.period - PERIOD) < 4 * quad.period_error
    assert abs(quad.epoch - EPOCH) < 4 * quad.epoch_error
    assert quad.dof == cycles.size - 3
    assert 0.6 < quad.chi2 / quad.dof < 1.5
    assert quad.period_change == pytest.approx(2 * QUAD / PERIOD, rel=0.3)
    # the linear ephemeris cannot follow it
    lin = fit_linear(oc.cycle, oc.observed, oc.error)
    assert lin.quadratic == 0.0 and lin.quadratic_error == 0.0
    assert lin.chi2 / lin.dof > 10 * quad.chi2 / quad.dof
    np.testing.assert_allclose(quad.predict(cycles) + quad.residuals, times, atol=1e-9)


def test_linear_data_give_no_period_change() -> None:
    rng = np.random.default_rng(32)
    cycles, times, err = minima(rng, quad=0.0)
    quad = fit_quadratic(cycles, times, err)
    assert abs(quad.quadratic) < 4 * quad.quadratic_error
    lin = fit_linear(cycles, times, err)
    assert abs(lin.period - PERIOD) < 4 * lin.period_error
    assert lin.period_error < 1e-7
    # the errors mean what they say: over repeated data sets the fitted
    # period scatters by about the stated error
    periods, stated = [], []
    for seed in range(30):
        c, t, e = minima(np.random.default_rng(100 + seed), quad=0.0)
        f = fit_linear(c, t, e)
        periods.append(f.period)
        stated.append(f.period_error)
    assert 0.5 < np.std(np.array(periods) - PERIOD) / np.median(stated) < 2.0


def test_unweighted_fit_and_refusals() -> None:
    rng = np.random.default_rng(33)
    cycles, times, _ = minima(rng, quad=0.0)
    lin = fit_linear(cycles, times)
    assert abs(lin.period - PERIOD) < 4 * lin.period_error
    with pytest.raises(AnalysisError):
        fit_quadratic(cycles[:3], times[:3])
    with pytest.raises(AnalysisError):
        fit_linear(cycles, times[:-1])
    with pytest.raises(AnalysisError) as info:
        o_minus_c(times, -2.0, EPOCH)
    assert info.value.parameter == "PERIOD"


def test_cycle_numbers_and_phase() -> None:
    t = EPOCH + PERIOD * np.array([0.0, 1.02, 2.49, -3.0])
    np.testing.assert_array_equal(cycle_numbers(t, PERIOD, EPOCH), [0.0, 1.0, 2.5, -3.0])
    np.testing.assert_array_equal(cycle_numbers(t, PERIOD, EPOCH, half=False),
                                  [0.0, 1.0, 2.0, -3.0])
    np.testing.assert_allclose(phase(t, PERIOD, EPOCH), [0.0, 0.02, 0.49, 0.0], atol=1e-9)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_periodogram_png() -> None:
    rng = np.random.default_rng(34)
    t = 60000 + np.sort(rng.uniform(0, 30, 400))
    mag = 0.2 * np.sin(2 * np.pi * t / 1.3) + rng.normal(0, 0.02, t.size)
    res = lomb_scargle(t, mag, min_period=0.3, max_period=10)
    data = periodogram_png(res, "test star")
    assert png_size(data) == (640, 360)
    assert data.rstrip().endswith(b"IEND\xaeB`\x82")


def test_oc_png() -> None:
    rng = np.random.default_rng(35)
    cycles, times, err = minima(rng)
    oc = o_minus_c(times, PERIOD, EPOCH, errors=err)
    with_fit = oc_png(oc, fit_quadratic(oc.cycle, oc.observed, oc.error), "O-C")
    bare = oc_png(oc)
    assert png_size(with_fit) == png_size(bare) == (640, 360)
    assert with_fit != bare
