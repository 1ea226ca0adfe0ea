"""TAPRegExt's ADQL language element says what the service does: every optional
feature it declares runs through TAP (and each runnable optional feature of ADQL
2.1 is declared), what REGION does not take is refused with the reason, and the leniencies
beyond the REC, which TAPRegExt has no element for, are in the description and
work as described."""

from __future__ import annotations

import pytest
import requests
from conftest import LiveServer
from lxml import etree
from test_tap_sync import TRACE_MARKERS, status, sync

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt#"
OBS = "FROM ivoa.obscore"
P = "POINT('ICRS', s_ra, s_dec)"

#: the smallest query needing each optional ADQL 2.1 form SKVO runs, by feature type
RUNS = {
    "features-adqlgeo": {
        "POINT": f"SELECT TOP 1 {P} AS p {OBS}",
        "CIRCLE": f"SELECT TOP 1 CIRCLE('ICRS', s_ra, s_dec, 1) AS c {OBS}",
        "BOX": f"SELECT obs_id {OBS} WHERE CONTAINS({P}, BOX('ICRS', 10, 20, 5, 5)) = 1",
        "POLYGON": f"SELECT obs_id {OBS} WHERE CONTAINS({P}, POLYGON('ICRS', 1, 1, 9, 1, 5, "
                   "9)) = 0",
        "CONTAINS": f"SELECT obs_id {OBS} WHERE CONTAINS({P}, s_region) = 1",
        "INTERSECTS": f"SELECT obs_id {OBS} WHERE INTERSECTS(BOX(10, 20, 5, 5), s_region) = 0",
        "DISTANCE": f"SELECT TOP 1 DISTANCE({P}, POINT('ICRS', 0, 0)) AS d {OBS}",
        "COORD1": f"SELECT TOP 1 COORD1({P}) AS x {OBS}",
        "COORD2": f"SELECT TOP 1 COORD2({P}) AS y {OBS}",
        "COORDSYS": f"SELECT TOP 1 COORDSYS({P}) AS s {OBS}",
        "AREA": f"SELECT TOP 1 AREA(s_region) AS a {OBS}",
        "CENTROID": f"SELECT TOP 1 CENTROID(s_region) AS c {OBS}",
        "REGION": f"SELECT obs_id {OBS} WHERE CONTAINS({P}, REGION('Union ICRS (Circle 10 20 5 "
                  "Not (Circle 10 20 1))')) = 0",
    },
    "features-adql-string": {
        "LOWER": f"SELECT TOP 1 LOWER(obs_id) AS x {OBS}",
        "UPPER": f"SELECT TOP 1 UPPER(obs_id) AS x {OBS}",
        "ILIKE": f"SELECT obs_id {OBS} WHERE obs_collection ILIKE '%A%'",
    },
    "features-adql-offset": {"OFFSET": f"SELECT obs_id {OBS} ORDER BY obs_id OFFSET 1"},
    "features-adql-type": {"CAST": f"SELECT TOP 1 CAST(s_ra AS INTEGER) AS r {OBS}"},
    "features-adql-conditional": {
        "COALESCE": f"SELECT TOP 1 COALESCE(s_fov, 0.0) AS f {OBS}",
        "CASE": f"SELECT TOP 1 CASE WHEN s_dec > 0 THEN 'N' ELSE 'S' END AS h {OBS}",
    },
    "features-adql-sets": {
        "UNION": f"SELECT obs_id {OBS} UNION SELECT obs_id {OBS}",
        "EXCEPT": f"SELECT obs_id {OBS} EXCEPT SELECT obs_id {OBS} WHERE s_dec > 0",
        "INTERSECT": f"SELECT obs_id {OBS} INTERSECT SELECT obs_id {OBS} WHERE s_dec > 0",
    },
    "features-adql-common-table": {
        "WITH": f"WITH w AS (SELECT obs_id, s_region {OBS}) SELECT obs_id FROM w "
                f"WHERE CONTAINS(POINT(10, 20), w.s_region) = 0",
    },
    "features-adql-unit": {"IN_UNIT": f"SELECT TOP 1 IN_UNIT(s_ra + 10, 'rad') AS r {OBS}"},
}

#: leniencies the description states: (words in it, a query, "OK" or what the error says;
#: SKVO has no table named with a reserved word, so those parse and then are unknown)
LENIENT = {
    "trailing": ("one trailing ';'", f"SELECT TOP 1 obs_id {OBS};", "OK"),
    "schema": ("public.hipparcos", "SELECT TOP 1 ra FROM public.hipparcos",
               "unknown table 'public.hipparcos'"),
    "table": ("FROM table", "SELECT * FROM table", "unknown table 'table'"),
    "number": ("1desc", f"SELECT TOP 1 obs_id {OBS} ORDER BY 1desc", "OK"),
    "89x": ("SELECT 89x", f"SELECT 89x {OBS}", "malformed number"),
}


def _language(server: LiveServer) -> etree._Element:
    response = requests.get(f"{server.url}/tap/capabilities", timeout=30)
    assert response.status_code == 200
    (lang,) = etree.fromstring(response.content).findall(".//{*}language")
    return lang


def _ok(server: LiveServer, query: str) -> None:
    response = sync(server, query)
    value, text = status(response.content)
    assert response.status_code == 200 and value == "OK", (query, text)


def test_declared_features_are_exactly_those_that_run(server: LiveServer) -> None:
    lang = _language(server)
    declared = {}
    for group in lang.findall("{*}languageFeatures"):
        kind = group.get("type").removeprefix(TAPREGEXT)
        if kind != "features-udf":  # the UDFs: test_tap_sync
            declared[kind] = {f.findtext("{*}form") for f in group.findall("{*}feature")}
    assert declared == {kind: set(forms) for kind, forms in RUNS.items()}
    for forms in RUNS.values():
        for query in forms.values():
            _ok(server, query)
    # what REGION does not take is refused with the reason
    for region, words in (("Circle FK5 1 2 3", "ICRS"), ("Ellipse ICRS 1 2 3 4 5", "Ellipse")):
        response = sync(server, f"SELECT obs_id {OBS} WHERE CONTAINS({P}, "
                                f"REGION('{region}')) = 1")
        value, text = status(response.content)
        assert response.status_code == 400 and value == "ERROR", text
        assert "REGION" in text and words in text, text
        assert not any(m in text for m in TRACE_MARKERS)


@pytest.mark.parametrize("case", sorted(LENIENT))
def test_leniencies_are_described_and_work(server: LiveServer, case: str) -> None:
    words, query, outcome = LENIENT[case]
    assert words in _language(server).findtext("{*}description")
    if outcome == "OK":
        _ok(server, query)
    else:
        response = sync(server, query)
        value, text = status(response.content)
        assert response.status_code == 400 and value == "ERROR" and outcome in text, text
        assert "reserved" not in text
    if case == "trailing":  # one, never a second statement
        response = sync(server, f"SELECT obs_id {OBS}; SELECT obs_id {OBS}")
        assert status(response.content)[0] == "ERROR"
