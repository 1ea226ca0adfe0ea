"""The periodogram as a service, reached from pyvo alone through DataLink's #derivation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse as parse_votable
from astropy.timeseries import LombScargle
from conftest import LiveServer


def star_records(server: LiveServer) -> list[dict]:
    table = pyvo.dal.TAPService(f"{server.url}/tap").run_sync(
        "SELECT obs_publisher_did, access_url, target_name, bandpass_uid, t_xel, t_min, t_max "
        "FROM ivoa.obscore WHERE calib_level = 3 ORDER BY t_xel DESC").to_table()
    return [{k: (v.item() if hasattr(v, "item") else str(v)) for k, v in
             zip(table.colnames, row, strict=True)} for row in table]


def curve(server: LiveServer, rec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The star curve's points, read as a client would."""
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(rec["access_url"])
    # (rows by their semantics attribute: pyvo's bysemantics fetches a vocabulary online)
    this = next(r for r in links if r.semantics == "#this"
                and r.content_type.startswith("application/x-votable"))
    table = parse_votable(io.BytesIO(requests.get(this.access_url, timeout=60).content))
    tables = [t for r in table.resources for t in r.tables]
    assert len(tables) == 1
    a = tables[0].array
    return np.asarray(a["time"]), np.asarray(a["magnitude"]), np.asarray(a["magnitude_error"])


def test_periodogram_from_pyvo_through_the_service_descriptor(server: LiveServer) -> None:
    rec = next(r for r in star_records(server) if r["t_max"] - r["t_min"] > 1.0)
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(rec["access_url"])
    # (an eclipsing binary also has plain #derivation links to its O-C)
    derivations = [r for r in links if r.semantics == "#derivation" and r.service_def]
    assert len(derivations) == 1
    proc = next(links.iter_procs())
    stream = proc.process(METHOD="lombscargle", MAXPERIOD=20.0, NPEAKS=3)
    peaks = next(t for r in parse_votable(io.BytesIO(stream.read())).resources for t in r.tables
                 if t.name == "peaks").to_table()
    assert list(peaks["rank"]) == [1, 2, 3]
    best = float(peaks["period"][0])
    # the same answer astropy gives on the same points, within the grid's resolution
    t, m, e = curve(server, rec)
    freq, power = LombScargle(t, m, e).autopower(minimum_frequency=1 / 20,
                                                 maximum_frequency=1 / 0.1,
                                                 samples_per_peak=10)
    astropy_best = 1 / freq[np.argmax(power)]
    step = 1 / (10 * (t.max() - t.min()))  # frequency step: one tenth of a peak width
    assert abs(1 / best - 1 / astropy_best) <= step
    # the best peak folds the curve at its period
    fold = requests.get(str(peaks["fold_url"][0]), params={"RESPONSEFORMAT": "csv"},
                        timeout=60)
    assert fold.status_code == 200 and "phase" in fold.text.splitlines()[0]
    preview = requests.get(str(peaks["fold_preview"][0]), timeout=60)
    assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG"


def test_periodogram_formats_and_limits(server: LiveServer) -> None:
    rec = star_records(server)[0]
    url = f"{server.url}/analysis/periodogram"
    did = rec["obs_publisher_did"]
    doc = requests.get(url, params={"ID": did, "METHOD": "bls", "MINPERIOD": "0.5",
                                    "MAXPERIOD": "5"}, timeout=120)
    assert doc.status_code == 200, doc.text
    tables = {t.name: t for r in parse_votable(io.BytesIO(doc.content)).resources
              for t in r.tables}
    assert set(tables) == {"peaks", "periodogram"}
    grid = tables["periodogram"].array
    assert np.allclose(np.asarray(grid["period"]) * np.asarray(grid["frequency"]), 1.0)
    assert tables["periodogram"].get_field_by_id_or_name("period").unit == "d"
    assert np.isfinite(np.asarray(tables["peaks"].array["duration"], float)).all()
    csv = requests.get(url, params={"ID": did, "RESPONSEFORMAT": "csv", "TABLE": "peaks"})
    assert csv.status_code == 200 and csv.text.startswith("rank,period,")
    png = requests.get(url, params={"ID": did, "RESPONSEFORMAT": "image/png"}, timeout=120)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    # a runaway grid is refused up front, naming what to change
    huge = requests.get(url, params={"ID": did, "MINPERIOD": "0.0001", "OVERSAMPLE": "100"},
                        timeout=60)
    assert huge.status_code == 400 and b"QUERY_STATUS" in huge.content
    assert b"MINPERIOD" in huge.content or b"OVERSAMPLE" in huge.content
    for params, word in (({"METHOD": "fourier"}, b"METHOD"), ({"NTERMS": "x"}, b"NTERMS"),
                         ({"BAND": "nosuch.band"}, b"BAND"), ({"CALIB": "both"}, b"CALIB")):
        bad = requests.get(url, params={"ID": did, **params}, timeout=60)
        assert bad.status_code == 400 and word in bad.content, (params, bad.text)
    missing = requests.get(url, params={"ID": did.replace("star/", "star/999999")}, timeout=60)
    assert missing.status_code == 404


@pytest.mark.parametrize("account", [None, ("bob", "builder")])
def test_periodogram_keeps_restricted_stars_hidden(server: LiveServer, account) -> None:
    granted = requests.Session()
    granted.auth = ("alice", "wonderland")
    service = pyvo.dal.TAPService(f"{server.url}/tap", session=granted)
    every = {str(r["obs_publisher_did"]) for r in service.run_sync(
        "SELECT obs_publisher_did FROM ivoa.obscore WHERE calib_level = 3").to_table()}
    public = {r["obs_publisher_did"] for r in star_records(server)}
    hidden = sorted(every - public)
    assert hidden
    s = requests.Session()
    s.auth = account
    for did in hidden:
        r = s.get(f"{server.url}/analysis/periodogram", params={"ID": did}, timeout=60)
        assert r.status_code in (401, 403, 404), r.text
        assert b"<TR>" not in r.content
