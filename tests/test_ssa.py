"""SSA 1.1 against live servers (SQLite and MariaDB)."""

from __future__ import annotations

import io

import pytest
import pyvo
import requests
from astropy.io.votable import parse
from conftest import ALICE, BOB
from test_scs import votlint

from voservice.ingest.tree import walk

ALGOL = (47.042215, 40.955648)


def ssa(url: str, auth: tuple[str, str] | None = None, **params: object) -> requests.Response:
    response = requests.get(f"{url}/ssa", params={"REQUEST": "queryData", **params}, auth=auth,
                            timeout=30, allow_redirects=False)
    return response


def rows(response: requests.Response):  # noqa: ANN201 - astropy Table
    assert response.status_code == 200
    return parse(io.BytesIO(response.content)).get_first_table().to_table()


def session(auth: tuple[str, str] | None) -> requests.Session:
    s = requests.Session()
    s.auth = auth
    return s


def test_pyvo_search_and_records(server) -> None:
    service = pyvo.dal.SSAService(f"{server.url}/ssa")
    results = service.search(pos=ALGOL, diameter=0.1)
    assert len(results) > 0
    for record in results:
        assert record.acref.startswith(server.url + "/lightcurve/")
        assert record.getdataurl() == record.acref
        assert record.format == "application/x-votable+xml"
        assert record.ra == pytest.approx(ALGOL[0]) and record.dec == pytest.approx(ALGOL[1])
        assert record.title.startswith("Algol")
    assert {r["access_rights"] for r in results} <= {"open", "on_demand"}
    alice = pyvo.dal.SSAService(f"{server.url}/ssa", session=session(ALICE))
    assert len(alice.search(pos=ALGOL, diameter=0.1)) > len(results)  # vhao's restricted ones
    bob = pyvo.dal.SSAService(f"{server.url}/ssa", session=session(BOB))
    assert len(bob.search(pos=ALGOL, diameter=0.1)) == len(results)
    # band (metres) and time (ISO) as pyvo sends them
    v_band = service.search(pos=ALGOL, diameter=0.1, band=(5.4e-7, 5.6e-7))
    assert {r["ssa_bandpass"] for r in v_band} == {"johnson.v"}
    assert len(service.search(pos=ALGOL, diameter=0.1,
                              time=("2000-01-01T00:00:00", "2001-01-01T00:00:00"))) == 0
    assert {c.name for c in service.columns} >= {"accref", "ssa_pubDID"}


def test_lightcurve_download(server) -> None:
    """getdataurl downloads the light curve (once the light-curve endpoint exists)."""
    record = pyvo.dal.SSAService(f"{server.url}/ssa").search(
        pos=ALGOL, diameter=0.1, COLLECTION="upjs")[0]
    response = requests.get(record.getdataurl(), timeout=30)
    if response.status_code == 404 and b"VOTABLE" not in response.content:
        pytest.skip("the light-curve endpoint has not landed yet")
    assert response.status_code in (200, 401)
    if record["access_rights"] == "open":
        assert b"TIMESYS" in response.content


def test_parameters(server, demo_tree) -> None:
    everything = rows(ssa(server.url, ALICE, MAXREC=1000))
    nights = len(walk(demo_tree).series)  # the nights' curves
    assert len(everything[everything["calib_level"] == 2]) == nights
    stars = everything[everything["calib_level"] == 3]  # a curve per star and band
    assert len(stars) == len({(str(t), str(b)) for t, b in zip(
        everything["ssa_targname"], everything["ssa_bandpass"], strict=True)})
    anon = rows(ssa(server.url, MAXREC=1000))
    assert "restricted" not in set(anon["access_rights"])
    assert set(rows(ssa(server.url, BAND="V"))["ssa_bandpass"]) == {"johnson.v"}
    assert set(rows(ssa(server.url, BAND="sdss.g,johnson.u"))["ssa_bandpass"]) <= {
        "sdss.g", "johnson.u"}
    assert len(rows(ssa(server.url, BAND="1e-6/"))) == 0
    assert set(rows(ssa(server.url, TARGETNAME="r_cas"))["ssa_targname"]) == {"R_Cas"}
    assert set(rows(ssa(server.url, COLLECTION="vhao"))["access_rights"]) == {"open"}
    t = rows(ssa(server.url, TIME="58000/58100.5"))
    assert len(t) and all(t["t_min"] <= 58100.5) and all(t["t_max"] >= 58000)
    assert len(rows(ssa(server.url, TIME="2018-01-01/2018-01-31"))) > 0
    assert len(rows(ssa(server.url, FORMAT="fits"))) == 0
    assert len(rows(ssa(server.url, FORMAT="votable"))) == len(anon)
    did = anon["ssa_pubDID"][0]
    assert list(rows(ssa(server.url, PUBDID=did))["ssa_pubDID"]) == [did]
    # R_Cas near RA 0 with the cone wrapping around
    assert set(rows(ssa(server.url, ALICE, POS="0.1,51.39", SIZE=1.2))["ssa_targname"]) == {
        "R_Cas"}
    # l_Car below -60: restricted data only
    assert len(rows(ssa(server.url, POS="146.31,-62.51;ICRS", SIZE=0.1))) == 0
    assert len(rows(ssa(server.url, ALICE, POS="146.31,-62.51;ICRS", SIZE=0.1))) > 0


def test_documents_are_valid(server) -> None:
    for params in ({"POS": f"{ALGOL[0]},{ALGOL[1]}", "SIZE": 0.1}, {"FORMAT": "metadata"},
                   {"MAXREC": 2}, {"MAXREC": 0}, {"POS": "x"}):
        response = ssa(server.url, **params)
        assert response.status_code == 200
        assert votlint(response.content) == "", params
    meta = parse(io.BytesIO(ssa(server.url, FORMAT="METADATA").content))
    names = {p.name for p in meta.resources[0].params} | {
        p.name for p in meta.get_first_table().params}
    assert {"INPUT:POS", "INPUT:SIZE", "INPUT:BAND", "INPUT:TIME", "INPUT:FORMAT"} <= names
    assert len(meta.get_first_table().array) == 0
    overflow = ssa(server.url, MAXREC=2)
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in overflow.content
    assert b'<INFO name="SERVICE_PROTOCOL" value="1.1">SSAP</INFO>' in overflow.content
    vot = parse(io.BytesIO(overflow.content))
    descriptor = [r for r in vot.resources if r.type == "meta"][0]
    assert descriptor.utype == "adhoc:service"
    assert {p.name: p.value for p in descriptor.params}["accessURL"] == f"{server.url}/datalink"


@pytest.mark.parametrize("params", [
    {"POS": "abc"}, {"POS": "10,95"}, {"SIZE": "-1"}, {"TIME": "yesterday/today"},
    {"BAND": "2e-7/1e-7"}, {"FORMAT": "nonsense"}, {"MAXREC": "-3"}, {"REQUEST": "doQuery"},
])
def test_errors(server, params: dict[str, str]) -> None:
    response = ssa(server.url, **params)
    assert response.status_code == 200
    assert b'name="QUERY_STATUS" value="ERROR"' in response.content
    with pytest.raises(pyvo.dal.DALQueryError):
        pyvo.dal.SSAQuery(f"{server.url}/ssa", **{"REQUEST": "queryData", **params}).execute()


def test_get_data(server) -> None:
    anon = rows(ssa(server.url, COLLECTION="upjs"))
    did = anon["ssa_pubDID"][0]
    response = requests.get(f"{server.url}/ssa", params={"REQUEST": "getData", "PUBDID": did},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert response.headers["Location"] == anon["accref"][0]
    restricted = rows(ssa(server.url, ALICE, COLLECTION="saao"))["ssa_pubDID"][0]
    hidden = requests.get(f"{server.url}/ssa", params={"REQUEST": "getData",
                                                       "PUBDID": restricted}, timeout=30)
    assert b'value="ERROR"' in hidden.content and b"NotFoundFault" in hidden.content


def test_vosi(server) -> None:
    caps = requests.get(f"{server.url}/ssa/capabilities", timeout=30).text
    assert 'standardID="ivo://ivoa.net/std/SSA"' in caps
    assert requests.get(f"{server.url}/ssa/availability", timeout=30).status_code == 200
