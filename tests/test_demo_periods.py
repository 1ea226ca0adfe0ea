"""The sample tree's monitoring campaign is worth a periodogram: through the live
service, each campaign star's catalog period (its default ephemeris, read through
TAP) is the best or second-best peak of /analysis/periodogram on its V curve, as
an anonymous visitor sees it (open nights only)."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from astropy.io.votable import parse
from conftest import LiveServer

from voservice.demo import CAMPAIGN, STARS

#: the campaign's stars, by target name
CAMPAIGN_STARS = [next(s.name for s in STARS if s.folder == c.star) for c in CAMPAIGN]

#: the periodogram a sensible user asks for, by GCVS variability type: box least
#: squares over the usual periods of Algol-type binaries (EA); a two-harmonic
#: Lomb-Scargle for the continuous curves of beta Lyrae binaries and pulsators,
#: on a finer grid than the default (10 points per peak width)
SEARCH = {"EA": {"METHOD": "bls", "MINPERIOD": "1", "MAXPERIOD": "10"}}
SMOOTH = {"METHOD": "lombscargle", "NTERMS": "2", "OVERSAMPLE": "10"}
#: what the portal asks for an eclipsing binary by default (no period known yet):
#: phase dispersion minimisation on the default grid; unlike a one-harmonic
#: Lomb-Scargle it does not halve a binary's period, and unlike BLS it needs no
#: eclipse duration (so no MINPERIOD) and takes continuous curves too
ECLIPSING_DEFAULT = {"METHOD": "pdm"}


def tap(url: str, query: str) -> list[dict]:
    """Rows of an anonymous synchronous TAP query."""
    response = requests.post(f"{url}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                       "QUERY": query}, timeout=60)
    assert response.status_code == 200, response.text[:500]
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return [{k: (v.item() if hasattr(v, "item") else str(v)) for k, v in
             zip(table.colnames, row, strict=True)} for row in table]


def catalog(url: str, band: str = "johnson.v") -> dict[str, dict]:
    """Target name -> its default ephemeris' period and type, and the publisher DID
    of its star curve in ``band``."""
    ephemerides = tap(url, "SELECT tg.target, e.period, e.var_type FROM skvo.ephemeris AS e "
                           "JOIN skvo.target AS tg ON tg.target_id = e.target_id "
                           "WHERE e.is_default = 1")
    curves = {r["target_name"]: r["obs_publisher_did"] for r in tap(
        url, "SELECT target_name, obs_publisher_did FROM ivoa.obscore "
             f"WHERE calib_level = 3 AND bandpass_uid = '{band}'")}
    return {r["target"]: {**r, "did": curves[r["target"]]} for r in ephemerides
            if r["target"] in curves}


def peaks(url: str, did: str, params: dict[str, str]) -> list[float]:
    """Periods of the periodogram's best peaks, best first."""
    response = requests.get(f"{url}/analysis/periodogram", params={
        "ID": did, "RESPONSEFORMAT": "csv", "TABLE": "peaks", **params}, timeout=300)
    assert response.status_code == 200, response.text[:500]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    return [float(r["period"]) for r in rows]


@pytest.fixture(scope="module")
def stars(sqlite_server: LiveServer) -> dict[str, dict]:
    found = catalog(sqlite_server.url)
    assert set(CAMPAIGN_STARS) <= set(found)
    return found


@pytest.mark.parametrize("name", CAMPAIGN_STARS)
def test_catalog_period_is_a_best_peak(sqlite_server: LiveServer, stars: dict[str, dict],
                                       name: str) -> None:
    star = stars[name]
    period, var_type = star["period"], star["var_type"]
    best = peaks(sqlite_server.url, star["did"], SEARCH.get(var_type, SMOOTH))[:2]
    # an eclipsing binary's two minima make half its period an alias
    truths = [period, period / 2] if var_type.startswith("E") else [period]
    assert any(abs(p - t) <= 1e-3 * t for p in best for t in truths), (name, period, best)


def test_eclipsing_default_finds_beta_lyr_and_algol(server: LiveServer) -> None:
    """The portal's default periodogram of an eclipsing binary puts the period
    (12.94 d for beta Lyr) first, not an alias."""
    found = catalog(server.url)
    eclipsing = [n for n in CAMPAIGN_STARS if found[n]["var_type"].startswith("E")]
    assert {"bet_Lyr", "Algol"} <= set(eclipsing)
    for name in eclipsing:
        best = peaks(server.url, found[name]["did"], ECLIPSING_DEFAULT)[0]
        assert best == pytest.approx(found[name]["period"], rel=0.01), name
    assert found["bet_Lyr"]["period"] == pytest.approx(12.94, rel=0.01)
