"""TIMESYS=BJD_TDB|HJD_UTC|MJD_UTC on a night's light curve (/lightcurve/<uuid>/<band>)
against astropy's light_travel_time, and a provider's heliocentric times never
corrected twice (tests/eclipse_tree.py: topocentric and heliocentric nights)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from astropy.io.votable import parse as parse_votable
from astropy.time import Time
from conftest import ADMIN, LiveServer
from eclipse_tree import (
    BAND,
    EPOCH_BJD,
    NIGHTS,
    PERIOD,
    bjd_tdb,
    hjd_utc,
    location,
    observed_times,
    rows,
    serving,
    tap,
)

MS = 1e-3 / 86400  # a millisecond in days


@pytest.fixture(scope="module")
def eclipses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("night-timesys"), "sqlite", "") as server:
        yield server


@pytest.fixture(scope="module")
def observations(eclipses: LiveServer) -> dict[str, dict]:
    """Open observations by reference position: uuid and night."""
    found = rows(tap(eclipses, "SELECT o.observation_uuid, o.night, o.access, "
                               "p.time_refposition FROM skvo.observation AS o JOIN "
                               "skvo.photometry AS p ON p.observation_id = o.observation_id "
                               "ORDER BY o.night", ADMIN))
    return {r["time_refposition"]: r for r in found if r["access"] == "open"}


def curve(server: LiveServer, uuid: str, **params: str):  # noqa: ANN201 - VOTableFile
    response = requests.get(f"{server.url}/lightcurve/{uuid}/{BAND}", params=params,
                            timeout=60)
    assert response.status_code == 200, response.text[-2000:]
    return parse_votable(io.BytesIO(response.content))


def times(doc) -> np.ndarray:  # noqa: ANN001 - a VOTableFile
    return np.asarray(doc.get_first_table().array["time"], dtype=float)


def timesys(doc) -> tuple[str, str]:  # noqa: ANN001 - a VOTableFile
    ts = doc.get_timesys_by_id("timesys")
    return ts.timescale, ts.refposition


def test_topocentric_night_converted_as_astropy_does(eclipses: LiveServer,
                                                     observations: dict) -> None:
    uuid = observations["topocenter"]["observation_uuid"]
    raw = curve(eclipses, uuid)
    assert timesys(raw) == ("UTC", "TOPOCENTER")
    t = Time(times(raw), format="mjd", scale="utc", location=location())
    bjd = curve(eclipses, uuid, TIMESYS="BJD_TDB")
    assert timesys(bjd) == ("TDB", "BARYCENTER")
    assert np.max(np.abs(times(bjd) - bjd_tdb(t))) < MS
    assert np.min(np.abs(times(bjd) - t.mjd)) > 60 / 86400  # a real correction was made
    hjd = curve(eclipses, uuid, TIMESYS="HJD_UTC")
    assert timesys(hjd) == ("UTC", "HELIOCENTER")
    assert np.max(np.abs(times(hjd) - hjd_utc(t))) < MS
    same = curve(eclipses, uuid, TIMESYS="MJD_UTC")
    assert np.array_equal(times(same), times(raw))
    field = next(f for f in bjd.get_first_table().fields if f.name == "time")
    assert "BJD_TDB" in field.description


def test_heliocentric_night_is_never_corrected_twice(eclipses: LiveServer,
                                                     observations: dict) -> None:
    uuid = observations["heliocenter"]["observation_uuid"]
    raw = curve(eclipses, uuid)
    assert timesys(raw) == ("UTC", "HELIOCENTER")
    # already HJD: asking for HJD changes nothing
    assert np.array_equal(times(curve(eclipses, uuid, TIMESYS="HJD_UTC")), times(raw))
    # BJD from the observer's times the provider's HJD was made of (the tree knows them)
    night = next(n for n in NIGHTS if n.refposition == "heliocenter")
    observed = observed_times(night)
    bjd = curve(eclipses, uuid, TIMESYS="BJD_TDB")
    assert np.max(np.abs(times(bjd) - bjd_tdb(observed))) < 3 * MS
    utc = curve(eclipses, uuid, TIMESYS="MJD_UTC")
    assert timesys(utc) == ("UTC", "TOPOCENTER")
    assert np.max(np.abs(times(utc) - observed.mjd)) < 3 * MS


def test_folded_night_phases_on_converted_times(eclipses: LiveServer,
                                                observations: dict) -> None:
    uuid = observations["topocenter"]["observation_uuid"]
    doc = curve(eclipses, uuid, TIMESYS="BJD_TDB", PERIOD=repr(PERIOD), EPOCH=repr(EPOCH_BJD))
    table = doc.get_first_table().array
    expected = np.mod((np.asarray(table["time"], float) - EPOCH_BJD) / PERIOD, 1.0)
    assert np.allclose(np.asarray(table["phase"], float), expected, atol=1e-9)


@pytest.mark.parametrize("params", [{"TIMESYS": "JD"}, {"TIMESYS": "BJD_TDB", "PERIOD": "2.8",
                                                        "BIN": "0.05"}])
def test_bad_timesys_is_a_usage_error(eclipses: LiveServer, observations: dict,
                                      params: dict) -> None:
    uuid = observations["topocenter"]["observation_uuid"]
    response = requests.get(f"{eclipses.url}/lightcurve/{uuid}/{BAND}", params=params,
                            timeout=60)
    assert response.status_code == 400
    assert 'value="ERROR"' in response.text and "TIMESYS" in response.text
