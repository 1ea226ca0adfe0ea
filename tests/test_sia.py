"""SIA 2.0 against live servers (SQLite and MariaDB)."""

from __future__ import annotations

import io

import astropy.units as u
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from conftest import ALICE, BOB
from test_scs import votlint

DEL_CEP = (337.292771, 58.415197)
OBSCORE_MANDATORY = [
    "dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did",
    "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec", "s_fov",
    "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max", "t_exptime",
    "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel", "o_ucd",
    "pol_states", "pol_xel", "facility_name", "instrument_name",
]


def query(url: str, auth: tuple[str, str] | None = None, **params: object) -> requests.Response:
    return requests.get(f"{url}/sia/query", params=params, auth=auth, timeout=30)


def rows(response: requests.Response):  # noqa: ANN201 - astropy Table
    assert response.status_code == 200, response.text
    return parse(io.BytesIO(response.content)).get_first_table().to_table()


def test_pyvo_sia2(server) -> None:
    service = pyvo.dal.SIA2Service(f"{server.url}/sia")
    results = service.search(pos=(DEL_CEP[0] * u.deg, DEL_CEP[1] * u.deg, 0.05 * u.deg))
    assert len(results) == 26
    record = results[0]
    assert record.dataproduct_type == "image"
    assert record.access_format == "image/png"
    assert record.target_name == "del_Cep"
    assert set(OBSCORE_MANDATORY) <= set(results.fieldnames)
    timed = service.search(pos=(DEL_CEP[0] * u.deg, DEL_CEP[1] * u.deg, 0.05 * u.deg),
                           time=(record.t_min - 1e-6, record.t_max + 1e-6),
                           band=(3e-7, 5e-7))
    assert len(timed) >= 1
    assert len(service.search(pos=(10 * u.deg, 10 * u.deg, 1 * u.deg))) == 0


def test_access_rights(server) -> None:
    anon = rows(query(server.url, MAXREC=1000))
    assert set(anon["target_name"]) == {"del_Cep"} and len(anon) == 26
    assert len(rows(query(server.url, BOB, MAXREC=1000))) == 26
    alice = rows(query(server.url, ALICE, MAXREC=1000))
    assert len(alice) == 91 and set(alice["target_name"]) == {"del_Cep", "Algol", "R_Cas"}


def test_parameters(server) -> None:
    def n(auth=None, **params: object) -> int:
        return len(rows(query(server.url, auth, MAXREC=1000, **params)))

    ra, dec = DEL_CEP
    assert n(POS=f"CIRCLE {ra} {dec} 0.01") == 26
    assert n(POS=f"CIRCLE {ra} {dec + 0.3} 0.01") == 0  # outside the field of view
    assert n(POS=f"RANGE {ra - 1} {ra + 1} {dec - 1} {dec + 1}") == 26
    assert n(POS=f"POLYGON {ra - 1} {dec - 1} {ra + 1} {dec - 1} {ra + 1} {dec + 1} {ra - 1} "
             f"{dec + 1}") == 26
    # several POS are ORed; R_Cas near RA 0 through a RANGE wrapping 0/360
    assert n(ALICE, POS=["RANGE 359 1 50 52", "CIRCLE 10 10 1"]) == 26
    assert n(ALICE, POS="CIRCLE 0.2 51.4 1") == 26
    assert n(BAND="3.9e-7 4.1e-7") > 0 and n(BAND="1e-5 +Inf") == 0
    assert n(DPTYPE="image") == 26 and n(DPTYPE="cube") == 0
    assert n(CALIB=[0, 1]) == 26 and n(CALIB=3) == 0
    assert n(COLLECTION="skalnate") == 26 and n(COLLECTION="upjs") == 0
    assert n(INSTRUMENT="1.3 m Nasmyth-Cassegrain with FLI") == 26
    assert n(FACILITY="Skalnate Pleso Observatory", TARGET="del_Cep", FORMAT="image/png") == 26
    assert n(EXPTIME="0 1") == 0 and n(EXPTIME="-Inf +Inf") == 26
    assert n(FOV="0.2 0.3") == 26 and n(SPATRES="0 10") == 0 and n(POL="I") == 0
    did = rows(query(server.url, MAXREC=1))["obs_publisher_did"][0]
    prefix, _, rest = did.partition("?")
    assert list(rows(query(server.url, ID=f"{prefix.upper()}?{rest}"))["obs_publisher_did"]) == [
        did]  # the authority part of an IVOID is case-insensitive
    assert list(rows(query(server.url, ID=did))["obs_publisher_did"]) == [did]
    t = rows(query(server.url, MAXREC=1))
    region = t["s_region"][0]
    corners = SkyCoord(region[0::2], region[1::2], unit="deg")
    assert len(corners) == 4
    assert corners.separation(SkyCoord(*DEL_CEP, unit="deg")).deg.max() < 0.23


def test_documents(server) -> None:
    for params in ({}, {"MAXREC": 2}, {"MAXREC": 0}, {"POS": "CIRCLE 1 2"}):
        response = query(server.url, **params)
        assert votlint(response.content) == "", params
    overflow = query(server.url, MAXREC=2)
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in overflow.content
    assert len(rows(overflow)) == 2
    empty = query(server.url, MAXREC=0)
    assert len(rows(empty)) == 0 and b"OVERFLOW" in empty.content
    assert query(server.url, RESPONSEFORMAT="csv").headers["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("params", [
    {"POS": "CIRCLE 1 2"}, {"POS": "BOX 1 2 3 4"}, {"POS": "CIRCLE 1 95 1"}, {"BAND": "x y"},
    {"TIME": "2 1"}, {"CALIB": "one"}, {"MAXREC": "x"}, {"RESPONSEFORMAT": "image/gif"},
])
def test_errors(server, params: dict[str, str]) -> None:
    response = query(server.url, **params)
    assert response.status_code == 400
    vot = parse(io.BytesIO(response.content))
    status = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status[0].value == "ERROR" and status[0].content.startswith("UsageFault: ")


def test_vosi(server) -> None:
    caps = requests.get(f"{server.url}/sia/capabilities", timeout=30).text
    assert 'standardID="ivo://ivoa.net/std/SIA#query-2.0"' in caps
    assert requests.get(f"{server.url}/sia/availability", timeout=30).status_code == 200
