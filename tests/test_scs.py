"""Simple Cone Search 1.03 against live servers (SQLite and MariaDB)."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from conftest import ALICE, BOB

from voservice.demo import STARS

#: targets of the sample tree only restricted sources observe
RESTRICTED_ONLY = {"l_Car"}


def votlint(data: bytes) -> str:
    """stilts votlint's complaints about a document ('' when clean)."""
    done = subprocess.run(["stilts", "votlint", "votable=-"], input=data, capture_output=True,
                          timeout=60)
    return (done.stdout + done.stderr).decode().strip()


def cone(url: str, auth: tuple[str, str] | None = None, **params: object) -> requests.Response:
    response = requests.get(f"{url}/scs", params=params, auth=auth, timeout=30)
    assert response.status_code == 200
    return response


def table(response: requests.Response):  # noqa: ANN201 - astropy Table
    return parse(io.BytesIO(response.content)).get_first_table().to_table()


def expected(ra: float, dec: float, sr: float, visible: set[str]) -> set[str]:
    centre = SkyCoord(ra, dec, unit="deg")
    out = set()
    for star in STARS:
        if star.name in visible and centre.separation(SkyCoord(star.ra, star.dec,
                                                               unit="deg")).deg <= sr:
            out.add(star.name)
    return out


ALL_NAMES = {s.name for s in STARS}


@pytest.mark.parametrize(("ra", "dec", "sr"), [
    (0.0, 51.0, 2.0),        # R_Cas at RA 359.6: the cone wraps RA 0/360
    (359.9, 51.4, 0.5),
    (146.0, -62.0, 3.0),     # l_Car below -60: restricted only
    (47.04, 40.96, 0.01),    # Algol
    (290.0, 40.0, 10.0),     # bet_Lyr and RR_Lyr
    (140.0, 56.0, 3.4),
    (0.0, 90.0, 10.0),       # the pole
])
def test_cone_matches_astropy(server, ra: float, dec: float, sr: float) -> None:
    for auth, visible in ((None, ALL_NAMES - RESTRICTED_ONLY), (ALICE, ALL_NAMES)):
        t = table(cone(server.url, auth, RA=ra, DEC=dec, SR=sr))
        assert set(t["target_name"]) == expected(ra, dec, sr, visible), (auth, ra, dec, sr)
        if len(t):
            got = SkyCoord(t["ra"], t["dec"], unit="deg").separation(
                SkyCoord(ra, dec, unit="deg")).deg
            assert np.allclose(got, t["distance"], atol=1e-9)
            assert list(t["distance"]) == sorted(t["distance"])


def test_access_rights(server) -> None:
    """l_Car (only restricted data) exists for ALICE only; BOB sees what anonymous sees."""
    args = {"RA": 146.3, "DEC": -62.5, "SR": 1}
    assert len(table(cone(server.url, None, **args))) == 0
    assert len(table(cone(server.url, BOB, **args))) == 0
    assert list(table(cone(server.url, ALICE, **args))["target_name"]) == ["l_Car"]
    # Algol: anonymous counts only the series it may see
    algol = {"RA": 47.04, "DEC": 40.96, "SR": 0.1, "VERB": 3}
    anon = table(cone(server.url, None, **algol))
    alice = table(cone(server.url, ALICE, **algol))
    assert anon["n_series"][0] < alice["n_series"][0]
    assert "vhao" in alice["collections"][0].split()


def test_fields_and_verb(server) -> None:
    for verb, n in ((1, 5), (2, 13), (3, 19)):
        response = cone(server.url, RA=47.04, DEC=40.96, SR=1, VERB=verb)
        assert response.headers["Content-Type"].startswith("text/xml")
        fields = parse(io.BytesIO(response.content)).get_first_table().fields
        assert len(fields) == n
        for ucd in ("ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"):
            assert [f.ucd for f in fields].count(ucd) == 1
        assert votlint(response.content) == ""
    t = table(cone(server.url, RA=47.04, DEC=40.96, SR=1))
    assert t["id"][0] == "HD 19356"
    assert t["observations_url"][0].startswith(server.url + "/tap/sync?")


@pytest.mark.parametrize("params", [
    {"DEC": 10, "SR": 1},
    {"RA": "abc", "DEC": 10, "SR": 1},
    {"RA": 10, "DEC": 91, "SR": 1},
    {"RA": 400, "DEC": 10, "SR": 1},
    {"RA": 10, "DEC": 10, "SR": -1},
    {"RA": 10, "DEC": 10, "SR": 11},
    {"RA": 10, "DEC": 10, "SR": "nan"},
    {"RA": 10, "DEC": 10, "SR": 1, "VERB": 7},
    {"RA": 10, "DEC": 10, "SR": 1, "RESPONSEFORMAT": "image/gif"},
])
def test_errors(server, params: dict[str, object]) -> None:
    response = cone(server.url, **params)
    vot = parse(io.BytesIO(response.content))
    assert [i.name for i in vot.infos] == ["Error"]
    assert vot.infos[0].value
    assert votlint(response.content) == ""


def test_pyvo_sees_errors(server) -> None:
    with pytest.raises(pyvo.dal.DALQueryError, match="maximum"):
        pyvo.dal.SCSService(f"{server.url}/scs").search(pos=(10, 10), radius=11)


def test_sr_zero_and_maxrec(server) -> None:
    response = cone(server.url, RA=10, DEC=10, SR=0)
    assert len(table(response)) == 0 and votlint(response.content) == ""
    big = {"RA": 290, "DEC": 40, "SR": 10}
    assert len(table(cone(server.url, **big))) == 2
    response = cone(server.url, MAXREC=1, **big)
    assert len(table(response)) == 1
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in response.content
    assert votlint(response.content) == ""
    response = cone(server.url, MAXREC=0, **big)
    assert len(table(response)) == 0 and b"OVERFLOW" in response.content
    # POST and case-insensitive names, other formats
    posted = requests.post(f"{server.url}/scs", data={"ra": 290, "dec": 40, "sr": 10}, timeout=30)
    assert len(table(posted)) == 2
    csv = cone(server.url, RESPONSEFORMAT="csv", **big)
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == 3


def test_pyvo(server) -> None:
    service = pyvo.dal.SCSService(f"{server.url}/scs")
    results = service.search(pos=(0.0, 51.0), radius=2.0)
    assert len(results) == 1
    record = results[0]
    assert record.id == "HD 224490"
    assert record.pos.ra.deg == pytest.approx(359.603625)
    assert {c.name for c in service.columns} >= {"id", "ra", "dec"}
    session = requests.Session()
    session.auth = ALICE
    alice = pyvo.dal.SCSService(f"{server.url}/scs", session=session)
    assert len(alice.search(pos=(146.3, -62.5), radius=0.5)) == 1


def test_stilts_cone(server) -> None:
    done = subprocess.run(
        ["stilts", "cone", f"serviceurl={server.url}/scs?", "lon=359.9", "lat=51.4",
         "radius=0.5", "verb=3", "omode=out", "ofmt=csv"],
        capture_output=True, timeout=120, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and "R_Cas" in lines[1]


def test_vosi(server) -> None:
    caps = requests.get(f"{server.url}/scs/capabilities", timeout=30)
    assert caps.status_code == 200
    assert 'standardID="ivo://ivoa.net/std/ConeSearch"' in caps.text
    assert "<maxSR>10.0</maxSR>" in caps.text
    avail = requests.get(f"{server.url}/scs/availability", timeout=30)
    assert "<vosi:available>true</vosi:available>" in avail.text
