"""ivoa.obscore.s_region: the field-of-view square as a DALI polygon, and the ADQL
geometry on it (ObsTAP clients' queries) on SQLite and MariaDB, checked against
independent astropy/numpy computations (the references of test_sia/test_shapes).
"""

from __future__ import annotations

import math
import sqlite3

import astropy.units as u
import numpy as np
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.table import Table
from conftest import ALICE, LiveServer
from test_shapes import xyz
from test_sia import (
    ALGOL_RA,
    DEL_CEP_RA,
    R_CAS_RA,
    _circle_ref,
    _from_offsets,
    _in_square,
    _offset_frame,
    _square_extent,
    _square_points,
)
from test_sia import query as sia_query
from test_sia import rows as sia_rows
from test_tap_sync import TRACE_MARKERS, status, sync

from adql import geometry, shapes, sqlite_functions


def tap(server: LiveServer) -> pyvo.dal.TAPService:
    session = requests.Session()
    session.auth = ALICE
    return pyvo.dal.TAPService(f"{server.url}/tap", session=session)


def dids(server: LiveServer, where: str) -> set[str]:
    result = tap(server).run_sync(f"SELECT obs_publisher_did FROM ivoa.obscore WHERE {where}",
                                  maxrec=100000)
    return {str(d) for d in result.to_table()["obs_publisher_did"]}


@pytest.fixture(scope="module")
def lightcurves(server: LiveServer) -> list[tuple[str, float, float, float | None, object]]:
    """(did, s_ra, s_dec, s_fov, s_region) of every light curve."""
    t = tap(server).run_sync("SELECT obs_publisher_did, s_ra, s_dec, s_fov, s_region "
                             "FROM ivoa.obscore", maxrec=100000).to_table()
    out = []
    for r in t:
        fov = None if np.ma.is_masked(r["s_fov"]) else float(r["s_fov"])
        region = None if np.ma.is_masked(r["s_region"]) else _stcs(str(r["s_region"]))
        out.append((str(r["obs_publisher_did"]), float(r["s_ra"]), float(r["s_dec"]), fov,
                    region))
    for ra0 in (DEL_CEP_RA, ALGOL_RA, R_CAS_RA):  # the targets with frames, among others
        assert any(abs(ra - ra0) < 1e-3 for _, ra, _, _, _ in out)
    return out


def _stcs(text: str) -> np.ndarray:
    """The vertices of an STC-S 'POLYGON ICRS lon lat ...'."""
    words = text.split()
    assert words[:2] == ["POLYGON", "ICRS"], text
    return np.array([float(w) for w in words[2:]])


def _target(lcs, ra0: float) -> tuple[float, float, float]:
    """(ra, dec, fov) of the target at ra0, with its largest field of view (the squares
    of one target are nested)."""
    return max(((ra, dec, fov) for _, ra, dec, fov, _ in lcs if abs(ra - ra0) < 1e-3),
               key=lambda t: t[2])


def test_s_region_is_the_field_of_view_square(server: LiveServer, lightcurves) -> None:
    result = tap(server).run_sync("SELECT TOP 1 s_region FROM ivoa.obscore")
    field = result.votable.get_first_table().get_field_by_id_or_name("s_region")
    # ObsCore 1.1 types s_region adql:REGION: an STC-S string, no unit
    assert (field.datatype, field.arraysize, field.xtype, field.unit) == (
        "char", "*", "adql:REGION", None)
    meta = tap(server).run_sync(
        "SELECT datatype, arraysize, xtype FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'ivoa.obscore' AND column_name = 's_region'").to_table()
    assert [tuple(str(v) for v in meta[0])] == [("char", "*", "adql:REGION")]
    frames = sia_rows(sia_query(server.url, ALICE, MAXREC=1000))
    sia = {(round(float(r["s_ra"]), 6), round(float(r["s_dec"]), 6), float(r["s_fov"])):
           list(r["s_region"]) for r in frames}
    compared = 0
    for did, ra, dec, fov, region in lightcurves:
        assert fov is not None and 0 < fov < 180, did  # every sample instrument has one
        assert region is not None and len(region) == 8, did
        # the corners (-a, -a), (a, -a), (a, a), (-a, a) of the target's offset frame
        a = fov / 2
        want = _from_offsets(ra, dec, [-a, a, a, -a], [-a, -a, a, a])
        got = SkyCoord(region[0::2] * u.deg, region[1::2] * u.deg)
        assert got.separation(want).deg.max() < 1e-9, did
        assert np.all((region[0::2] >= 0) & (region[0::2] < 360))
        # the same square SIA gives each frame of the light curve's target
        frame_region = sia.get((round(ra, 6), round(dec, 6), fov))
        if frame_region is not None:
            assert np.allclose(frame_region, region, atol=1e-9)
            compared += 1
    assert compared >= 3


def _probes(lcs) -> list[tuple[str, float, float]]:
    """Points just inside and just outside every edge and corner of each square,
    the centres, and points across RA 0 around R Cas."""
    out = []
    for ra0 in (DEL_CEP_RA, ALGOL_RA, R_CAS_RA):
        ra, dec, fov = _target(lcs, ra0)
        gx, gy = _square_extent(fov)
        for scale, tag in ((0.999, "in"), (1.001, "out")):
            for px, py in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1)):
                x, y = px * gx * scale, py * gy * scale
                lon = math.degrees(math.atan(x))
                lat = math.degrees(math.atan2(y, math.hypot(1, x)))
                c = _from_offsets(ra, dec, [lon], [lat])[0]
                out.append((f"{ra0}-{px}{py}-{tag}", float(c.ra.deg % 360), float(c.dec.deg)))
        out.append((f"{ra0}-centre", ra, dec))
    out += [("far", 10.0, 10.0), ("north-pole", 0.0, 90.0), ("wrap-0", 0.0, 51.4)]
    return out


def _expected_points(lcs, ra: float, dec: float) -> set[str]:
    p = SkyCoord([ra] * u.deg, [dec] * u.deg)
    return {did for did, cra, cdec, fov, _ in lcs if bool(_in_square(p, cra, cdec, fov)[0])}


def _expected_all(lcs, probes) -> dict[str, set[str]]:
    """_expected_points of every probe, each square tested against all probes at once."""
    p = SkyCoord([q[1] for q in probes] * u.deg, [q[2] for q in probes] * u.deg)
    out: dict[str, set[str]] = {name: set() for name, _, _ in probes}
    for did, cra, cdec, fov, _ in lcs:
        for (name, _, _), hit in zip(probes, _in_square(p, cra, cdec, fov), strict=True):
            if hit:
                out[name].add(did)
    return out


def test_contains_point_topcat_obstap(server: LiveServer, lightcurves) -> None:
    probes = _probes(lightcurves)
    expected = _expected_all(lightcurves, probes)
    name, ra, dec = probes[0]
    assert expected[name] == _expected_points(lightcurves, ra, dec)  # the same reference
    seen_in = seen_out = 0
    for name, ra, dec in probes[::3]:
        want = expected[name]
        got = dids(server, f"CONTAINS(POINT('ICRS', {ra!r}, {dec!r}), s_region) = 1")
        assert got == want, name
        assert dids(server, f"1 = INTERSECTS(s_region, POINT('ICRS', {ra!r}, {dec!r}))") == want
        seen_in += bool(want)
        seen_out += not want
    assert seen_in and seen_out
    # TOPCAT's multi-object ObsTAP query: the positions come from an uploaded table
    upload = Table({"name": [p[0] for p in probes], "ra": [p[1] for p in probes],
                    "dec": [p[2] for p in probes]})
    t = tap(server).run_sync(
        "SELECT u.name, o.obs_publisher_did FROM TAP_UPLOAD.probes AS u JOIN ivoa.obscore AS o"
        " ON 1 = CONTAINS(POINT('ICRS', u.ra, u.dec), o.s_region)",
        uploads={"probes": upload}, maxrec=100000).to_table()
    got_pairs = {(str(n), str(d)) for n, d in zip(t["name"], t["obs_publisher_did"],
                                                   strict=True)}
    want_pairs = {(name, did) for name, _, _ in probes for did in expected[name]}
    assert got_pairs == want_pairs
    assert any(n.endswith("-in") for n, _ in got_pairs)
    matched = {n for n, _ in got_pairs}
    assert any(name.endswith("-out") and name not in matched for name, _, _ in probes)


def _circle_cases(lcs) -> list[tuple[str, float, float, float]]:
    cases = []
    ra, dec, fov = _target(lcs, DEL_CEP_RA)
    corner = math.degrees(math.acos(math.cos(math.radians(fov / 2)) ** 2))
    for name, gap in (("corner-touch", 0.01), ("corner-miss", -0.01)):
        c = _from_offsets(ra, dec, [corner * 0.7071 + 0.1], [corner * 0.7071 + 0.1])[0]
        far = SkyCoord(ra * u.deg, dec * u.deg).separation(c).deg
        cases.append((name, float(c.ra.deg), float(c.dec.deg), float(far - corner + gap)))
    c = _from_offsets(ra, dec, [0.0], [fov / 2 + 0.05])[0]
    cases.append(("edge-miss", float(c.ra.deg), float(c.dec.deg), 0.045))
    cases.append(("edge-touch", float(c.ra.deg), float(c.dec.deg), 0.055))
    cases.append(("inside-small", ra, dec, 0.01))
    cases.append(("all-sky", 123.0, -45.0, 180.0))
    # R Cas straddles RA 0: circles on the other side of it
    rra, rdec, rfov = _target(lcs, R_CAS_RA)
    east = (rra + rfov / 2 / math.cos(math.radians(rdec))) % 360
    cases.append(("wrap-touch", (east + 0.05) % 360, rdec, 0.06))
    cases.append(("wrap-miss", (east + 0.05) % 360, rdec, 0.02))
    ara, adec, afov = _target(lcs, ALGOL_RA)
    cases.append(("two-targets", (ara + DEL_CEP_RA) / 2, 60.0, 40.0))
    return cases


def _expected_circle(lcs, ra: float, dec: float, r: float) -> set[str]:
    pred, ring = _circle_ref(ra, dec, r)
    out = set()
    for did, cra, cdec, fov, _ in lcs:
        if r >= 180 or pred(_square_points(cra, cdec, fov)).any() or _in_square(
                ring, cra, cdec, fov).any():
            out.add(did)
    return out


def test_intersects_circle_pyvo_style(server: LiveServer, lightcurves) -> None:
    outcomes = set()
    for name, ra, dec, r in _circle_cases(lightcurves):
        want = _expected_circle(lightcurves, ra, dec, r)
        got = dids(server, f"1 = INTERSECTS(CIRCLE('ICRS', {ra!r}, {dec!r}, {r!r}), s_region)")
        assert got == want, name
        swapped = dids(server, f"INTERSECTS(s_region, CIRCLE({ra!r}, {dec!r}, {r!r})) = 1")
        assert swapped == want, name
        outcomes.add((name.split("-")[-1], bool(want)))
    assert ("touch", True) in outcomes and ("miss", False) in outcomes


def test_contains_circle_both_ways(server: LiveServer, lightcurves) -> None:
    ra, dec, fov = _target(lightcurves, ALGOL_RA)
    a = fov / 2
    inner = math.degrees(math.atan(_square_extent(fov)[0]))  # centre to the side edges
    corner = math.degrees(math.acos(math.cos(math.radians(a)) ** 2))
    big = _from_offsets(ra, dec, [-a], [a])[0]  # a cap over a hemisphere holding squares
    cases = [(ra, dec, inner * 0.99), (ra, dec, inner * 1.01), (ra, dec, corner * 1.001),
             (ra, dec, corner * 0.999), (float(big.ra.deg), float(big.dec.deg), 120.0)]
    largest = {did for did, sra, _, sfov, _ in lightcurves
               if abs(sra - ALGOL_RA) < 1e-3 and sfov == fov}
    outcomes = []
    for cra, cdec, r in cases:
        pred, ring = _circle_ref(cra, cdec, r)
        circle_in = {did for did, sra, sdec, sfov, _ in lightcurves
                     if _in_square(ring, sra, sdec, sfov).all()}
        square_in = {did for did, sra, sdec, sfov, _ in lightcurves
                     if pred(_square_points(sra, sdec, sfov)).all()}
        circle = f"CIRCLE('ICRS', {cra!r}, {cdec!r}, {r!r})"
        assert dids(server, f"CONTAINS({circle}, s_region) = 1") == circle_in, r
        assert dids(server, f"CONTAINS(s_region, {circle}) = 1") == square_in, r
        outcomes.append((largest <= circle_in, largest <= square_in,
                         not largest & circle_in, not largest & square_in))
    # the largest Algol square holds the first circle, not the second (1% larger); the
    # third circle holds it, the fourth (0.2% smaller) does not
    assert outcomes[0][0] and outcomes[1][2] and outcomes[2][1] and outcomes[3][3]
    assert outcomes[4][1]
    assert dids(server, "CONTAINS(s_region, POINT(10, 10)) = 1") == set()


def _girard_area(region: np.ndarray) -> float:
    """Area (deg^2) of a spherical polygon from its interior angles (Girard)."""
    v = xyz(region[0::2], region[1::2])
    n = len(v)
    total = 0.0
    for i in range(n):
        p, a, b = v[i], v[i - 1], v[(i + 1) % n]
        ta, tb = a - (a @ p) * p, b - (b @ p) * p
        total += math.acos(np.clip(ta @ tb / np.linalg.norm(ta) / np.linalg.norm(tb), -1, 1))
    return (total - (n - 2) * math.pi) * (180 / math.pi) ** 2


def test_area_centroid_distance(server: LiveServer, lightcurves) -> None:
    t = tap(server).run_sync(
        "SELECT obs_publisher_did, AREA(s_region) AS sky_area, "
        "DISTANCE(CENTROID(s_region), POINT('ICRS', 10.0, 50.0)) AS d, "
        "COORD1(CENTROID(s_region)) AS cra FROM ivoa.obscore", maxrec=100000).to_table()
    by_did = {did: (ra, dec, region) for did, ra, dec, _, region in lightcurves}
    assert len(t) == len(lightcurves)
    for row in t:
        ra, dec, region = by_did[str(row["obs_publisher_did"])]
        assert math.isclose(float(row["sky_area"]), _girard_area(region), rel_tol=1e-6)
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(10 * u.deg, 50 * u.deg))
        assert math.isclose(float(row["d"]), sep.deg, rel_tol=1e-9)
        assert math.isclose(float(row["cra"]), ra, abs_tol=1e-12)
    assert t["sky_area"].unit == u.deg ** 2


@pytest.mark.parametrize(("query", "words"), [
    ("INTERSECTS(s_region, s_region) = 1", "another region"),
    ("CONTAINS(s_region, REGION('Union ICRS (Circle 1 2 3 Circle 4 5 6)')) = 1",
     "REGION Union"),
])
def test_unsupported_geometry_is_refused(server: LiveServer, query: str, words: str) -> None:
    response = sync(server, f"SELECT obs_id FROM ivoa.obscore WHERE {query}")
    value, text = status(response.content)
    assert response.status_code == 400 and value == "ERROR"
    assert words in text and "not supported" in text
    assert not any(m in text for m in TRACE_MARKERS)


def test_capabilities_declare_the_geometry(server: LiveServer) -> None:
    caps = requests.get(f"{server.url}/tap/capabilities", timeout=30).text
    geo = caps.split("features-adqlgeo")[1].split("</languageFeatures>")[0]
    forms = set(geo.split("<form>")[1:])
    names = {f.split("</form>")[0] for f in forms}
    assert names == {"POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE",
                     "COORD1", "COORD2", "COORDSYS", "AREA", "CENTROID", "REGION"}
    assert "s_region" in geo


# -- the SQL predicates themselves, against adql.shapes (exact) and brute force -----

def test_fov_sql_matches_exact_shapes() -> None:
    con = sqlite3.connect(":memory:")
    sqlite_functions.register(con)
    rng = np.random.default_rng(7)
    lit = geometry.num
    counts: dict[tuple[str, bool], int] = {}
    for _ in range(600):
        cra, cdec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
        fov = float(rng.choice([0.01, 0.3, 5.0, 40.0, 120.0, 179.0]))
        square = shapes.box(cra, cdec, fov, fov)
        s = fov * rng.uniform(0, 1.3)
        off = SkyCoord(lon=rng.uniform(-s, s) * u.deg,
                       lat=rng.uniform(-min(s, 90), min(s, 90)) * u.deg,
                       frame=_offset_frame(cra, cdec)).icrs
        pra, pdec = off.ra.deg, off.dec.deg
        r = float(rng.choice([0.0, 0.001, fov * 0.2, fov * 0.6, 45.0, 100.0, 170.0]))
        args = [lit(cra), lit(cdec), lit(fov), lit(fov)]
        point = geometry.point_in_fov_sql(lit(pra), lit(pdec), *args)
        want_point = bool(_in_square(SkyCoord([pra] * u.deg, [pdec] * u.deg), cra, cdec,
                                     fov)[0])
        checks = [("point", point, want_point)]
        circle = shapes.Circle(pra, pdec, r)
        for rel, want in (("intersects", shapes.intersects(circle, square)),
                          ("circle_in_square", shapes.contains(circle, square)),
                          ("square_in_circle", shapes.contains(square, circle))):
            sql = geometry.circle_fov_sql(lit(pra), lit(pdec), lit(r), *args[:3], args[3],
                                          rel, "sqlite")
            checks.append((rel, sql, want))
        for rel, sql, want in checks:
            assert bool(con.execute(f"SELECT {sql}").fetchone()[0]) == want, (
                rel, cra, cdec, fov, pra, pdec, r)
            counts[(rel, want)] = counts.get((rel, want), 0) + 1
    assert len(counts) == 8  # every relation seen both true and false
    for fov in (0.01, 1.0, 60.0, 179.0):
        area = con.execute(f"SELECT {geometry.fov_area_sql(lit(fov))}").fetchone()[0]
        assert math.isclose(area, _girard_area(np.array(geometry.fov_region(1, 2, fov))),
                            rel_tol=1e-6)
    assert geometry.fov_region(1, 2, None) is None and geometry.fov_region(1, 2, 180) is None
