"""Light curves, previews, frames and DataLink against the live server."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse as parse_votable
from conftest import ADMIN, ALICE, BOB, LiveServer
from lxml import etree

from voservice.stores import open_data_stores
from voservice.stores.metadata import make_engine

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def series_rows(server: LiveServer, access: str) -> list[dict]:
    """Series of one access right, read through TAP with the admin account."""
    session = requests.Session()
    session.auth = ADMIN
    service = pyvo.dal.TAPService(f"{server.url}/tap", session=session)
    table = service.run_sync(
        "SELECT obs_id, obs_publisher_did, bandpass_uid, t_xel, target_name FROM ivoa.obscore "
        f"WHERE calib_level = 2 AND access_rights = '{access}' ORDER BY t_xel DESC").to_table()
    return [{k: (v.item() if hasattr(v, "item") else str(v)) for k, v in zip(
        table.colnames, row, strict=True)} for row in table]


def lc_url(server: LiveServer, row: dict) -> str:
    return f"{server.url}/lightcurve/{row['obs_id']}/{row['bandpass_uid']}"


def store_points(server: LiveServer, row: dict):
    """The points of a series as the deployment's time-series store has them."""
    from voservice.archive.lightcurves import find_series
    from voservice.stores.timeseries.base import Points

    settings = server.dep.settings()
    engine = make_engine(settings.metadata_url)
    timeseries, _media = open_data_stores(settings, engine)
    series = find_series(engine, row["obs_id"], row["bandpass_uid"])[0]
    return Points.concat(list(timeseries.read(series.ref)))


def test_light_curve_is_topcat_ready(server: LiveServer) -> None:
    row = series_rows(server, "open")[0]
    body = requests.get(lc_url(server, row), timeout=30).content
    root = etree.fromstring(body)
    timesys = root.find(f"{VOT}TIMESYS")
    assert timesys is not None and timesys.get("timeorigin") == "2400000.5"
    assert timesys.get("timescale") in ("UTC", "TDB")
    assert timesys.get("refposition") in ("TOPOCENTER", "GEOCENTER", "HELIOCENTER", "BARYCENTER")
    fields = root.findall(f".//{VOT}FIELD")
    assert fields[0].get("name") == "time" and fields[0].get("ref") == timesys.get("ID")
    assert (fields[0].get("ucd"), fields[0].get("unit")) == ("time.epoch", "d")
    ucds = {f.get("name"): f.get("ucd") for f in fields}
    assert ucds["magnitude"].startswith("phot.mag;em.opt")
    assert ucds["magnitude_error"] == "stat.error;phot.mag"
    params = {p.get("name"): p for p in root.findall(f".//{VOT}PARAM")}
    assert params["target_name"].get("value") == row["target_name"]
    assert params["publisher_did"].get("value") == row["obs_publisher_did"]
    assert params["ra"].get("ucd") == "pos.eq.ra;meta.main"
    table = parse_votable(io.BytesIO(body)).get_first_table().to_table()
    points = store_points(server, row)
    assert len(table) == len(points) == row["t_xel"]
    assert np.array_equal(np.asarray(table["magnitude"]), points.magnitude)
    assert np.allclose(np.asarray(table["time"]), points.mjd, rtol=0, atol=1e-9)


def test_fits_light_curve_carries_the_whole_did(server: LiveServer) -> None:
    from astropy.io import fits

    row = series_rows(server, "open")[0]
    body = requests.get(lc_url(server, row) + "?RESPONSEFORMAT=fits", timeout=30).content
    with fits.open(io.BytesIO(body)) as hdul:
        hdul.verify("exception")
        assert hdul[1].header["DS_IDPUB"] == row["obs_publisher_did"]
        assert row["obs_publisher_did"].endswith(row["obs_id"]) and len(hdul[1].data) == row[
            "t_xel"]


def test_votlint_accepts_light_curves(server: LiveServer) -> None:
    row = series_rows(server, "open")[0]
    for query in ("", "?RESPONSEFORMAT=votable/td", "?PERIOD=0.5&EPOCH=58100&BIN=0.1"):
        result = subprocess.run(["stilts", "votlint", f"votable={lc_url(server, row)}{query}"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0
        assert result.stdout.strip() == "", result.stdout


def test_time_cut_fold_bin_and_maxrec(server: LiveServer) -> None:
    row = series_rows(server, "open")[0]
    points = store_points(server, row)
    mjd = points.mjd
    lo, hi = np.quantile(mjd, [0.25, 0.75])

    def get(**params: str):
        body = requests.get(lc_url(server, row), params=params, timeout=30).content
        return parse_votable(io.BytesIO(body)).get_first_table().to_table(), body

    cut, _ = get(TIME=f"{float(lo)!r}/{float(hi)!r}")
    assert len(cut) == np.count_nonzero((mjd >= lo - 1e-9) & (mjd <= hi + 1e-9))
    folded, _ = get(PERIOD="0.7", EPOCH="58100.25")
    assert np.allclose(np.asarray(folded["phase"]), np.mod((mjd - 58100.25) / 0.7, 1.0))
    binned, _ = get(BIN="0.01")
    assert int(np.sum(binned["n_points"])) == len(points)
    first = np.floor((mjd - mjd[0]) / 0.01) == 0
    weights = 1 / points.magnitude_error[first] ** 2
    assert float(binned["magnitude"][0]) == pytest.approx(
        np.sum(weights * points.magnitude[first]) / np.sum(weights))
    assert float(binned["magnitude_error"][0]) == pytest.approx(1 / np.sqrt(np.sum(weights)))
    few, body = get(MAXREC="5")
    assert len(few) == 5 and b'value="OVERFLOW"' in body
    bad = requests.get(lc_url(server, row), params={"PERIOD": "-1"}, timeout=30)
    assert bad.status_code == 400 and b"PERIOD" in bad.content


def test_csv_and_multiband(server: LiveServer) -> None:
    row = series_rows(server, "open")[0]
    csv = requests.get(lc_url(server, row), params={"RESPONSEFORMAT": "csv"}, timeout=30)
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("time,magnitude,magnitude_error")
    assert len(csv.text.splitlines()) == row["t_xel"] + 1
    multi = requests.get(f"{server.url}/lightcurve/{row['obs_id']}", timeout=30).content
    table = parse_votable(io.BytesIO(multi)).get_first_table().to_table()
    assert row["bandpass_uid"] in set(table["bandpass_uid"])
    assert np.all(np.diff(np.asarray(table["time"])) >= 0)
    one = requests.get(f"{server.url}/lightcurve/{row['obs_id']}",
                       params={"BAND": row["bandpass_uid"]}, timeout=30).content
    assert set(parse_votable(io.BytesIO(one)).get_first_table().to_table()["bandpass_uid"]) == {
        row["bandpass_uid"]}


def test_preview_is_a_png(server: LiveServer) -> None:
    row = series_rows(server, "open")[0]
    response = requests.get(lc_url(server, row) + "/preview.png", timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


def frame_links(server: LiveServer, did: str, auth=None) -> list[str]:
    body = requests.get(f"{server.url}/datalink", params={"ID": did}, auth=auth,
                        timeout=30).content
    table = parse_votable(io.BytesIO(body)).get_first_table().to_table()
    return [str(r["access_url"]) for r in table if str(r["semantics"]) == "#auxiliary"
            and str(r["local_semantics"]) == "frame"]


def test_frames_with_etag_and_range(server: LiveServer, demo_tree: Path) -> None:
    urls = []
    for row in series_rows(server, "open"):
        urls = frame_links(server, row["obs_publisher_did"])
        if urls:
            break
    assert urls, "the sample data must hold frames of open series"
    response = requests.get(urls[0], timeout=30)
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(response.content)
    etag = response.headers["ETag"]
    assert requests.get(urls[0], headers={"If-None-Match": etag}, timeout=30).status_code == 304
    part = requests.get(urls[0], headers={"Range": "bytes=0-9"}, timeout=30)
    assert part.status_code == 206 and part.content == response.content[:10]
    demo_pngs = {p.read_bytes() for p in demo_tree.rglob("*.png")}
    assert response.content in demo_pngs


def test_datalink_with_pyvo_and_datalinklint(server: LiveServer, tmp_path: Path) -> None:
    rows = series_rows(server, "open")[:2]
    ids = [r["obs_publisher_did"] for r in rows] + ["ivo://skvo.test.example/skvo?nothing"]
    response = requests.get(f"{server.url}/datalink", params={"ID": ids}, timeout=30)
    assert response.headers["Content-Type"] == "application/x-votable+xml;content=datalink"
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(
        f"{server.url}/datalink?ID={requests.utils.quote(ids[0], safe='')}")
    this = list(links.bysemantics("#this", include_narrower=False))
    assert this and this[0].access_url.startswith(f"{server.url}/lightcurve/")
    dataset = parse_votable(io.BytesIO(this[0].getdataset().read())).get_first_table()
    assert len(dataset.array) == rows[0]["t_xel"]
    path = tmp_path / "links.xml"
    path.write_bytes(response.content)
    lint = subprocess.run(["stilts", "datalinklint", f"votable={path}"], capture_output=True,
                          text=True, timeout=120)
    assert "Errors: 0; Warnings: 0" in lint.stdout, lint.stdout[-2000:]
    table = parse_votable(io.BytesIO(response.content)).get_first_table().to_table()
    unknown = [r for r in table if str(r["ID"]) == ids[-1]]
    assert len(unknown) == 1 and str(unknown[0]["error_message"]).startswith("NotFoundFault")
    assert [str(r["ID"]) for r in table] == sorted(
        (str(r["ID"]) for r in table), key=[str(i) for i in ids].index)


def every_url(server: LiveServer, row: dict) -> list[str]:
    """Every data URL of a series (read as the granted user)."""
    base = lc_url(server, row)
    urls = [base, base + "?RESPONSEFORMAT=csv", base + "/preview.png",
            f"{server.url}/lightcurve/{row['obs_id']}"]
    return urls + frame_links(server, row["obs_publisher_did"], ALICE)


@pytest.mark.parametrize("access", ["on_demand", "restricted"])
def test_protected_series_on_every_url(server: LiveServer, access: str) -> None:
    rows = series_rows(server, access)
    assert rows, f"the sample data must hold {access} series"
    row = rows[0]
    urls = every_url(server, row)
    for url in urls:
        assert requests.get(url, auth=ALICE, timeout=60).status_code == 200, url
        anonymous = requests.get(url, timeout=30).status_code
        wrong_user = requests.get(url, auth=BOB, timeout=30).status_code
        if access == "restricted":
            assert (anonymous, wrong_user) == (404, 404), url
        else:
            assert (anonymous, wrong_user) == (401, 403), url
    body = requests.get(f"{server.url}/datalink", params={"ID": row["obs_publisher_did"]},
                        timeout=30).content
    table = parse_votable(io.BytesIO(body)).get_first_table().to_table()
    messages = [str(m) for m in table["error_message"]]
    assert all(m and m != "--" for m in messages)
    expected = "NotFoundFault" if access == "restricted" else "AuthenticationFault"
    assert all(m.startswith(expected) for m in messages)
    assert not any(str(u).startswith("http") for u in table["access_url"])
