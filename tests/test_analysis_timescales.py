"""Barycentric / heliocentric times (voservice.analysis.timescales) against
astropy's Time.light_travel_time called directly."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

from voservice.analysis import AnalysisError, convert_times, observatory
from voservice.analysis.timescales import GEOCENTRE_ERROR_S

#: Stara Lesna (UPJS / AISAS), roughly
SITE = EarthLocation.from_geodetic(20.29 * u.deg, 49.15 * u.deg, 810 * u.m)
#: a star on the ecliptic (the March equinox point) and one at the north ecliptic pole
ECLIPTIC = (0.0, 0.0)
POLE = (270.0, 66.560708)
#: a year of observing times, UTC, as observed
MJD = 60000.3 + np.linspace(0, 365, 73)


def astropy_bjd(mjd: np.ndarray, ra: float, dec: float) -> Time:
    t = Time(mjd, format="mjd", scale="utc", location=SITE)
    return t.tdb + t.light_travel_time(SkyCoord(ra * u.deg, dec * u.deg), "barycentric")


def astropy_hjd(mjd: np.ndarray, ra: float, dec: float) -> Time:
    t = Time(mjd, format="mjd", scale="utc", location=SITE)
    return t.utc + t.light_travel_time(SkyCoord(ra * u.deg, dec * u.deg), "heliocentric")


def seconds(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(a) - np.asarray(b)) * 86400.0


@pytest.mark.parametrize("star", [ECLIPTIC, POLE], ids=["ecliptic", "pole"])
def test_bjd_tdb_agrees_with_astropy(star: tuple[float, float]) -> None:
    ra, dec = star
    res = convert_times(MJD, ra=ra, dec=dec, location=SITE, to="BJD_TDB")
    assert seconds(res.mjd, astropy_bjd(MJD, ra, dec).mjd).max() < 1e-3
    assert (res.timesys, res.timescale, res.refposition) == ("BJD_TDB", "TDB", "BARYCENTER")
    np.testing.assert_allclose(res.jd - res.mjd, 2400000.5)
    # the physics: the correction swings by +-8.3 light minutes on the ecliptic
    # over a year, and stays small at the ecliptic pole
    ltt = (res.mjd - Time(MJD, format="mjd", scale="utc").tdb.mjd) * 86400.0
    if star == ECLIPTIC:
        assert 900 < np.ptp(ltt) < 1010
    else:
        assert np.abs(ltt).max() < 5


@pytest.mark.parametrize("star", [ECLIPTIC, POLE], ids=["ecliptic", "pole"])
def test_hjd_utc_agrees_with_astropy(star: tuple[float, float]) -> None:
    ra, dec = star
    res = convert_times(MJD, ra=ra, dec=dec, location=SITE, to="HJD_UTC")
    assert seconds(res.mjd, astropy_hjd(MJD, ra, dec).mjd).max() < 1e-3
    assert (res.timescale, res.refposition) == ("UTC", "HELIOCENTER")


@pytest.mark.parametrize("star", [ECLIPTIC, POLE], ids=["ecliptic", "pole"])
def test_heliocentric_input_is_not_double_corrected(star: tuple[float, float]) -> None:
    ra, dec = star
    hjd = astropy_hjd(MJD, ra, dec).mjd
    bjd = astropy_bjd(MJD, ra, dec).mjd
    res = convert_times(hjd, ra=ra, dec=dec, location=SITE, scale="utc",
                        reference="heliocenter", to="BJD_TDB")
    assert seconds(res.mjd, bjd).max() < 1e-3
    assert any("brought back" in n for n in res.notes)
    # and back to the times as observed
    obs = convert_times(hjd, ra=ra, dec=dec, location=SITE, reference="heliocenter",
                        to="MJD_UTC")
    assert seconds(obs.mjd, MJD).max() < 1e-3
    if star == ECLIPTIC:
        # treating the HJD as observed times would add the correction twice:
        # that error is what the test above guards against
        naive = convert_times(hjd, ra=ra, dec=dec, location=SITE, to="BJD_TDB")
        assert seconds(naive.mjd, bjd).max() > 300


def test_barycentric_input() -> None:
    ra, dec = ECLIPTIC
    bjd = astropy_bjd(MJD, ra, dec)
    same = convert_times(bjd.mjd, ra=ra, dec=dec, scale="tdb", reference="barycenter",
                         to="BJD_TDB")
    assert seconds(same.mjd, bjd.mjd).max() < 1e-6  # only the scale could change: none
    assert same.max_error_s == 0.0
    hjd = convert_times(bjd.mjd, ra=ra, dec=dec, location=SITE, scale="tdb",
                        reference="barycenter", to="HJD_UTC")
    assert seconds(hjd.mjd, astropy_hjd(MJD, ra, dec).mjd).max() < 1e-3


def test_missing_location_uses_the_geocentre_within_the_stated_error() -> None:
    ra, dec = ECLIPTIC
    res = convert_times(MJD, ra=ra, dec=dec, to="BJD_TDB")
    exact = astropy_bjd(MJD, ra, dec).mjd
    diff = seconds(res.mjd, exact)
    assert res.max_error_s == pytest.approx(GEOCENTRE_ERROR_S)
    assert diff.max() <= res.max_error_s
    assert diff.max() > 1e-3  # the observatory's place does matter at this level
    assert any("geocentre" in n for n in res.notes)
    with pytest.raises(AnalysisError) as info:
        convert_times(MJD, ra=ra, dec=dec, to="BJD_TDB", require_location=True)
    assert info.value.parameter == "location"
    # MJD_UTC of observed times needs no location at all
    plain = convert_times(MJD, ra=ra, dec=dec, to="MJD_UTC")
    assert seconds(plain.mjd, MJD).max() < 1e-6 and plain.max_error_s == 0.0


def test_location_tuple_and_bad_values() -> None:
    ra, dec = POLE
    res = convert_times(MJD[:5], ra=ra, dec=dec, location=(20.29, 49.15, 810.0))
    assert seconds(res.mjd, astropy_bjd(MJD[:5], ra, dec).mjd).max() < 1e-3
    with pytest.raises(AnalysisError) as info:
        observatory(20.0, 95.0, 0.0)
    assert info.value.parameter == "location" and "latitude" in str(info.value)
    with pytest.raises(AnalysisError) as info:
        convert_times(MJD, ra=ra, dec=dec, to="JD_TAI")
    assert info.value.parameter == "TIMESYS"
    with pytest.raises(AnalysisError):
        convert_times(MJD, ra=ra, dec=dec, scale="gps")
    with pytest.raises(AnalysisError) as info:
        convert_times(MJD, ra=ra, dec=123.0, location=SITE)
    assert info.value.parameter == "POS"


def test_long_curves_interpolate_within_a_tenth_of_a_millisecond() -> None:
    rng = np.random.default_rng(41)
    # 12 nights of 300 points
    mjd = np.concatenate([60000.8 + n * 17.3 + np.sort(rng.uniform(0, 0.35, 300))
                          for n in range(12)])
    for ra, dec in (ECLIPTIC, POLE):
        res = convert_times(mjd, ra=ra, dec=dec, location=SITE, to="BJD_TDB")
        assert seconds(res.mjd, astropy_bjd(mjd, ra, dec).mjd).max() < 1e-4
        hjd = astropy_hjd(mjd, ra, dec).mjd
        back = convert_times(hjd, ra=ra, dec=dec, location=SITE, reference="heliocenter",
                             to="MJD_UTC")
        assert seconds(back.mjd, mjd).max() < 1e-4
