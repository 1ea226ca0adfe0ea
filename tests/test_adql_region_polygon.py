"""Constant POLYGONs and BOXes against a field-of-view square column (ObsCore's
s_region), and s_region through derived tables, CTEs and aliased joins.

The ADQL is translated with a schema declaring the footprint as voservice's
catalog does and run on SQLite and MariaDB over a table of random squares; the
answers are compared with numpy brute force (the winding-number test and
boundary samples of tests/test_shapes.py, the squares' vertices from
:func:`adql.geometry.box_vertices`, which test_obscore_region checks against
astropy) wherever sampling decides, and with :mod:`adql.shapes` everywhere.
The last tests ask the live servers the same through TAP.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from conftest import LiveServer
from footprint_tables import databases, run_both, schemas
from test_obscore_region import dids, tap
from test_shapes import boundary_samples as samples
from test_shapes import (
    min_pair_distance,
    offset,
    poly_vecs,
    random_centre,
    star_polygon,
    winding_inside,
)
from test_sia import ALGOL_RA, DEL_CEP_RA, R_CAS_RA, _in_square
from test_tap_sync import TRACE_MARKERS, status, sync

import adql
from adql import geometry, shapes

SCHEMA = schemas("ivoa.obscore", "squares", "obs_id", "s_ra", "s_dec")


def _squares(rng: np.random.Generator, n: int) -> list[tuple]:
    """(id, ra, dec, fov) rows, near RA 0 and the poles too, and one without a square."""
    out = []
    for i in range(n):
        ra, dec = random_centre(rng)
        fov = float(rng.choice([0.02, 0.5, 3.0, 20.0, 70.0]))
        out.append((i + 1, ra, dec, fov))
    out.append((n + 1, 10.0, 10.0, None))
    return out


SQUARES = _squares(np.random.default_rng(13), 60)


@pytest.fixture(scope="module")
def dbs():
    yield from databases("adql_region", "squares", "obs_id", "s_ra", "s_dec", SQUARES)


def run(dbs, adql_text: str, same: bool = True) -> dict[str, list[tuple]]:
    """The rows of the query on both databases, by dialect (asserted equal unless
    ``same`` is false)."""
    return run_both(dbs, SCHEMA, adql_text, same)


def ids(dbs, where: str) -> set[int]:
    rows = run(dbs, f"SELECT obs_id FROM ivoa.obscore WHERE {where}")["sqlite"]
    return {int(r[0]) for r in rows}


def _cases(rng: np.random.Generator, n: int) -> list[tuple[str, list[tuple[float, float]]]]:
    """(ADQL shape, vertices): star polygons and REC BOXes around and across the squares."""
    out = []
    for i in range(n):
        _, ra, dec, fov = SQUARES[int(rng.integers(0, len(SQUARES) - 1))]
        size = fov * float(rng.choice([0.3, 0.8, 1.5, 3.0]))
        size = min(size, 80.0)
        d = fov * float(rng.choice([0.0, 0.3, 0.7, 1.2]))
        cra, cdec = (float(x) for x in offset(ra, dec, d, rng.uniform(0, 360)))
        if i % 3 == 2:  # a BOX, as the REC draws it
            w, h = min(size * 1.6, 150.0), min(size * rng.uniform(0.5, 1.6), 150.0)
            verts = geometry.rec_box_vertices(cra, cdec, w, h)
            out.append((f"BOX('ICRS', {cra!r}, {cdec!r}, {w!r}, {h!r})", verts))
            continue
        verts = star_polygon(rng, cra, cdec, size)
        coords = ", ".join(f"{x!r}" for v in verts for x in v)
        out.append((f"POLYGON('ICRS', {coords})", verts))
    return out


def _reference(verts, square) -> tuple[bool | None, bool | None, bool | None]:
    """(intersects, polygon in square, square in polygon) by brute force; None where
    the sampling cannot decide (boundaries closer than the sample spacing)."""
    _, ra, dec, fov = square
    if fov is None:
        return False, False, False
    pv = poly_vecs(verts)
    sv = poly_vecs(geometry.box_vertices(ra, dec, fov, fov))
    far = math.radians(fov) + max(math.acos(np.clip(pv.mean(0) / np.linalg.norm(pv.mean(0))
                                                    @ v, -1, 1)) for v in pv)
    centre = poly_vecs([(ra, dec)])[0]
    if math.acos(np.clip(centre @ (pv.mean(0) / np.linalg.norm(pv.mean(0))), -1, 1)) > far:
        return False, False, False
    pb, gp = samples(pv, 300)
    sb, gs = samples(sv, 300)
    p_in_s, s_in_p = winding_inside(pb, sv), winding_inside(sb, pv)
    apart = min_pair_distance(pb, sb) > 2 * max(gp, gs)
    meet = True if p_in_s.any() or s_in_p.any() else (False if apart else None)
    p_in = False if not p_in_s.all() else (True if apart else None)
    s_in = False if not s_in_p.all() else (True if apart else None)
    return meet, p_in, s_in


def test_polygon_and_box_against_s_region(dbs) -> None:
    rng = np.random.default_rng(29)
    seen: dict[tuple[str, bool], int] = {}
    for shape, verts in _cases(rng, 36):
        poly = shapes.Polygon(verts)
        got = {
            "intersects": ids(dbs, f"1 = INTERSECTS({shape}, s_region)"),
            "polygon_in_square": ids(dbs, f"CONTAINS({shape}, s_region) = 1"),
            "square_in_polygon": ids(dbs, f"CONTAINS(s_region, {shape}) = 1"),
        }
        assert ids(dbs, f"INTERSECTS(s_region, {shape}) = 1") == got["intersects"], shape
        for sq in SQUARES:
            exact = (False, False, False) if sq[3] is None else (
                shapes.intersects(poly, shapes.box(*sq[1:], sq[3])),
                shapes.contains(poly, shapes.box(*sq[1:], sq[3])),
                shapes.contains(shapes.box(*sq[1:], sq[3]), poly))
            brute = _reference(verts, sq)
            for rel, want, ref in zip(got, exact, brute, strict=True):
                assert (sq[0] in got[rel]) == want, (rel, shape, sq)
                if ref is not None:
                    assert want == ref, (rel, shape, sq)
                    seen[(rel, ref)] = seen.get((rel, ref), 0) + 1
    # every relation was seen true and false (decided by brute force)
    assert len(seen) == 6, seen
    assert min(seen[(r, True)] for r in ("intersects", "polygon_in_square",
                                         "square_in_polygon")) >= 2, seen


def test_polygon_against_s_region_edge_cases(dbs) -> None:
    _, ra, dec, fov = SQUARES[0]
    corners = geometry.box_vertices(ra, dec, fov, fov)
    # the square itself (as a polygon): they intersect and each contains the other
    square = ", ".join(f"{x!r}" for v in corners for x in v)
    for where in (f"INTERSECTS(POLYGON({square}), s_region) = 1",
                  f"CONTAINS(POLYGON({square}), s_region) = 1",
                  f"CONTAINS(s_region, POLYGON({square})) = 1"):
        assert 1 in ids(dbs, where), where
    # a triangle touching the square's corner from outside only: they intersect
    far = geometry._centred_on(ra, dec, geometry._norm((1.0, 0.9, 0.9)))
    touch = [corners[2], far, geometry._centred_on(ra, dec, geometry._norm((1.0, 0.95, 0.6)))]
    coords = ", ".join(f"{x!r}" for v in touch for x in v)
    assert shapes.intersects(shapes.Polygon(touch), shapes.box(ra, dec, fov, fov))
    assert 1 in ids(dbs, f"INTERSECTS(POLYGON('ICRS', {coords}), s_region) = 1")
    assert 1 not in ids(dbs, f"CONTAINS(POLYGON('ICRS', {coords}), s_region) = 1")
    # the row without a field of view is never selected
    assert SQUARES[-1][0] not in ids(dbs, "CONTAINS(s_region, BOX(10, 10, 80, 80)) = 0")


@pytest.mark.parametrize(("query", "words"), [
    ("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(POLYGON(s_ra, s_dec, 1, 1, 2, 2), "
     "s_region) = 1", "POLYGON needs constant vertices"),
    ("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, s_region) = 1",
     "another region column"),
    ("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(s_region, POLYGON(0, 0, 170, 0, 0, 89, "
     "-170, 0, 10, -89)) = 1", "hemisphere"),
])
def test_refused_with_the_reason(query: str, words: str) -> None:
    for dialect in ("sqlite", "mysql"):
        with pytest.raises(adql.ADQLError) as err:
            adql.translate(query, SCHEMA[dialect], dialect)
        assert words in str(err.value), err.value


# -- s_region through derived tables, CTEs and aliases ---------------------------

def test_s_region_through_derived_tables_and_ctes(dbs) -> None:
    ra, dec = 0.0, 0.0
    inside = set()
    probes = []
    for _, sra, sdec, fov in SQUARES[:12]:
        if fov is not None:
            pra, pdec = (float(x) for x in offset(sra, sdec, fov * 0.2, 30.0))
            probes.append((pra, pdec))
    for ra, dec in probes:
        p = shapes.Point(ra, dec)
        inside = {s[0] for s in SQUARES if s[3] is not None
                  and shapes.intersects(p, shapes.box(*s[1:], s[3]))}
        assert inside
        pt = f"POINT('ICRS', {ra!r}, {dec!r})"
        forms = [
            f"SELECT t.obs_id FROM (SELECT obs_id, s_region FROM ivoa.obscore) AS t "
            f"WHERE CONTAINS({pt}, t.s_region) = 1",
            f"SELECT obs_id FROM (SELECT * FROM ivoa.obscore) AS t "
            f"WHERE 1 = INTERSECTS(s_region, {pt})",
            f"SELECT obs_id FROM (SELECT obs_id, s_region AS r FROM (SELECT * FROM "
            f"ivoa.obscore) AS a) AS b WHERE CONTAINS({pt}, b.r) = 1",
            f"WITH w AS (SELECT obs_id, s_region FROM ivoa.obscore) SELECT obs_id FROM w "
            f"WHERE CONTAINS({pt}, w.s_region) = 1",
            f"SELECT o.obs_id FROM ivoa.obscore AS o JOIN (SELECT obs_id AS i, s_region AS "
            f"reg FROM ivoa.obscore) AS d ON o.obs_id = d.i WHERE CONTAINS({pt}, d.reg) = 1",
            f"SELECT t.obs_id FROM (SELECT obs_id, s_region FROM ivoa.obscore UNION ALL "
            f"SELECT obs_id, s_region FROM ivoa.obscore) AS t "
            f"WHERE CONTAINS({pt}, t.s_region) = 1",
        ]
        for q in forms:
            got = {int(r[0]) for r in run(dbs, q)["sqlite"]}
            assert got == inside, q
    # the region read through a derived table is the same STC-S text, and AREA/CENTROID
    # and circles and polygons follow it too
    direct = run(dbs, "SELECT obs_id, s_region, AREA(s_region), COORD1(CENTROID(s_region)) "
                      "FROM ivoa.obscore", same=False)
    derived = run(dbs, "SELECT t.obs_id, t.s_region, AREA(t.s_region), "
                       "COORD1(CENTROID(t.s_region)) FROM (SELECT * FROM ivoa.obscore) AS t",
                  same=False)
    assert derived == direct
    # the STC-S text has the same digits on both (a double's shortest representation)
    assert [r[:2] for r in direct["sqlite"]] == [r[:2] for r in direct["mysql"]]
    assert any(r[1] is not None and str(r[1]).startswith("POLYGON ICRS ")
               for r in direct["sqlite"])
    circle = "CIRCLE('ICRS', 20.0, 30.0, 40.0)"
    box = "BOX('ICRS', 200.0, -30.0, 60.0, 50.0)"
    for pred in (f"INTERSECTS({circle}, t.s_region) = 1", f"CONTAINS(t.s_region, {box}) = 1",
                 f"INTERSECTS(t.s_region, {box}) = 1"):
        plain = ids(dbs, pred.replace("t.", ""))
        got = {int(r[0]) for r in run(dbs, "SELECT obs_id FROM (SELECT obs_id, s_region FROM "
                                           f"ivoa.obscore) AS t WHERE {pred}")["sqlite"]}
        assert got == plain and plain, pred
    # the hidden centre and size columns stay hidden
    cols = adql.translate("SELECT * FROM (SELECT obs_id, s_region FROM ivoa.obscore) AS t",
                          SCHEMA["sqlite"], "sqlite").columns
    assert [c.name for c in cols] == ["obs_id", "s_region"]


# -- through TAP, on both servers ----------------------------------------------------

@pytest.fixture(scope="module")
def lightcurves(server: LiveServer) -> list[tuple[str, float, float, float | None]]:
    """(did, s_ra, s_dec, s_fov) of every ivoa.obscore row (no square without s_fov)."""
    t = tap(server).run_sync("SELECT obs_publisher_did, s_ra, s_dec, s_fov FROM ivoa.obscore",
                             maxrec=100000).to_table()
    out = []
    for r in t:
        fov = None if np.ma.is_masked(r["s_fov"]) else float(r["s_fov"])
        out.append((str(r["obs_publisher_did"]), float(r["s_ra"]), float(r["s_dec"]),
                    fov if geometry.fov_usable(fov) else None))
    for ra0 in (DEL_CEP_RA, ALGOL_RA, R_CAS_RA):  # the targets with frames, among others
        assert any(abs(ra - ra0) < 1e-3 and fov for _, ra, _, fov in out)
    return out


def _tap_polygon_cases(lcs) -> list[tuple[str, list[tuple[float, float]]]]:
    out = []
    for ra0 in (DEL_CEP_RA, ALGOL_RA, R_CAS_RA):
        ra, dec, fov = max(((r, d, f) for _, r, d, f in lcs if abs(r - ra0) < 1e-3 and f),
                           key=lambda t: t[2])
        for scale in (0.4, 1.0, 2.5):
            w = fov * scale
            out.append((f"BOX('ICRS', {ra + 0.3 * fov!r}, {dec!r}, {w!r}, {w!r})",
                        geometry.rec_box_vertices(ra + 0.3 * fov, dec, w, w)))
        tri = [(ra - fov, dec - fov / 2), (ra + fov, dec - fov / 2), (ra, dec + fov)]
        out.append(("POLYGON('ICRS', " + ", ".join(f"{x!r}" for v in tri for x in v) + ")",
                    tri))
    return out


def test_tap_polygon_box_s_region(server: LiveServer, lightcurves) -> None:
    seen = set()
    for shape, verts in _tap_polygon_cases(lightcurves):
        refs = {did: _reference(verts, (0, ra, dec, fov))
                for did, ra, dec, fov in lightcurves}
        for k, where in enumerate((f"INTERSECTS({shape}, s_region) = 1",
                                   f"CONTAINS({shape}, s_region) = 1",
                                   f"CONTAINS(s_region, {shape}) = 1")):
            got = dids(server, where)
            for did, ref in refs.items():
                if ref[k] is not None:
                    assert (did in got) == ref[k], (where, did)
                    seen.add((k, ref[k]))
    assert seen == {(k, b) for k in range(3) for b in (True, False)}, seen


def test_tap_s_region_in_a_derived_table(server: LiveServer, lightcurves) -> None:
    _, ra, dec, _ = next(lc for lc in lightcurves if abs(lc[1] - ALGOL_RA) < 1e-3 and lc[3])
    p = SkyCoord([ra] * u.deg, [dec] * u.deg)
    want = {did for did, cra, cdec, fov in lightcurves
            if fov is not None and bool(_in_square(p, cra, cdec, fov)[0])}
    assert want
    pt = f"POINT('ICRS', {ra!r}, {dec!r})"
    t = tap(server).run_sync(
        "SELECT t.obs_publisher_did, t.s_region FROM (SELECT obs_publisher_did, s_region "
        f"FROM ivoa.obscore) AS t WHERE CONTAINS({pt}, t.s_region) = 1",
        maxrec=100000).to_table()
    assert {str(d) for d in t["obs_publisher_did"]} == want
    assert t.colnames == ["obs_publisher_did", "s_region"]
    assert all(len(str(r).split()) == 10 and str(r).startswith("POLYGON ICRS ")
               for r in t["s_region"])
    response = sync(server, "SELECT obs_id FROM ivoa.obscore WHERE "
                            "INTERSECTS(s_region, s_region) = 1")
    value, text = status(response.content)
    assert response.status_code == 400 and value == "ERROR" and "another region" in text
    assert not any(m in text for m in TRACE_MARKERS)
