"""The portal's search box: coordinates, radii and time ranges as visitors type them."""

from __future__ import annotations

import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from voservice.portal.search import (
    SearchError,
    mjd_to_iso,
    parse_position,
    parse_radius,
    parse_time_range,
    to_mjd,
)


@pytest.mark.parametrize("text", [
    "282.519975 +33.362667", "282.519975, 33.362667", "282.519975,+33.362667",
    "18 50 04.79 +33 21 45.6", "18:50:04.79 +33:21:45.6", "18h50m04.79s +33d21m45.6s",
    "18 50 04.79, +33 21 45.6",
])
def test_positions_decimal_and_sexagesimal_agree_with_astropy(text: str) -> None:
    ra, dec = parse_position(text)
    truth = SkyCoord("18h50m04.79s +33d21m45.6s", frame="icrs")
    assert abs(ra - truth.ra.deg) < 2e-5 and abs(dec - truth.dec.deg) < 2e-5


def test_southern_sexagesimal_declination() -> None:
    ra, dec = parse_position("09 45 14.81 -62 30 28.5")
    truth = SkyCoord("09h45m14.81s -62d30m28.5s")
    assert abs(ra - truth.ra.deg) < 1e-5 and abs(dec - truth.dec.deg) < 1e-5
    assert parse_position("0 0 1 -0 30 0")[1] == pytest.approx(-0.5)


@pytest.mark.parametrize("text", ["beta Lyr", "HD 174638", "bet_Lyr", "RR Lyr", "V* bet Lyr"])
def test_names_are_not_positions(text: str) -> None:
    assert parse_position(text) is None


@pytest.mark.parametrize("text, word", [
    ("400 10", "RA"), ("10 95", "Dec"), ("18 61 00 +10 00 00", "below 60"),
])
def test_impossible_positions_are_refused_with_the_reason(text: str, word: str) -> None:
    with pytest.raises(SearchError, match=word):
        parse_position(text)


def test_radius_in_arcmin() -> None:
    assert parse_radius("30", 10) == pytest.approx(0.5)
    assert parse_radius("", 10) == pytest.approx(10 / 60)
    for bad in ("0", "-1", "abc", "nan", "601"):
        with pytest.raises(SearchError, match="radius"):
            parse_radius(bad, 10)


def test_times_in_mjd_jd_and_iso_are_one_range() -> None:
    iso = parse_time_range("2018-01-01/2018-03-01T12:00")
    jd = parse_time_range(f"{Time('2018-01-01').jd}/{Time('2018-03-01T12:00').jd}")
    mjd = parse_time_range(f"{Time('2018-01-01').mjd}/{Time('2018-03-01T12:00').mjd}")
    for got in (iso, jd):
        assert got[0] == pytest.approx(mjd[0], abs=1e-8)
        assert got[1] == pytest.approx(mjd[1], abs=1e-8)
    assert parse_time_range("58100/") == (58100.0, None)
    assert parse_time_range("..58200") == (None, 58200.0)
    assert parse_time_range("") == (None, None)
    assert to_mjd("2018-01-01T00:00:00Z") == pytest.approx(Time("2018-01-01").mjd)


@pytest.mark.parametrize("text", ["58200/58100", "yesterday/58100", "58100"])
def test_bad_time_ranges_name_the_field(text: str) -> None:
    with pytest.raises(SearchError, match="time"):
        parse_time_range(text)


def test_calendar_dates_of_mjds() -> None:
    assert mjd_to_iso(Time("2018-01-27T18:30").mjd) == "2018-01-27 18:30"
    assert mjd_to_iso(None) == ""
