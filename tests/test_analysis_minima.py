"""Times of minimum (voservice.analysis.minima) on synthetic eclipses with a
known time of minimum."""

from __future__ import annotations

import numpy as np
import pytest

from voservice.analysis import AnalysisError, classify, find_minima, kwee_van_woerden
from voservice.analysis.minima import nights, polynomial_minimum

MJD0 = 60000.0
PERIOD = 2.8673
EPOCH = MJD0 + 1.2345


def algol(t: np.ndarray, period: float = PERIOD, epoch: float = EPOCH, d1: float = 0.9,
          d2: float = 0.12, width: float = 0.045) -> np.ndarray:
    """Magnitude excess of an Algol-type binary (primary at phase 0, secondary at 0.5)."""
    x = (t - epoch) / period
    p1 = x - np.round(x)
    p2 = x - 0.5 - np.round(x - 0.5)
    shape = lambda p: np.clip(1 - (np.abs(p) / width) ** 2, 0, None) ** 0.8  # noqa: E731
    return d1 * shape(p1) + d2 * shape(p2)


def night_around(rng: np.random.Generator, centre: float, before: float, after: float,
                 n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.sort(centre + rng.uniform(-before, after, n))
    err = rng.uniform(0.004, 0.02, n)
    mag = 10.0 + algol(t) + rng.normal(0, 1, n) * err
    return t, mag, err


def test_kwee_van_woerden_recovers_the_minimum_within_its_error() -> None:
    rng = np.random.default_rng(21)
    estimates, errors = [], []
    for _ in range(40):
        # an eclipse lasting 0.26 d observed over 0.24 d, a little off-centre
        t, mag, _ = night_around(rng, EPOCH + 0.01, 0.12, 0.12, 120)
        fit = kwee_van_woerden(t, mag)
        assert fit.method == "kvw" and fit.n_points == 120
        estimates.append(fit.time - EPOCH)
        errors.append(fit.error)
    estimates, errors = np.array(estimates), np.array(errors)
    # each within its stated error (3 sigma), and the errors are sane: positive,
    # well below a minute... and of the size of the real scatter of the estimates
    assert np.mean(np.abs(estimates) < 3 * errors) >= 0.9
    assert np.all((errors > 0) & (errors < 60 / 86400))
    ratio = estimates.std() / np.median(errors)
    assert 0.5 < ratio < 3.0
    assert abs(estimates.mean()) < 3 * estimates.std() / np.sqrt(estimates.size)


def test_polynomial_check_agrees_with_kvw() -> None:
    rng = np.random.default_rng(22)
    t, mag, err = night_around(rng, EPOCH, 0.06, 0.06, 120)  # the fainter half only
    kvw = kwee_van_woerden(t, mag)
    poly = polynomial_minimum(t, mag, err, near=kvw.time)
    assert abs(poly.time - EPOCH) < 3 * poly.error + 1e-6
    assert abs(poly.time - kvw.time) < 3 * np.hypot(poly.error, kvw.error)
    assert 0 < poly.error < 5e-3


def test_kvw_refuses_data_without_a_minimum() -> None:
    rng = np.random.default_rng(23)
    t = np.sort(rng.uniform(0, 0.2, 60))
    with pytest.raises(AnalysisError):
        kwee_van_woerden(t, 10 + 2.0 * t + rng.normal(0, 0.002, t.size))  # a monotonic branch
    with pytest.raises(AnalysisError):
        kwee_van_woerden(t[:5], t[:5])


def test_a_night_covering_a_minimum_gives_one() -> None:
    rng = np.random.default_rng(24)
    t, mag, err = night_around(rng, EPOCH, 0.2, 0.15, 150)
    found = find_minima(t, mag, err)
    assert len(found) == 1
    m = found[0]
    assert abs(m.time - EPOCH) < 3 * m.error
    assert m.method == "kvw" and m.kind is None and m.cycle is None
    assert m.check_time is not None and m.check_error is not None
    assert abs(m.check_time - EPOCH) < 4 * m.check_error + 3 * m.error
    assert m.night_start == t[0] and m.night_end == t[-1]
    assert 0.5 < m.depth <= 1.0


@pytest.mark.parametrize("what", ["outside eclipse", "descending branch", "ascending branch"])
def test_a_night_covering_no_minimum_gives_none(what: str) -> None:
    rng = np.random.default_rng(25)
    centre = {"outside eclipse": EPOCH + 0.9, "descending branch": EPOCH - 0.2,
              "ascending branch": EPOCH + 0.2}[what]
    t, mag, err = night_around(rng, centre, 0.15, 0.12, 150)
    # the synthetic night really is what it claims to be
    excess = algol(t)
    if what == "outside eclipse":
        assert excess.max() == 0
    else:
        assert excess.max() > 0.3 and excess.max() < 0.9
    assert find_minima(t, mag, err) == []
    assert find_minima(t, mag) == []  # the noise estimated from the data


def test_many_nights_bands_and_classification() -> None:
    rng = np.random.default_rng(26)
    # nights of 9 h on 40 days, two bands with their own zero points
    t = np.concatenate([n + 0.2 + np.sort(rng.uniform(0, 0.375, 120)) for n in range(40)])
    t = MJD0 + t
    bands = rng.choice(["B", "V"], t.size)
    err = rng.uniform(0.004, 0.015, t.size)
    mag = np.where(bands == "B", 10.5, 10.0) + algol(t) + rng.normal(0, 1, t.size) * err
    found = find_minima(t, mag, err, bands, period=PERIOD, epoch=EPOCH)
    assert found, "no minimum found"
    assert [m.time for m in found] == sorted(m.time for m in found)
    # the true minima the nights cover fully, per band
    true = np.concatenate([EPOCH + PERIOD * np.arange(-1, 16),
                           EPOCH + PERIOD * (np.arange(-1, 16) + 0.5)])
    for m in found:
        assert m.band in ("B", "V")
        k = int(np.argmin(np.abs(true - m.time)))
        assert abs(m.time - true[k]) < 4 * m.error
        expected_kind = "primary" if k < 17 else "secondary"
        assert m.kind == expected_kind
        assert m.cycle == pytest.approx((true[k] - EPOCH) / PERIOD, abs=1e-9)
    kinds = {m.kind for m in found}
    assert kinds == {"primary", "secondary"}
    # every minimum well inside a night (both branches over 0.15 d) is found, in both bands
    night_of = np.floor(t - 0.2)
    for tm in true:
        sel = night_of == np.floor(tm - 0.2)
        if sel.any() and t[sel].min() < tm - 0.14 and t[sel].max() > tm + 0.14:
            for band in ("B", "V"):
                assert any(abs(m.time - tm) < 0.01 and m.band == band for m in found), (tm, band)


def test_nights_split_at_gaps() -> None:
    t = np.array([0.0, 0.1, 0.2, 1.0, 1.1, 5.0])
    assert [(s.start, s.stop) for s in nights(t, 0.3)] == [(0, 3), (3, 5), (5, 6)]


def test_classify() -> None:
    times = EPOCH + PERIOD * np.array([0.0, 3.02, 7.5, 10.49, 12.25])
    kinds, cycles = classify(times, PERIOD, EPOCH)
    assert kinds == ["primary", "primary", "secondary", "secondary", None]
    np.testing.assert_allclose(cycles[:4], [0.0, 3.0, 7.5, 10.5])
    kinds, _ = classify(EPOCH + PERIOD * np.array([0.35]), PERIOD, EPOCH, secondary_phase=0.35)
    assert kinds == ["secondary"]
    with pytest.raises(AnalysisError):
        classify(times, -1.0, EPOCH)
