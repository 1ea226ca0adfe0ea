"""Issue 11's "done means", from pyvo alone (no SKVO code on the client), on the
demo data's campaign (voservice/demo.py: 20-40 nights of Algol, delta Cep,
beta Lyr, RR Lyr):

find a star with TAP, follow the DataLink ``#derivation`` service descriptor to
a periodogram whose best peak is the star's catalog period (skvo.ephemeris,
read from TAP), request its curve in BJD_TDB and check it against astropy,
read its minima and O-C from TAP, and follow the DataLink link to its O-C.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import pyvo
import requests
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.io.votable import parse as parse_votable
from astropy.table import Table
from astropy.time import Time
from conftest import LiveServer

#: the method a catalog period must be found with, by variability type
CASES = {"DCEP": "lombscargle", "EA": "bls"}


def tap(server: LiveServer, query: str) -> Table:
    return pyvo.dal.TAPService(f"{server.url}/tap").run_sync(query).to_table()


def record(server: LiveServer, where: str) -> dict:
    """The star curve (ObsCore, calib_level 3) matching ``where`` with the most points,
    with the star's catalog period (default ephemeris)."""
    table = tap(server, "SELECT o.obs_publisher_did, o.access_url, o.target_name, "
                "o.bandpass_uid, o.s_ra, o.s_dec, o.t_xel, o.t_min, o.t_max, t.target_id, "
                "e.period, e.epoch FROM ivoa.obscore AS o "
                "JOIN skvo.target AS t ON t.target = o.target_name "
                "JOIN skvo.ephemeris AS e ON e.target_id = t.target_id "
                f"WHERE o.calib_level = 3 AND e.is_default = 1 AND {where} "
                "ORDER BY o.t_xel DESC")
    assert len(table), f"no star curve where {where}"
    row = table[0]
    return {c: (row[c].item() if hasattr(row[c], "item") else str(row[c]))
            for c in table.colnames}


def topocentric(server: LiveServer) -> dict:
    """The star curve with the most open topocentric points."""
    table = tap(server, "SELECT t.target, b.bandpass_uid, p.flux_calibration, "
                "SUM(p.n_points) AS n "
                "FROM skvo.photometry AS p JOIN skvo.observation AS o ON o.observation_id = "
                "p.observation_id JOIN skvo.target AS t ON t.target_id = o.target_id "
                "JOIN skvo.bandpass AS b ON b.bandpass_id = p.bandpass_id "
                "WHERE p.time_refposition = 'topocenter' AND o.access = 'open' "
                "GROUP BY t.target, b.bandpass_uid, p.flux_calibration "
                "ORDER BY n DESC, t.target, b.bandpass_uid")
    assert len(table), "no open topocentric night"
    rec = record(server, f"o.target_name = '{table['target'][0]}' "
                         f"AND o.bandpass_uid = '{table['bandpass_uid'][0]}'")
    return {**rec, "calib": str(table["flux_calibration"][0])}


def links(rec: dict) -> pyvo.dal.adhoc.DatalinkResults:
    return pyvo.dal.adhoc.DatalinkResults.from_result_url(rec["access_url"])


def votable_tables(data: bytes) -> list:
    return [t for r in parse_votable(io.BytesIO(data)).resources for t in r.tables]


@pytest.mark.parametrize("var_type", sorted(CASES))
def test_periodogram_finds_the_catalog_period(server: LiveServer, var_type: str) -> None:
    rec = record(server, f"e.var_type = '{var_type}'")
    proc = next(links(rec).iter_procs())  # the #derivation service descriptor
    assert proc.semantics == "#derivation"
    # periods 1-10 d hold the aliases P/2 and 2P (BLS: 2 grid points per peak width)
    stream = proc.process(METHOD=CASES[var_type], MINPERIOD=1.0, MAXPERIOD=10.0, NPEAKS=3,
                          OVERSAMPLE=2 if CASES[var_type] == "bls" else 5)
    peaks = next(t for t in votable_tables(stream.read()) if t.name == "peaks").to_table()
    best = float(peaks["period"][0])
    baseline = rec["t_max"] - rec["t_min"]
    assert baseline > 60  # the campaign, not a few nights
    # the catalog period lies inside the best peak (half its width in frequency)
    assert abs(1 / best - 1 / rec["period"]) < 0.5 / baseline, (best, rec["period"])


def test_curve_in_bjd_tdb_agrees_with_astropy(server: LiveServer) -> None:
    rec = topocentric(server)
    this = next(r for r in links(rec) if r.semantics == "#this"
                and r.content_type.startswith("application/x-votable"))
    # the observer's (topocentric) nights of the star, as given and converted
    which = {"TIMEREF": "TOPOCENTER", "CALIB": rec["calib"]}
    raw = votable_tables(requests.get(this.access_url, params=which, timeout=120).content)
    bjd = votable_tables(requests.get(this.access_url, params={**which, "TIMESYS": "BJD_TDB"},
                                      timeout=120).content)
    assert len(raw) == len(bjd) == 1
    assert 'refposition="BARYCENTER"' in requests.get(this.access_url, params={
        **which, "TIMESYS": "BJD_TDB", "MAXREC": "1"}, timeout=60).text
    raw_t, bjd_t = raw[0].to_table(), bjd[0].to_table()
    assert len(raw_t) == len(bjd_t) > 100
    sites = tap(server, "SELECT o.observation_uuid, f.longitude, f.latitude, f.height "
                "FROM skvo.observation AS o JOIN skvo.facility AS f "
                "ON f.facility_id = o.facility_id")
    site = {str(r["observation_uuid"]): r for r in sites}
    converted = {(str(o), str(s)): float(t) for o, s, t in
                 zip(bjd_t["obs_id"], bjd_t["timestamp"], bjd_t["time"], strict=True)}
    star = SkyCoord(rec["s_ra"] * u.deg, rec["s_dec"] * u.deg)
    for obs_id in sorted({str(o) for o in raw_t["obs_id"]}):
        mine = raw_t[raw_t["obs_id"] == obs_id]
        where = site[obs_id]
        known = not np.ma.is_masked(where["longitude"])
        loc = (EarthLocation.from_geodetic(where["longitude"] * u.deg, where["latitude"] * u.deg,
                                           (where["height"] or 0.0) * u.m) if known
               else EarthLocation.from_geocentric(0, 0, 0, unit=u.m))
        t = Time(np.asarray(mine["time"], float), format="mjd", scale="utc", location=loc)
        expected = (t.tdb + t.light_travel_time(star, "barycentric")).mjd
        got = np.array([converted[(obs_id, str(s))] for s in mine["timestamp"]])
        # sub-second: 1 ms with the facility's location, the geocentre's 21 ms without
        assert np.max(np.abs(got - expected)) * 86400 < (1e-3 if known else 0.022)


def test_minima_and_o_c_from_tap(server: LiveServer) -> None:
    rec = record(server, "e.var_type = 'EA'")
    minima = tap(server, "SELECT m.night, m.time_bjd, m.time_error, m.min_type, m.cycle, "
                 "m.calculated, m.o_c, e.epoch, e.period FROM skvo.minimum AS m "
                 "JOIN skvo.ephemeris AS e ON e.ephemeris_id = m.ephemeris_id "
                  f"WHERE m.target_id = {rec['target_id']} "
                 f"AND m.bandpass_uid = '{rec['bandpass_uid']}' ORDER BY m.time_bjd")
    assert len(minima) >= 3  # campaign nights that cover a minimum
    for row in minima:
        assert str(row["min_type"]) in ("primary", "secondary")
        assert (2 * row["cycle"]) % 1 == 0
        assert row["calculated"] == pytest.approx(row["epoch"] + row["period"] * row["cycle"],
                                                  abs=1e-7)
        assert abs(row["o_c"]) < 0.01  # where the catalog ephemeris puts them
        assert 0 < row["time_error"] < 0.005
    # the star's DataLink leads to the same O-C
    oc = next(r for r in links(rec) if r.semantics == "#derivation"
              and r["local_semantics"] == "oc")
    table = votable_tables(oc.getdataset().read())[0].to_table()
    assert sorted(np.round(table["o_c"], 9)) == sorted(np.round(
        [float(x) for x in minima["o_c"]], 9))
