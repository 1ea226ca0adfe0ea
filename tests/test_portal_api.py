"""The portal over plain HTTP on both databases: its pages and JSON keep the access rules
and show the numbers the VO endpoints serve."""

from __future__ import annotations

import base64
import csv
import io
import re
from urllib.parse import quote

import numpy as np
import pytest
import requests
from astropy.io.votable import parse
from lxml import html

from tests.conftest import ADMIN, ALICE, BOB, LiveServer


def _sky(server: LiveServer, auth: tuple[str, str] | None = None) -> dict[str, dict]:
    r = requests.get(server.url + "/portal/api/sky", auth=auth, timeout=30)
    assert r.status_code == 200
    return {t["name"]: t for t in r.json()["targets"]}


@pytest.fixture(scope="module")
def ids(server: LiveServer) -> dict[str, int]:
    """Target ids by name, as the administrator sees them all."""
    return {name: t["id"] for name, t in _sky(server, ADMIN).items()}


def _tap(server: LiveServer, query: str, auth: tuple[str, str] | None = None) -> list[list[str]]:
    r = requests.get(server.url + "/tap/sync", params={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "FORMAT": "csv"},
        auth=auth, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return list(csv.reader(io.StringIO(r.text)))[1:]


def _votable_tables(body: bytes) -> list:
    return list(parse(io.BytesIO(body)).iter_tables())


def test_holdings_count_what_tap_shows_and_no_restricted_star(server: LiveServer) -> None:
    for auth in (None, ALICE):
        page = html.fromstring(requests.get(server.url + "/", auth=auth, timeout=30).text)
        stat = {dd.get("data-stat"): dd.text_content().replace(",", "").strip()
                for dd in page.xpath("//dd[@data-stat]")}
        stars = _tap(server, "SELECT COUNT(*) FROM skvo.target", auth)[0][0]
        series, points = _tap(server, "SELECT COUNT(*), SUM(n_points) FROM skvo.photometry",
                              auth)[0]
        assert stat["stars"] == stars and stat["series"] == series
        assert stat["points"] == points
        assert int(stat["stars"]) == len(_sky(server, auth))
    anonymous = requests.get(server.url + "/", timeout=30).text
    assert "l_Car" not in anonymous
    assert "l_Car" not in _sky(server) and "l_Car" in _sky(server, ALICE)
    assert "bet_Lyr" in _sky(server)


def test_search_gives_no_hint_of_a_restricted_star(server: LiveServer, ids: dict) -> None:
    lcar = ids["l_Car"]
    where = _sky(server, ADMIN)["l_Car"]
    for q in ("l_Car", "l Car", "HD 84810", "l_Cr", "Car"):
        r = requests.get(server.url + "/search", params={"q": q}, timeout=30)
        assert r.status_code == 200
        doc = html.fromstring(r.text)
        assert not doc.xpath(f"//a[contains(@href, '/star/{lcar}')]")
        assert "l_Car" not in " ".join(doc.xpath("//p[@id='did-you-mean']//text()"))
        assert doc.xpath("//p[@id='no-match']"), q
    cone = requests.get(server.url + "/search", params={
        "q": f"{where['ra']} {where['dec']}", "radius": "30"}, timeout=30)
    assert f"/star/{lcar}" not in cone.text and "l_Car" not in cone.text
    # a granted user finds it, by a misspelt name too
    typo = requests.get(server.url + "/search", params={"q": "l_Cr"}, auth=ALICE, timeout=30)
    assert "l_Car" in " ".join(html.fromstring(typo.text).xpath(
        "//p[@id='did-you-mean']//text()"))
    found = requests.get(server.url + "/search", params={"q": "HD 84810"}, auth=ALICE,
                         timeout=30, allow_redirects=False)
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/star/{lcar}")


def test_restricted_star_pages_are_unknown(server: LiveServer, ids: dict) -> None:
    lcar = ids["l_Car"]
    missing = max(ids.values()) + 1000
    for path in ("/star/{}", "/star/{}/frames", "/portal/api/star/{}/curve"):
        hidden = requests.get(server.url + path.format(lcar), timeout=30)
        unknown = requests.get(server.url + path.format(missing), timeout=30)
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.text == unknown.text
        assert requests.get(server.url + path.format(lcar), auth=ALICE,
                            timeout=60).status_code == 200


def test_locked_star_shows_locks_never_points(server: LiveServer, ids: dict) -> None:
    wuma = ids["W_UMa"]  # on_demand and restricted nights only
    page = requests.get(f"{server.url}/star/{wuma}", timeout=30)
    assert page.status_code == 200
    doc = html.fromstring(page.text)
    assert doc.xpath("//table[@id='nights']//tr[contains(@class, 'locked')]")
    assert not doc.xpath("//table[@id='nights']//tr[contains(@class, 'fetch')]")
    assert doc.xpath("//p[@id='locked-note']")
    api = f"{server.url}/portal/api/star/{wuma}/curve"
    anonymous = requests.get(api, timeout=30)
    assert anonymous.status_code == 401 and "t" not in anonymous.json()
    assert requests.get(api, auth=BOB, timeout=30).status_code == 403
    granted = requests.get(api, auth=ALICE, timeout=60)
    assert granted.status_code == 200 and granted.json()["n"] > 0
    frames = requests.get(f"{server.url}/star/{wuma}/frames", timeout=30).text
    assert "/frame/" not in frames


def _column(packed: dict) -> np.ndarray:
    """A column of the curve JSON: little-endian bytes in base64."""
    return np.frombuffer(base64.b64decode(packed["b64"]), dtype=np.dtype(packed["dtype"])
                         .newbyteorder("<"))


def _compare(part: dict, table, nights: list[dict]) -> None:
    """The JSON part holds the VOTable's points, in its order."""
    arr = table.array
    assert part["n"] == len(arr)
    np.testing.assert_array_equal(_column(part["t"]), np.asarray(arr["time"], float))
    np.testing.assert_array_equal(_column(part["m"]), np.asarray(arr["magnitude"], np.float32))
    np.testing.assert_array_equal(_column(part["e"]),
                                  np.asarray(arr["magnitude_error"], np.float32))
    frames = [-1 if not u else int(u.rsplit("/", 1)[1])
              for u in np.ma.filled(arr["frame_url"].astype(object), None)]
    assert _column(part["f"]).tolist() == frames
    night_ids = [nights[k]["id"] for k in _column(part["k"])]
    assert night_ids == [str(x) for x in arr["obs_id"]]


#: (BAND, TIMESYS) of the curves compared: every band as delivered, and one band of few
#: nights converted to BJD_TDB (astropy converts night by night: many nights take long)
CURVES = [("", ""), ("cousins.i", "BJD_TDB")]


@pytest.mark.parametrize("band, timesys", CURVES)
def test_curve_json_holds_the_star_curve_points(server: LiveServer, ids: dict, band: str,
                                                timesys: str) -> None:
    target = ids["bet_Lyr"]
    counts = {}
    for who in (None, ALICE):
        params = {k: v for k, v in (("TIMESYS", timesys), ("BAND", band)) if v}
        doc = requests.get(f"{server.url}/portal/api/star/{target}/curve", params=params,
                           auth=who, timeout=120).json()
        vo = requests.get(f"{server.url}/lightcurve/star/{target}", params=params, auth=who,
                          timeout=120)
        assert vo.status_code == 200
        tables = _votable_tables(vo.content)
        assert len(tables) == len(doc["parts"])
        for part, table in zip(doc["parts"], tables, strict=True):
            _compare(part, table, doc["nights"])
            if timesys:
                assert part["converted"] == timesys
        assert doc["n"] == sum(len(t.array) for t in tables)
        counts[who] = doc
    assert counts[None]["withheld"] > 0 and counts[ALICE]["withheld"] == 0
    if not band:  # the on_demand nights add points for the granted user
        assert counts[ALICE]["n"] > counts[None]["n"]


def test_curve_json_refuses_bad_parameters_by_name(server: LiveServer, ids: dict) -> None:
    api = f"{server.url}/portal/api/star/{ids['bet_Lyr']}/curve"
    for params, name in (({"TIMESYS": "GMST"}, "TIMESYS"), ({"band": "johnson.z"}, "BAND"),
                         ({"CALIB": "rel"}, "CALIB")):
        r = requests.get(api, params=params, timeout=30)
        assert r.status_code == 400 and name in r.json()["error"]
        assert "Traceback" not in r.text


def test_results_rows_are_the_star_curves(server: LiveServer, ids: dict) -> None:
    sky = _sky(server)["bet_Lyr"]
    r = requests.get(server.url + "/search", params={
        "q": f"{sky['ra'] + 0.01} {sky['dec']}", "radius": "5"}, timeout=60)
    doc = html.fromstring(r.text)
    rows = doc.xpath("//table[@id='results']/tbody/tr")
    assert rows and all(row.get("data-target") == str(ids["bet_Lyr"]) for row in rows)
    for row in rows:
        cells = [c.text_content().strip() for c in row.xpath("td")]
        band = cells[1].split()[0]
        nights, points = int(cells[2].split()[0]), int(cells[3])
        vo = requests.get(f"{server.url}/lightcurve/star/{ids['bet_Lyr']}/{quote(band)}",
                          timeout=60)
        if points == 0:
            assert vo.status_code == 401  # the band's nights are all on demand
            continue
        table = _votable_tables(vo.content)[0]
        assert len(table.array) == points
        assert table.get_field_by_id_or_name("n_nights").value == nights
        distance = float(cells[8])
        assert 0 < distance < 1  # arcmin from the search centre (0.01 deg in RA off)


def test_one_name_goes_to_the_star_page(server: LiveServer, ids: dict) -> None:
    for q in ("beta Lyr", "β Lyr", "bet Lyrae", "HD174638"):
        r = requests.get(server.url + "/search", params={"q": q}, allow_redirects=False,
                         timeout=30)
        assert r.status_code == 302 and r.headers["Location"].endswith(
            f"/star/{ids['bet_Lyr']}"), q
    r = requests.get(server.url + "/star/beta%20Lyr", allow_redirects=False, timeout=30)
    assert r.headers["Location"].endswith(f"/star/{ids['bet_Lyr']}")


def test_bad_search_fields_are_named(server: LiveServer) -> None:
    for params, name in (({"q": "10 20", "radius": "-3"}, "radius"),
                         ({"q": "beta Lyr", "time": "58300/58100"}, "time"),
                         ({"q": "400 10"}, "RA"), ({"q": ""}, "q")):
        r = requests.get(server.url + "/search", params=params, timeout=30)
        assert r.status_code == 400
        error = " ".join(html.fromstring(r.text).xpath("//p[@class='error']//text()"))
        assert name in error


def test_plotly_comes_from_the_installed_package(server: LiveServer) -> None:
    from importlib import resources

    shipped = resources.files("plotly").joinpath("package_data/plotly.min.js").read_bytes()
    r = requests.get(server.url + "/portal/vendor/plotly.min.js", timeout=30)
    assert r.status_code == 200 and r.content == shipped
    assert "javascript" in r.headers["Content-Type"]
    assert re.search(r"max-age=\d{5,}", r.headers["Cache-Control"])
    again = requests.get(server.url + "/portal/vendor/plotly.min.js", timeout=30,
                         headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    assert requests.get(server.url + "/portal/vendor/jquery.js", timeout=30).status_code == 404


def test_star_curve_as_ecsv(server: LiveServer, ids: dict) -> None:
    from astropy.table import Table

    url = f"{server.url}/lightcurve/star/{ids['bet_Lyr']}/johnson.v"
    ecsv = requests.get(url, params={"RESPONSEFORMAT": "ecsv", "PERIOD": "catalog"},
                        timeout=60)
    assert ecsv.status_code == 200 and ecsv.text.startswith("# %ECSV 1.0")
    table = Table.read(ecsv.text, format="ascii.ecsv")
    vo = _votable_tables(requests.get(url, params={"PERIOD": "catalog"}, timeout=60).content)[0]
    assert str(table["time"].unit) == "d" and str(table["magnitude"].unit) == "mag"
    np.testing.assert_array_equal(np.asarray(table["time"]), np.asarray(vo.array["time"]))
    np.testing.assert_array_equal(np.asarray(table["phase"]), np.asarray(vo.array["phase"]))


def test_portal_routes_survive_nasty_values(sqlite_server: LiveServer) -> None:
    """Every parameter and path of the portal: no 500, no stack trace, no raw DB message."""
    from tests.test_fuzz_endpoints import NASTY, NASTY_TEXT

    s = requests.Session()
    target = _sky(sqlite_server)["bet_Lyr"]["id"]
    failures = []
    pages = {"/search": ("q", "radius", "band", "time", "source"),
             f"/portal/api/star/{target}/curve": ("TIMESYS", "CALIB", "BAND"),
             f"/star/{target}": ("band", "time"), f"/star/{target}/frames": ("night",)}
    base = {"/search": {"q": "beta Lyr"}}
    for path, names in pages.items():
        for name in names:
            for value in NASTY[::3] + NASTY_TEXT:
                params = {**base.get(path, {}), name: value}
                r = s.get(sqlite_server.url + path, params=params, allow_redirects=False,
                          timeout=120)
                if r.status_code >= 500 or b"Traceback" in r.content or b"sqlalchemy" in \
                        r.content.lower():
                    failures.append(f"{path} {name}={value[:30]!r}: {r.status_code}")
    for segment in ("0", "-1", "9223372036854775808", "99999999999999999999", "%00", "..%2F..",
                    "é漢😀", "x" * 3000, "'; DROP TABLE target;--"):
        for path in (f"/star/{segment}", f"/star/{segment}/frames",
                     f"/portal/api/star/{segment}/curve", f"/portal/vendor/{segment}"):
            r = s.get(sqlite_server.url + path, allow_redirects=False, timeout=60)
            if r.status_code >= 500 or b"Traceback" in r.content:
                failures.append(f"{path[:60]}: {r.status_code}")
    assert not failures, "\n".join(failures)
