"""Periodograms (voservice.analysis.periodogram) on synthetic curves with
known periods: the best peak must be within 0.1 % of the truth."""

from __future__ import annotations

import numpy as np
import pytest

from voservice.analysis import AnalysisError, compute_periodogram
from voservice.analysis import periodogram as pg

MJD0 = 60000.0


def observing_nights(rng: np.random.Generator, n_nights: int, span: int, per_night: int,
                     hours: float = 7.0) -> np.ndarray:
    """Times of ``per_night`` points in each of ``n_nights`` nights drawn from
    ``span`` days (so there are gaps of several nights), evening to morning."""
    nights = np.sort(rng.choice(span, n_nights, replace=False))
    t = [n + 0.25 + np.sort(rng.uniform(0, hours / 24, per_night)) for n in nights]
    return MJD0 + np.concatenate(t)


def algol(t: np.ndarray, period: float, epoch: float, d1: float = 0.9, d2: float = 0.12,
          width: float = 0.045) -> np.ndarray:
    """Magnitude excess of an Algol-type binary: a deep primary eclipse at
    phase 0 and a shallow secondary at 0.5, each ``width`` in phase."""
    x = (t - epoch) / period
    p1 = x - np.round(x)
    p2 = x - 0.5 - np.round(x - 0.5)
    shape = lambda p: np.clip(1 - (np.abs(p) / width) ** 2, 0, None) ** 0.8  # noqa: E731
    return d1 * shape(p1) + d2 * shape(p2)


def heteroscedastic(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.004, 0.04, n)


def gaps_of_several_nights(t: np.ndarray) -> bool:
    nightly = np.unique(np.floor(t))
    return bool(np.max(np.diff(nightly)) >= 3)


def test_sinusoid_lomb_scargle_best_peak_within_0p1_percent() -> None:
    rng = np.random.default_rng(11)
    true_period = 0.7312
    t = observing_nights(rng, 30, 100, 50)
    assert gaps_of_several_nights(t)
    err = heteroscedastic(rng, t.size)
    mag = 12.0 + 0.15 * np.sin(2 * np.pi * t / true_period + 0.3) + rng.normal(0, 1, t.size) * err
    res = pg.lomb_scargle(t, mag, err, min_period=0.2, max_period=20)
    best = res.best
    assert best is not None
    assert abs(best.period - true_period) / true_period < 1e-3
    assert best.fap is not None and best.fap < 1e-10
    assert res.band_method == "single"
    # arrays are consistent and the plan sized them
    assert res.frequency.size == res.power.size == res.plan.n_frequencies
    np.testing.assert_allclose(res.period, 1 / res.frequency)
    # the peaks are distinct: further apart than a peak width (1 / baseline)
    freqs = np.array([p.frequency for p in res.peaks])
    gaps = np.abs(freqs[:, None] - freqs[None, :])[np.triu_indices(freqs.size, 1)]
    assert gaps.min() > 0.5 / res.plan.baseline
    assert [p.rank for p in res.peaks] == list(range(1, len(res.peaks) + 1))
    powers = [p.power for p in res.peaks]
    assert powers == sorted(powers, reverse=True)


def test_noise_has_no_significant_peak() -> None:
    rng = np.random.default_rng(12)
    t = observing_nights(rng, 20, 60, 40)
    err = heteroscedastic(rng, t.size)
    mag = 12.0 + rng.normal(0, 1, t.size) * err
    res = pg.lomb_scargle(t, mag, err, min_period=0.2, max_period=20)
    assert res.best is not None and res.best.fap is not None
    assert res.best.fap > 1e-3


@pytest.mark.parametrize("band_method", ["auto", "multiband", "mean"])
def test_bands_combined_with_offsets(band_method: str) -> None:
    rng = np.random.default_rng(13)
    true_period = 3.217
    t = observing_nights(rng, 25, 90, 40)
    bands = rng.choice(["B", "V", "R"], t.size)
    offsets = {"B": 0.6, "V": 0.0, "R": -0.4}
    err = heteroscedastic(rng, t.size)
    mag = (11.0 + np.array([offsets[b] for b in bands])
           + 0.2 * np.sin(2 * np.pi * t / true_period) + rng.normal(0, 1, t.size) * err)
    res = pg.lomb_scargle(t, mag, err, bands, min_period=0.5, max_period=20,
                          band_method=band_method)
    expected = "mean" if band_method == "mean" else "multiband"
    assert res.band_method == expected
    assert res.best is not None
    assert abs(res.best.period - true_period) / true_period < 1e-3
    if expected == "multiband":
        assert res.best.fap is None and any("false-alarm" in n for n in res.notes)
    else:
        assert res.best.fap is not None and res.best.fap < 1e-10


def test_nterms_two_on_a_sawtooth() -> None:
    rng = np.random.default_rng(14)
    true_period = 5.366
    t = observing_nights(rng, 35, 120, 20)
    err = heteroscedastic(rng, t.size)
    ph = ((t - MJD0) / true_period) % 1
    mag = 4.0 + 0.8 * np.where(ph < 0.3, 1 - ph / 0.3, (ph - 0.3) / 0.7) + rng.normal(
        0, 1, t.size) * err
    res = pg.lomb_scargle(t, mag, err, min_period=1.0, max_period=30, nterms=2)
    assert res.best is not None
    assert abs(res.best.period - true_period) / true_period < 1e-3
    assert res.best.fap is None  # astropy has none for NTERMS > 1


def test_bls_on_an_algol_eclipse() -> None:
    rng = np.random.default_rng(15)
    true_period, epoch = 2.8673, MJD0 + 1.2345
    t = observing_nights(rng, 40, 90, 60, hours=8)
    assert gaps_of_several_nights(t)
    err = heteroscedastic(rng, t.size)
    mag = 10.0 + algol(t, true_period, epoch) + rng.normal(0, 1, t.size) * err
    res = pg.box_least_squares(t, mag, err, min_period=0.5, max_period=10)
    best = res.best
    assert best is not None
    assert abs(best.period - true_period) / true_period < 1e-3
    # the box sits on the primary eclipse, which is as deep as a box can be
    dphase = (best.epoch - epoch) / true_period
    assert abs(dphase - round(dphase)) < 0.02
    assert 0.3 < best.depth < 0.9
    assert best.depth_error is not None and 0 < best.depth_error < 0.05
    # astropy reports the duration rounded to its phase bins (a tenth of the shortest)
    assert np.min(np.abs(res.plan.durations - best.duration)) <= res.plan.durations.min() / 10
    assert best.snr is not None and best.snr > 50


def test_pdm_on_a_sinusoid() -> None:
    rng = np.random.default_rng(16)
    true_period = 1.4142
    t = observing_nights(rng, 25, 80, 40)
    err = heteroscedastic(rng, t.size)
    mag = 9.0 + 0.3 * np.sin(2 * np.pi * t / true_period) + rng.normal(0, 1, t.size) * err
    res = pg.phase_dispersion(t, mag, err, min_period=0.3, max_period=10)
    assert res.best is not None
    assert abs(res.best.period - true_period) / true_period < 1e-3
    assert res.best.theta is not None and res.best.theta < 0.2
    # away from the period the phases are scrambled: theta near 1
    assert np.median(1 - res.power) > 0.8


def test_pdm_theta_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(17)
    t = np.sort(rng.uniform(0, 30, 300))
    y = np.sin(t) + rng.normal(0, 0.1, t.size)
    f = np.array([0.1, 1 / (2 * np.pi), 0.37])
    theta = pg.pdm_theta(t, y, f, n_bins=8)
    for k, fk in enumerate(f):
        ph = (t * fk) % 1
        b = np.minimum((ph * 8).astype(int), 7)
        within = sum(((y[b == j] - y[b == j].mean()) ** 2).sum() for j in range(8) if
                     (b == j).any())
        used = len({int(j) for j in b})
        expect = (within / (t.size - used)) / y.var(ddof=1)
        assert theta[k] == pytest.approx(expect, rel=1e-9)


def test_grid_above_the_limit_is_refused_before_computing() -> None:
    t = MJD0 + np.linspace(0, 3000, 100_000)
    with pytest.raises(AnalysisError) as info:
        pg.plan_periodogram("lombscargle", t, min_period=0.01, max_period=100, oversample=10)
    msg = str(info.value)
    assert info.value.parameter == "MINPERIOD"
    assert "MINPERIOD=0.01" in msg and "OVERSAMPLE=10" in msg
    assert f"{pg.MAX_GRID:,}" in msg
    needed = int(msg.split(" needs ")[1].split(" frequencies")[0].replace(",", ""))
    assert needed == pytest.approx((1 / 0.01 - 1 / 100) * 10 * 3000, rel=1e-3)
    # the same through the computing call (never starts the computation)
    mag = np.zeros(t.size)
    with pytest.raises(AnalysisError):
        pg.lomb_scargle(t, mag, min_period=0.01, max_period=100, oversample=10)
    # a grid at the limit's edge is accepted
    spec = pg.frequency_grid(3000, 0.1, 100, 3)
    assert spec.n <= pg.MAX_GRID


def test_cpu_estimate_above_the_limit_is_refused() -> None:
    t = MJD0 + np.linspace(0, 200, 400_000)
    with pytest.raises(AnalysisError) as info:
        pg.plan_periodogram("bls", t, min_period=0.3, max_period=50)
    assert "estimated" in str(info.value) and f"{pg.MAX_SECONDS:g} s" in str(info.value)
    small = pg.plan_periodogram("bls", t[::100], min_period=0.5, max_period=5)
    assert 0 < small.seconds <= pg.MAX_SECONDS


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"nterms": 0}, "NTERMS"),
    ({"oversample": 0.5}, "OVERSAMPLE"),
    ({"min_period": 2.0, "max_period": 1.0}, "MAXPERIOD"),
    ({"min_period": -1.0}, "MINPERIOD"),
    ({"min_period": 100.0}, "MINPERIOD"),
])
def test_bad_parameters_name_the_parameter(kwargs: dict, parameter: str) -> None:
    t = MJD0 + np.linspace(0, 30, 200)
    with pytest.raises(AnalysisError) as info:
        pg.plan_periodogram("lombscargle", t, **kwargs)
    assert info.value.parameter == parameter
    assert parameter in str(info.value)


def test_bls_duration_must_be_shorter_than_min_period() -> None:
    t = MJD0 + np.linspace(0, 30, 200)
    with pytest.raises(AnalysisError) as info:
        pg.plan_periodogram("bls", t, min_period=0.5, durations=[0.1, 0.6])
    assert info.value.parameter == "DURATION"


def test_dispatcher_and_unknown_parameter() -> None:
    rng = np.random.default_rng(18)
    t = observing_nights(rng, 10, 30, 30)
    mag = np.sin(2 * np.pi * t / 1.7) + rng.normal(0, 0.05, t.size)
    res = compute_periodogram("lombscargle", t, mag, min_period=0.5, max_period=10)
    assert abs(res.best.period - 1.7) / 1.7 < 1e-3
    with pytest.raises(AnalysisError) as info:
        compute_periodogram("bls", t, mag, nterms=2)
    assert info.value.parameter == "NTERMS"
    with pytest.raises(AnalysisError) as info:
        compute_periodogram("fourier", t, mag)
    assert info.value.parameter == "METHOD"


def test_bad_rows_are_dropped_and_said() -> None:
    rng = np.random.default_rng(19)
    t = observing_nights(rng, 15, 40, 30)
    err = heteroscedastic(rng, t.size)
    mag = np.sin(2 * np.pi * t / 2.3) * 0.2 + rng.normal(0, 1, t.size) * err
    mag[:5] = np.nan
    err[5:8] = 0.0
    res = pg.lomb_scargle(t, mag, err, min_period=0.5, max_period=10)
    assert res.plan.n_points == t.size - 8
    assert any("5 points" in n for n in res.notes) and any("3 points" in n for n in res.notes)
    assert abs(res.best.period - 2.3) / 2.3 < 1e-3


def test_distinct_peaks_merges_one_hill() -> None:
    x = np.arange(200, dtype=float)
    power = (np.exp(-0.5 * ((x - 50) / 8) ** 2) + 0.02 * np.cos(x * 1.3)  # one wiggly hill
             + 0.6 * np.exp(-0.5 * ((x - 150) / 3) ** 2))  # a second, separate hill
    idx = pg.distinct_peaks(power, 5, separation=2)
    assert abs(idx[0] - 50) <= 2
    assert abs(idx[1] - 150) <= 2
    # the wiggles on the first hill's upper half are not peaks of their own
    assert not any(abs(int(i) - 50) < 10 for i in idx[1:])
    assert len(idx) == len(set(idx.tolist()))
