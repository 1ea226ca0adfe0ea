"""The original SKVO's JSON API (/api/...) for its old clients, over HTTP.

Runs on the SQLite and the MariaDB deployment.  Every expected answer is
derived from TAP queries of the same archive (as the requesting user), or
from the VOTable light curve, never written down: the lookup's series are
those with ``skvo.point`` rows (the points a user may fetch) whose target
lies in the box; the metadata's series are the ``skvo.photometry`` rows the
user sees.
"""

from __future__ import annotations

import io
import math
from urllib.parse import quote

import pytest
import requests
from astropy.io.votable import parse
from conftest import ALICE, BOB, LiveServer

Auth = tuple[str, str] | None
USERS = {"anonymous": None, "alice": ALICE, "bob": BOB}


def tap(url: str, query: str, auth: Auth = None) -> list[dict]:
    response = requests.post(f"{url}/tap/sync", data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}, auth=auth, timeout=60)
    assert response.status_code == 200, response.text[:500]
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return [dict(zip(table.colnames, row, strict=True)) for row in table]


def box_adql(ra: float, de: float, half_ra: float = 5.0, half_de: float = 5.0) -> str:
    """ADQL condition on t.right_ascension/t.declination: the seed's box, RA wrapped."""
    lo, hi = ra - half_ra, ra + half_ra
    dec = f"t.declination BETWEEN {de - half_de} AND {de + half_de}"
    if lo < 0:
        return f"{dec} AND (t.right_ascension >= {lo + 360} OR t.right_ascension <= {hi})"
    if hi >= 360:
        return f"{dec} AND (t.right_ascension >= {lo} OR t.right_ascension <= {hi - 360})"
    return f"{dec} AND t.right_ascension BETWEEN {lo} AND {hi}"


def fetchable_in_box(url: str, auth: Auth, condition: str, source: str | None = None
                     ) -> set[tuple[int, str]]:
    """(observation id, bandpass uid) of the series in the box whose points ``auth`` may
    fetch (skvo.point holds exactly those), by TAP."""
    where = condition + (f" AND o.source = '{source}'" if source else "")
    rows = tap(url, "SELECT DISTINCT pt.observation_id, b.bandpass_uid FROM skvo.point AS pt "
               "JOIN skvo.target AS t ON t.target_id = pt.target_id "
               "JOIN skvo.bandpass AS b ON b.bandpass_id = pt.bandpass_id "
               "JOIN skvo.observation AS o ON o.observation_id = pt.observation_id "
               f"WHERE {where}", auth)
    return {(int(r["observation_id"]), str(r["bandpass_uid"])) for r in rows}


def keys(items: list[dict]) -> set[tuple[int, str]]:
    return {(i["observation"]["id"], i["bandpass"]["bandpass_uid"]) for i in items}


def get(url: str, path: str, auth: Auth = None, **params: str) -> requests.Response:
    return requests.get(url + path, params=params, auth=auth, timeout=60)


def ok(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def position(url: str, name: str) -> tuple[float, float]:
    row = tap(url, f"SELECT right_ascension, declination FROM skvo.target "
              f"WHERE target = '{name}'", ALICE)[0]
    return float(row["right_ascension"]), float(row["declination"])


# --------------------------------------------------------------------------
# The map and the URL forms


def test_api_root_lists_the_endpoints(server: LiveServer) -> None:
    doc = ok(get(server.url, "/api/"))
    assert doc["photometry-lookup"] == f"{server.url}/api/photometry/lookup/"
    assert doc["photometry-access-reference"] == f"{server.url}/api/photometry/aref/"
    assert doc["metadata"] == f"{server.url}/api/photometry/metadata/"
    assert "/ra/<ra>/de/<de>/" in doc["photometry-lookup-get-coo"]
    assert "/target/<target>/" in doc["photometry-lookup-get-target"]
    assert ok(get(server.url, "/api/photometry/metadata/", MAXREC="1"))


def test_every_form_of_the_lookup_gives_the_same_series(server: LiveServer) -> None:
    ra, de = position(server.url, "bet_Lyr")
    expected = fetchable_in_box(server.url, None, box_adql(ra, de))
    assert expected  # open bet_Lyr nights
    base = "/api/photometry/lookup"
    default = ok(get(server.url, f"{base}/ra/{ra}/de/{de}/"))
    assert keys(default) == expected
    explicit = ok(get(server.url, f"{base}/ra/{ra}/de/{de}/box_size_ra/5/box_size_de/5/"))
    form = ok(requests.post(f"{server.url}{base}/", data={"ra": ra, "de": de}, timeout=60))
    body = ok(requests.post(f"{server.url}{base}/", json={"ra": ra, "de": de}, timeout=60))
    no_slash = ok(get(server.url, f"{base}/ra/{ra}/de/{de}"))
    for other in (explicit, form, body, no_slash):
        assert other == default
    # the answer's shape (the original's lookup entries, with the separation)
    item = default[0]
    assert set(item) >= {"start_date", "end_date", "observation", "instrument", "dataid",
                         "organisation", "facility", "access_rights", "target", "bandpass",
                         "samples", "separation"}
    assert item["target"]["target"] == "bet_Lyr" and item["separation"] < 1e-6
    assert item["access_rights"]["access"] == "open"
    assert item["start_date"].endswith("Z") and item["dataid"]["organisation"] == \
        item["organisation"]["id"]
    separations = [i["separation"] for i in default]
    assert separations == sorted(separations)


def test_box_sizes_and_dataset_narrow_the_lookup(server: LiveServer) -> None:
    ra, de = position(server.url, "del_Cep")
    base = f"/api/photometry/lookup/dataset/vhao/ra/{ra}/de/{de}"
    wide = ok(get(server.url, f"{base}/box_size_ra/30/box_size_de/10/"))
    expected = fetchable_in_box(server.url, None, box_adql(ra, de, 30, 10), "vhao")
    assert keys(wide) == expected and {i["dataid"]["source"] for i in wide} == {"vhao"}
    everyone = ok(get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/"))
    assert len({i["dataid"]["source"] for i in everyone}) > 1  # dataset did filter
    body = ok(requests.post(f"{server.url}/api/photometry/lookup/", json={
        "dataset": "vhao", "ra": ra, "de": de, "box_size_ra": 30, "box_size_de": 10},
        timeout=60))
    assert body == wide
    # a box too small to reach any target
    off = ok(get(server.url, f"/api/photometry/lookup/ra/{ra + 0.5}/de/{de}/"
                             "box_size_ra/0.1/box_size_de/0.1/"))
    assert off == [] and fetchable_in_box(server.url, None, box_adql(ra + 0.5, de, .1, .1)) \
        == set()


@pytest.mark.parametrize("ra", [0.0, 0.5, 359.0, 3.0, 356.0])
def test_the_box_wraps_around_0h(server: LiveServer, ra: float) -> None:
    """R_Cas (RA 359.6) lies in every one of these 5-degree boxes."""
    found = ok(get(server.url, f"/api/photometry/lookup/ra/{ra}/de/51/"))
    expected = fetchable_in_box(server.url, None, box_adql(ra, 51.0))
    assert keys(found) == expected
    assert "R_Cas" in {i["target"]["target"] for i in found}
    r_cas = position(server.url, "R_Cas")
    for i in found:
        if i["target"]["target"] == "R_Cas":
            d_ra = math.radians(r_cas[0] - ra)
            cos_sep = (math.sin(math.radians(51)) * math.sin(math.radians(r_cas[1]))
                       + math.cos(math.radians(51)) * math.cos(math.radians(r_cas[1]))
                       * math.cos(d_ra))
            assert i["separation"] == pytest.approx(math.degrees(math.acos(cos_sep)), abs=1e-6)


def test_a_box_east_of_0h_does_not_reach_back(server: LiveServer) -> None:
    found = ok(get(server.url, "/api/photometry/lookup/ra/5.5/de/51/"))
    assert "R_Cas" not in {i["target"]["target"] for i in found}
    assert keys(found) == fetchable_in_box(server.url, None, box_adql(5.5, 51.0))


def test_the_target_form_resolves_names_like_the_archive(server: LiveServer) -> None:
    ra, de = position(server.url, "bet_Lyr")
    by_coordinates = ok(get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/"
                                        "box_size_ra/2/"))
    for name in ("bet_Lyr", "beta Lyr", "HD 174638"):
        by_name = ok(get(server.url, f"/api/photometry/lookup/target/{name}/box_size_ra/2/"))
        assert by_name == by_coordinates, name
    posted = ok(requests.post(f"{server.url}/api/photometry/lookup/",
                              json={"target": "β Lyr", "box_size_ra": 2}, timeout=60))
    assert posted == by_coordinates
    missing = get(server.url, "/api/photometry/lookup/target/No_Such_Star/")
    assert missing.status_code == 404
    assert missing.json()["parameter"] == "target"


# --------------------------------------------------------------------------
# Access rights


@pytest.mark.parametrize("user", sorted(USERS))
def test_lookup_lists_what_the_user_may_fetch(server: LiveServer, user: str) -> None:
    auth = USERS[user]
    for ra, de in (position(server.url, "W_UMa"), (0.0, 51.0), position(server.url, "bet_Lyr")):
        found = ok(get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/", auth))
        assert keys(found) == fetchable_in_box(server.url, auth, box_adql(ra, de)), (ra, de)
        assert all(i["access_rights"]["access"] == "open" for i in found) or user == "alice"


def test_restricted_data_are_never_hinted_at(server: LiveServer) -> None:
    """l_Car has restricted nights only: without a grant its name is unknown and its
    box is empty (the southern declination the original's GET form could not take)."""
    ra, de = position(server.url, "l_Car")
    for auth in (None, BOB):
        named = get(server.url, "/api/photometry/lookup/target/l_Car/", auth)
        unknown = get(server.url, "/api/photometry/lookup/target/No_Such_Star/", auth)
        assert named.status_code == unknown.status_code == 404
        assert named.json()["detail"].replace("l_Car", "X") == \
            unknown.json()["detail"].replace("No_Such_Star", "X")
        assert ok(get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/", auth)) == []
        listed = ok(get(server.url, "/api/photometry/metadata/", auth))
        assert "restricted" not in {m["observation"]["access"]["access"] for m in listed}
    granted = ok(get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/", ALICE))
    assert keys(granted) == fetchable_in_box(server.url, ALICE, box_adql(ra, de)) != set()


# --------------------------------------------------------------------------
# Access reference: the points


def aref_body(item: dict, **extra: object) -> dict:
    """The access reference of a metadata or lookup entry, as the original's clients
    filled it in (times to the second)."""
    obs = item["observation"]
    return {
        "start_date": item["start_date"][:19].replace("T", " "),
        "end_date": item["end_date"][:19].replace("T", " "),
        "observation": {"id": obs["id"]},
        "instrument": {"instrument_hash": (obs.get("instrument") or item["instrument"])
                       ["instrument_hash"]},
        "target": {"catalogue_value": (obs.get("target") or item["target"])["catalogue_value"]},
        "bandpass": {"bandpass_uid": item["bandpass"]["bandpass_uid"]},
        "dataid": {"source": (obs.get("dataid") or item["dataid"])["source"]},
        **extra,
    }


def votable_points(url: str, uuid: str, band: str, auth: Auth) -> dict[str, list]:
    response = requests.get(f"{url}/lightcurve/{uuid}/{band}", auth=auth, timeout=60)
    assert response.status_code == 200
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return {"mjd": list(table["time"]), "magnitude": list(table["magnitude"]),
            "error": list(table["magnitude_error"])}


def assert_same_points(doc: dict, expected: dict[str, list]) -> None:
    data = doc["data"]
    assert len(data) == len(expected["mjd"]) == doc["metadata"]["samples"] > 0
    assert [p["mjd"] for p in data] == pytest.approx(expected["mjd"], abs=1e-9)
    assert [p["magnitude"] for p in data] == expected["magnitude"]
    assert [p["error"] for p in data] == expected["error"]


def test_aref_points_equal_the_votable_light_curve(server: LiveServer) -> None:
    item = ok(get(server.url, "/api/photometry/lookup/ra/0/de/51/"))[0]
    response = requests.post(f"{server.url}/api/photometry/aref/", json=aref_body(item),
                             timeout=60)
    doc = ok(response)
    uuid = item["observation"]["observation_uuid"]
    assert_same_points(doc, votable_points(server.url, uuid, item["bandpass"]["bandpass_uid"],
                                           None))
    assert doc["metadata"]["samples"] == item["samples"]
    assert doc["metadata"]["start_date"] == item["start_date"]
    assert doc["metadata"]["end_date"] == item["end_date"]
    point = doc["data"][0]
    assert set(point) >= {"magnitude", "error", "timestamp", "timeframe_reference_position",
                          "flux_calibration", "flux_calibration_level", "exposure"}
    # a window: the points from the third to the tenth
    inner = doc["data"][2:10]
    window = aref_body(item, start_date=inner[0]["timestamp"][:-1],
                       end_date=inner[-1]["timestamp"][:-1])
    cut = ok(requests.post(f"{server.url}/api/photometry/aref/", json=window, timeout=60))
    assert cut["data"] == inner and cut["metadata"]["samples"] == len(inner)
    capped = ok(requests.post(f"{server.url}/api/photometry/aref/?MAXREC=3",
                              json=aref_body(item), timeout=60))
    assert capped["data"] == doc["data"][:3] and capped["metadata"]["query_status"] == "OVERFLOW"


def test_aref_honours_access_rights(server: LiveServer) -> None:
    listed = ok(get(server.url, "/api/photometry/metadata/", ALICE))
    by_access = {m["observation"]["access"]["access"]: m for m in listed}
    on_demand, restricted = by_access["on_demand"], by_access["restricted"]
    url = f"{server.url}/api/photometry/aref/"
    assert requests.post(url, json=aref_body(on_demand), timeout=60).status_code == 401
    denied = requests.post(url, json=aref_body(on_demand), auth=BOB, timeout=60)
    assert denied.status_code == 403 and denied.json()["query_status"] == "ERROR"
    for item in (on_demand, restricted):
        doc = ok(requests.post(url, json=aref_body(item), auth=ALICE, timeout=60))
        assert_same_points(doc, votable_points(
            server.url, item["observation"]["observation_uuid"],
            item["bandpass"]["bandpass_uid"], ALICE))
    # restricted: exactly what an observation that does not exist gets
    gone = {"observation": {"id": 2**62}, "bandpass": {"bandpass_uid": "johnson.v"}}
    for auth in (None, BOB):
        hidden = requests.post(url, json=aref_body(restricted), auth=auth, timeout=60)
        missing = requests.post(url, json=gone, auth=auth, timeout=60)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["parameter"] == missing.json()["parameter"] == "observation.id"


# --------------------------------------------------------------------------
# Metadata


@pytest.mark.parametrize("user", sorted(USERS))
def test_metadata_lists_the_series_the_user_sees(server: LiveServer, user: str) -> None:
    auth = USERS[user]
    listed = ok(get(server.url, "/api/photometry/metadata/", auth))
    rows = tap(server.url, "SELECT p.photometry_id, o.observation_id, o.observation_uuid, "
               "o.access, b.bandpass_uid FROM skvo.photometry AS p JOIN skvo.observation AS o "
               "ON o.observation_id = p.observation_id JOIN skvo.bandpass AS b "
               "ON b.bandpass_id = p.bandpass_id", auth)
    assert sorted((m["observation"]["observation_uuid"], m["bandpass"]["bandpass_uid"])
                  for m in listed) == sorted((r["observation_uuid"], r["bandpass_uid"])
                                             for r in rows)
    # the nested document of the original's docs
    m = listed[0]
    assert set(m) >= {"observation", "bandpass", "media", "start_date", "end_date"}
    assert set(m["observation"]) >= {"id", "access", "target", "instrument", "facility",
                                     "dataid", "observation_uuid"}
    assert set(m["observation"]["dataid"]) >= {"id", "organisation", "title", "publisher",
                                               "publisher_did"}
    assert set(m["observation"]["dataid"]["organisation"]) >= {
        "id", "organisation", "organisation_did", "email"}
    assert set(m["observation"]["access"]) == {"id", "access"}
    assert set(m["bandpass"]) >= {"id", "bandpass", "bandpass_uid", "spectral_band_type",
                                  "photometric_system"}


def test_metadata_pages_with_maxrec_and_offset(server: LiveServer) -> None:
    whole = ok(get(server.url, "/api/photometry/metadata/"))
    pages, link = [], f"{server.url}/api/photometry/metadata/?MAXREC=100"
    while link:
        response = requests.get(link, timeout=60)
        pages += ok(response)
        status = response.headers["X-SKVO-Query-Status"]
        link = response.links.get("next", {}).get("url")
        assert (status == "OVERFLOW") == bool(link)
    assert pages == whole and len(whole) > 100


def test_lookup_maxrec_cuts_the_nearest_first(server: LiveServer) -> None:
    ra, de = position(server.url, "Algol")
    whole = get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/box_size_ra/60/"
                            "box_size_de/30/")
    assert whole.headers["X-SKVO-Query-Status"] == "OK"
    cut = get(server.url, f"/api/photometry/lookup/ra/{ra}/de/{de}/box_size_ra/60/"
                          "box_size_de/30/", MAXREC="5")
    assert cut.headers["X-SKVO-Query-Status"] == "OVERFLOW"
    assert len(ok(cut)) == 5
    assert max(i["separation"] for i in ok(cut)) <= min(
        i["separation"] for i in ok(whole)[5:])


# --------------------------------------------------------------------------
# Errors: JSON naming the parameter, never a stack trace

BAD_GETS = [
    ("/api/photometry/lookup/ra/abc/de/10/", "ra"),
    ("/api/photometry/lookup/ra/10/de/95/", "de"),
    ("/api/photometry/lookup/ra/10/de/nan/", "de"),
    ("/api/photometry/lookup/ra/10/", "de"),
    ("/api/photometry/lookup/de/10/", "ra"),
    ("/api/photometry/lookup/ra/10/de/10/box_size_ra/-1/", "box_size_ra"),
    ("/api/photometry/lookup/ra/10/de/10/box_size_de/x/", "box_size_de"),
    ("/api/photometry/lookup/ra/10/de/10/box_size_de/1e999/", "box_size_de"),
    ("/api/photometry/lookup/ra/10/de/10/color/red/", "color"),
    ("/api/photometry/lookup/ra/10/de/10/ra/11/", "ra"),
    ("/api/photometry/lookup/ra/10/de/10/?MAXREC=-1", "MAXREC"),
    ("/api/photometry/lookup/dataset/upjs/", "target"),
    ("/api/photometry/metadata/?OFFSET=x", "OFFSET"),
]
BAD_POSTS = [
    ("lookup", {"ra": "1", "de": "x"}, "de"),
    ("lookup", {"target": ["a"]}, "target"),
    ("lookup", {"ra": True, "de": 1}, "ra"),
    ("lookup", {}, "target"),
    ("lookup", [1, 2], "body"),
    ("aref", {}, "observation.id"),
    ("aref", {"observation": {"id": "one"}}, "observation.id"),
    ("aref", {"observation": 5}, "observation"),
    ("aref", {"observation": {"id": 1}, "start_date": "2018-13-01 00:00:00"}, "start_date"),
    ("aref", {"observation": {"id": 1}, "start_date": "2018-01-02 00:00:00",
              "end_date": "2018-01-01 00:00:00"}, "start_date"),
    ("aref", "not json", "body"),
]


@pytest.mark.parametrize(("path", "parameter"), BAD_GETS)
def test_bad_get_parameters_are_named(server: LiveServer, path: str, parameter: str) -> None:
    response = requests.get(server.url + path, timeout=60)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert doc["query_status"] == "ERROR" and doc["parameter"] == parameter
    assert parameter in doc["detail"] and "Traceback" not in response.text


@pytest.mark.parametrize(("endpoint", "body", "parameter"), BAD_POSTS)
def test_bad_bodies_are_named(sqlite_server: LiveServer, endpoint: str, body: object,
                              parameter: str) -> None:
    url = f"{sqlite_server.url}/api/photometry/{endpoint}/"
    if isinstance(body, str):
        response = requests.post(url, data=body, timeout=60)
    else:
        response = requests.post(url, json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter


def test_nasty_values_get_json_answers(sqlite_server: LiveServer) -> None:
    """Every parameter with hostile values: a JSON answer below 500, never a trace."""
    nasty = ["", "0", "-0", "1e308", "-1e309", "inf", "NaN", "\x00", "%00", "9" * 400,
             "'; DROP TABLE target; --", "é", "../../etc/passwd", "0x10", " 1 "]
    s = requests.Session()
    failures = []
    url = sqlite_server.url
    for value in nasty:
        for name in ("ra", "de", "target", "dataset", "box_size_ra", "box_size_de", "maxrec"):
            pairs = {"ra": "10", "de": "20", name: value}
            for response in (
                s.post(f"{url}/api/photometry/lookup/", data=pairs, timeout=60),
                s.post(f"{url}/api/photometry/lookup/", json=pairs, timeout=60),
                s.get(f"{url}/api/photometry/lookup/{name}/{quote(value, safe='')}/",
                      timeout=60),
            ):
                if response.status_code >= 500 or "Traceback" in response.text or \
                        not response.headers["Content-Type"].startswith("application/json"):
                    failures.append(f"{name}={value!r}: {response.status_code} "
                                    f"{response.text[:120]}")
        for body in ({"observation": {"id": value}}, {"observation": {"id": 1},
                                                        "start_date": value},
                     {"observation": {"id": 1}, "bandpass": {"bandpass_uid": value}}):
            response = s.post(f"{url}/api/photometry/aref/", json=body, timeout=60)
            if response.status_code >= 500 or "Traceback" in response.text:
                failures.append(f"aref {body!r}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


def test_uploads_are_not_taken_and_unknown_paths_are_json(sqlite_server: LiveServer) -> None:
    url = sqlite_server.url
    refused = requests.post(f"{url}/api/photometry/metadata/", json=[{}], timeout=60)
    assert refused.status_code == 405 and "skvo ingest" in refused.json()["detail"]
    for path in ("/api/photometry/media/", "/api/nothing"):
        response = requests.get(url + path, timeout=60)
        assert response.status_code == 404 and response.json()["query_status"] == "ERROR"
