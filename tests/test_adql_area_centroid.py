"""AREA and CENTROID (ADQL 2.1 4.2.x) of POLYGONs whose vertices are column expressions,
on SQLite and MariaDB, checked against independent numpy references: the area by
L'Huilier's theorem (spherical excess from the side lengths) summed over a fan around
a point inside the polygon, the centroid as the direction of the summed vertex unit
vectors (the definition the constant case uses).  Also: constant polygons give the
same values as the column ones, CENTROID feeds COORD1/COORD2/DISTANCE, and a TAP
client gets AREA with the unit deg**2.
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pymysql
import pytest
import pyvo
import requests
from conftest import ALICE, DB_PREFIX, LiveServer, pymysql_database

import adql
from adql import Column, Schema, Table
from adql.sqlite_functions import register
from voservice import query as tap_query

RUNNERS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mariadb)]
DB = "adql_area_centroid"
REL = 1e-9
#: agreement of two directions (degrees): 1e-9 of a radian and then some
SEP = 1e-10

V = [(f"ra{i}", f"dec{i}") for i in range(1, 5)]


def unit(ra, dec) -> np.ndarray:
    a, d = np.radians(ra), np.radians(dec)
    return np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def side(u: np.ndarray, v: np.ndarray) -> float:
    """Great-circle distance (radians), well conditioned at all sizes."""
    return math.atan2(np.linalg.norm(np.cross(u, v)), float(u @ v))


def lhuilier(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
    """Area (steradians) of the spherical triangle p, q, r (L'Huilier's theorem)."""
    a, b, c = side(q, r), side(p, r), side(p, q)
    s = (a + b + c) / 2
    t = (math.tan(s / 2) * math.tan((s - a) / 2) * math.tan((s - b) / 2)
         * math.tan((s - c) / 2))
    return 4 * math.atan(math.sqrt(max(t, 0.0)))


def ref_area(vertices, inner: np.ndarray | None = None) -> float:
    """Square degrees of the polygon: the fan of L'Huilier triangles around ``inner``
    (a point seeing every edge in order, so that the triangles tile it), or the
    triangle itself."""
    vs = [unit(ra, dec) for ra, dec in vertices]
    if inner is None:
        assert len(vs) == 3
        sr = lhuilier(*vs)
    else:
        sr = sum(lhuilier(inner, vs[i], vs[(i + 1) % len(vs)]) for i in range(len(vs)))
    return sr * (180 / math.pi) ** 2


def ref_centroid(vertices) -> tuple[float, float]:
    m = sum(unit(ra, dec) for ra, dec in vertices)
    m = m / np.linalg.norm(m)
    return float(np.degrees(np.arctan2(m[1], m[0])) % 360.0), float(
        np.degrees(np.arcsin(np.clip(m[2], -1, 1))))


def separation(ra1, dec1, ra2, dec2) -> float:
    return math.degrees(side(unit(ra1, dec1), unit(ra2, dec2)))


def _polygon(rng, ra0, dec0, r, nv, clockwise):
    """nv vertices at distances r * (0.6..1) from (ra0, dec0) in position-angle order
    (gaps of 40-160 degrees, so the centre sees every edge), RA in [0, 360)."""
    c = unit(ra0, dec0)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    north = np.array([-math.sin(d0) * math.cos(a0), -math.sin(d0) * math.sin(a0),
                      math.cos(d0)])
    east = np.array([-math.sin(a0), math.cos(a0), 0.0])
    while True:
        gaps = rng.dirichlet(np.full(nv, 4.0)) * 360
        if gaps.min() >= 40 and gaps.max() <= 160:
            break
    pas = np.radians(rng.uniform(0, 360) + np.concatenate([[0], np.cumsum(gaps)[:-1]]))
    out = []
    for pa in pas:
        d = math.radians(r * rng.uniform(0.6, 1.0))
        v = math.cos(d) * c + math.sin(d) * (math.cos(pa) * north + math.sin(pa) * east)
        out.append((float(math.degrees(math.atan2(v[1], v[0])) % 360.0),
                    float(math.degrees(math.asin(max(-1.0, min(1.0, v[2])))))))
    if clockwise:
        out.reverse()
    return out


def _make_rows(seed: int = 2026):
    """(id, nv, ra1, dec1, ..., ra4, dec4) and, by id, (vertices, centre vector)."""
    rng = np.random.default_rng(seed)
    centres = [(float(rng.uniform(0, 360)), float(math.degrees(math.asin(rng.uniform(-1, 1)))))
               for _ in range(40)]
    centres += [(0.0, 0.0), (359.99, 10.0), (0.01, -35.0), (0.0, 89.5), (123.0, 90.0),
                (200.0, -90.0), (300.0, -89.2), (45.0, 88.0), (0.3, 60.0), (359.7, -75.0)]
    rows, polys = [], {}
    k = 0
    for ra0, dec0 in centres:
        for nv in (3, 4):
            for clockwise in (False, True):
                k += 1
                r = float(10 ** rng.uniform(-4, math.log10(60)))
                if abs(dec0) >= 88:  # around the pole: it is inside
                    r = float(rng.uniform((90 - abs(dec0)) / 0.6 + 0.3, 8))
                verts = _polygon(rng, ra0, dec0, r, nv, clockwise)
                flat = [x for v in verts for x in v] + [None] * (2 * (4 - nv))
                rows.append((k, nv, *flat))
                polys[k] = (verts, unit(ra0, dec0))
    # a vertex exactly on RA 0 / 360 and a symmetric triangle about RA 0
    for verts in ([(359.0, 0.0), (1.0, 0.0), (0.0, 1.0)],
                  [(0.0, 10.0), (358.5, 12.0), (1.5, 12.0)],
                  [(360.0, -5.0), (2.0, -5.0), (1.0, -3.0)]):
        k += 1
        rows.append((k, 3, *[x for v in verts for x in v], None, None))
        polys[k] = (verts, None)
    # NULL in one vertex coordinate
    nulls = []
    for pos in (2, 3, 5, 7, 9):
        k += 1
        row = [k, 4 if pos == 9 else 3, 10.0, 20.0, 12.0, 20.0, 11.0, 22.0, 10.5, 23.0]
        row[pos] = None
        rows.append(tuple(row))
        nulls.append(k)
    return rows, polys, nulls


ROWS, POLYS, NULL_IDS = _make_rows()
COLS = ("id", "nv", *[c for v in V for c in v])


def _schema(q: str) -> Schema:
    cols = [Column("id", "long"), Column("nv", "int")]
    cols += [Column(c, "double", unit="deg") for c in COLS[2:]]
    return Schema([Table("skvo.polys", tuple(cols), f"{q}polys{q}")])


SCHEMA = {"sqlite": _schema('"'), "mysql": _schema("`")}


@pytest.fixture(scope="module")
def lite():
    conn = sqlite3.connect(":memory:")
    register(conn)
    conn.execute(f"CREATE TABLE polys ({', '.join(COLS)})")
    conn.executemany(f"INSERT INTO polys VALUES ({', '.join('?' * len(COLS))})", ROWS)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def my():
    conn = pymysql_database(DB)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS polys")
    cur.execute("CREATE TABLE polys (id BIGINT, nv INT, "
                + ", ".join(f"{c} DOUBLE" for c in COLS[2:]) + ")")
    cur.executemany(f"INSERT INTO polys VALUES ({', '.join(['%s'] * len(COLS))})", ROWS)
    yield conn
    cur.execute(f"DROP DATABASE IF EXISTS `{DB_PREFIX}{DB}`")
    conn.close()


@pytest.fixture(params=RUNNERS)
def run(request):
    """run(adql) -> (rows as tuples of float/None, the translation's output columns)."""
    dialect = request.param
    conn = request.getfixturevalue("lite" if dialect == "sqlite" else "my")

    def go(q: str):
        t = adql.translate(q, SCHEMA[dialect], dialect)
        if dialect == "sqlite":
            rows = conn.execute(t.sql).fetchall()
        else:
            cur = conn.cursor(pymysql.cursors.SSCursor)
            cur.execute(t.sql)
            rows = cur.fetchall()
            tap_query._check_warnings(conn, cur, t)  # no warning (a query error there)
            cur.close()
        return [tuple(None if v is None else float(v) for v in r) for r in rows], t.columns

    return go


def _poly(n: int) -> str:
    return "POLYGON('ICRS', " + ", ".join(f"{a}, {d}" for a, d in V[:n]) + ")"


def _const(verts) -> str:
    return "POLYGON('ICRS', " + ", ".join(f"{ra!r}, {dec!r}" for ra, dec in verts) + ")"


def _check_centroid(ra, dec, verts) -> None:
    era, edec = ref_centroid(verts)
    assert 0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0
    assert separation(ra, dec, era, edec) <= SEP, (ra, dec, era, edec)
    assert math.isclose(dec, edec, rel_tol=REL, abs_tol=SEP)


@pytest.mark.parametrize("nv", [3, 4])
def test_area_and_centroid_of_column_polygons(run, nv: int) -> None:
    p = _poly(nv)
    rows, cols = run(f"SELECT id, AREA({p}) AS a, CENTROID({p}) AS c, "
                     f"COORD1(CENTROID({p})) AS c1, COORD2(CENTROID({p})) AS c2 "
                     f"FROM skvo.polys WHERE nv = {nv} ORDER BY id")
    assert [c.name for c in cols] == ["id", "a", "c", "c1", "c2"]
    assert cols[1].unit == "deg**2" and cols[1].datatype == "double"
    assert cols[2].xtype == "point"
    seen = 0
    for k, area, ra, dec, c1, c2 in rows:
        k = int(k)
        if k in NULL_IDS:
            assert (area, ra, dec, c1, c2) == (None,) * 5
            continue
        verts, inner = POLYS[k]
        assert math.isclose(area, ref_area(verts, inner if nv == 4 else None),
                            rel_tol=REL), (k, verts)
        _check_centroid(ra, dec, verts)
        assert (c1, c2) == (ra, dec)
        seen += 1
    assert seen >= 100 if nv == 3 else seen >= 90
    if nv == 3:
        assert {k for k, *_ in rows} >= set(NULL_IDS[:-1])
    else:
        assert NULL_IDS[-1] in {k for k, *_ in rows}


def test_clockwise_and_anticlockwise_give_the_same_smaller_area(run) -> None:
    fwd = "POLYGON('ICRS', ra1, dec1, ra2, dec2, ra3, dec3, ra4, dec4)"
    back = "POLYGON('ICRS', ra4, dec4, ra3, dec3, ra2, dec2, ra1, dec1)"
    rows, _ = run(f"SELECT id, AREA({fwd}), AREA({back}) FROM skvo.polys "
                  "WHERE nv = 4 AND dec4 IS NOT NULL")
    assert len(rows) >= 90
    for _, a, b in rows:
        assert math.isclose(a, b, rel_tol=REL) and 0 < a < 2 * math.pi * (180 / math.pi) ** 2


def test_column_expressions_and_mixed_vertices(run) -> None:
    # the example of the task: vertices that are expressions of one position
    rows, cols = run("SELECT id, ra1, dec1, AREA(POLYGON('ICRS', ra1, dec1, ra1 + 1, dec1, "
                     "ra1, dec1 + 1)) AS a, CENTROID(POLYGON('ICRS', ra1, dec1, ra1 + 1, dec1, "
                     "ra1, dec1 + 1)) FROM skvo.polys WHERE dec1 BETWEEN -80 AND 80")
    assert cols[3].unit == "deg**2" and len(rows) > 50
    assert any(ra is None for _, ra, *_ in rows)
    for _, ra, dec, area, cra, cdec in rows:
        if ra is None:
            assert (area, cra, cdec) == (None, None, None)
            continue
        verts = [(ra, dec), (ra + 1, dec), (ra, dec + 1)]
        assert math.isclose(area, ref_area(verts), rel_tol=REL)
        _check_centroid(cra, cdec, verts)
    # a constant vertex among column ones makes a column polygon: a row's triangle with
    # its third vertex written as a constant
    ids = [k for k, (verts, _) in sorted(POLYS.items()) if len(verts) == 3][::9]
    assert len(ids) >= 10
    for k in ids:
        verts = POLYS[k][0]
        p = f"POLYGON('ICRS', ra1, dec1, ra2, dec2, {verts[2][0]!r}, {verts[2][1]!r})"
        rows, _ = run(f"SELECT AREA({p}), CENTROID({p}) FROM skvo.polys WHERE id = {k}")
        (area, cra, cdec), = rows
        assert math.isclose(area, ref_area(verts), rel_tol=REL)
        _check_centroid(cra, cdec, verts)


def test_constant_polygon_equals_the_column_polygon(run) -> None:
    ids = [k for k in sorted(POLYS) if k % 7 == 1][:12]
    for k in ids:
        verts, _ = POLYS[k]
        cp, p = _const(verts), _poly(len(verts))
        rows, _ = run(f"SELECT AREA({cp}), COORD1(CENTROID({cp})), COORD2(CENTROID({cp})), "
                      f"AREA({p}), COORD1(CENTROID({p})), COORD2(CENTROID({p})) "
                      f"FROM skvo.polys WHERE id = {k}")
        (a0, ra0, dec0, a1, ra1, dec1), = rows
        assert math.isclose(a0, a1, rel_tol=REL)
        assert separation(ra0, dec0, ra1, dec1) <= SEP
        assert math.isclose(dec0, dec1, rel_tol=REL, abs_tol=SEP)


def test_distance_from_the_centroid(run) -> None:
    p = _poly(3)
    rows, cols = run(f"SELECT id, DISTANCE(CENTROID({p}), POINT('ICRS', 10.0, 50.0)) AS d "
                     "FROM skvo.polys WHERE nv = 3")
    assert cols[1].unit == "deg"
    for k, d in rows:
        if int(k) in NULL_IDS:
            assert d is None
            continue
        era, edec = ref_centroid(POLYS[int(k)][0])
        assert math.isclose(d, separation(era, edec, 10.0, 50.0), rel_tol=1e-9, abs_tol=1e-9)
    # as a cone search (a bounding box on the centroid's RA and DEC, then the exact test),
    # also around RA 0 / 360
    for ra0, dec0, r in ((10.0, 50.0, 60.0), (0.0, 0.0, 30.0), (359.9, 5.0, 20.0),
                         (0.0, 89.0, 10.0)):
        got, _ = run(f"SELECT id FROM skvo.polys WHERE nv = 3 AND "
                     f"DISTANCE(CENTROID({p}), POINT('ICRS', {ra0}, {dec0})) < {r}")
        want = {k for k, (verts, _) in POLYS.items() if len(verts) == 3
                and separation(*ref_centroid(verts), ra0, dec0) < r}
        assert want and {int(k) for k, in got} == want


def test_null_vertices_give_null(run) -> None:
    rows, _ = run("SELECT AREA(POLYGON('ICRS', ra1, dec1, ra2, dec2, NULL, 3)), "
                  "COORD1(CENTROID(POLYGON('ICRS', ra1, dec1, ra2, dec2, 4, NULL))), "
                  "COORD2(CENTROID(POLYGON('ICRS', ra1, dec1, ra2, dec2, 4, NULL))) "
                  "FROM skvo.polys WHERE id = 1")
    assert rows == [(None, None, None)]


def test_aggregates_and_conditions(run) -> None:
    p = _poly(4)
    rows, _ = run(f"SELECT COUNT(*), SUM(AREA({p})), MAX(COORD2(CENTROID({p}))) "
                  f"FROM skvo.polys WHERE nv = 4 AND AREA({p}) > 1")
    want = [(ref_area(v, c), ref_centroid(v)[1]) for v, c in POLYS.values()
            if len(v) == 4 and ref_area(v, c) > 1]
    (count, total, top), = rows
    assert count == len(want) > 5
    assert math.isclose(total, sum(a for a, _ in want), rel_tol=REL)
    assert math.isclose(top, max(d for _, d in want), rel_tol=REL)


def test_sql_size_grows_at_most_quadratically() -> None:
    cols = tuple(Column(f"c{i}", "double") for i in range(40))
    schema = Schema([Table("t", cols, '"t"')])
    sizes = {}
    for n in (4, 8, 16):
        p = "POLYGON(" + ", ".join(f"c{2 * i}, c{2 * i + 1}" for i in range(n)) + ")"
        for dialect in ("sqlite", "mysql"):
            t = adql.translate(f"SELECT AREA({p}), CENTROID({p}) FROM t", schema, dialect)
            sizes[n, dialect] = len(t.sql)
    for dialect in ("sqlite", "mysql"):
        assert sizes[16, dialect] < 4.5 * sizes[8, dialect] < 4.5 ** 2 * sizes[4, dialect]
        assert sizes[16, dialect] < 400_000


def test_tap_client_gets_area_in_square_degrees(server: LiveServer) -> None:
    session = requests.Session()
    session.auth = ALICE
    service = pyvo.dal.TAPService(f"{server.url}/tap", session=session)
    poly = ("POLYGON('ICRS', right_ascension, declination, right_ascension + 1, declination, "
            "right_ascension, declination + 1)")
    t = service.run_sync(
        f"SELECT TOP 20 right_ascension, declination, AREA({poly}) AS sky_area, "
        f"CENTROID({poly}) AS c, COORD1(CENTROID({poly})) AS cra, "
        f"COORD2(CENTROID({poly})) AS cdec FROM skvo.target "
        "WHERE declination BETWEEN -85 AND 85").to_table()
    assert len(t) > 0
    assert str(t["sky_area"].unit) == "deg2"
    for row in t:
        ra, dec = float(row["right_ascension"]), float(row["declination"])
        verts = [(ra, dec), (ra + 1, dec), (ra, dec + 1)]
        assert math.isclose(float(row["sky_area"]), ref_area(verts), rel_tol=REL)
        _check_centroid(float(row["cra"]), float(row["cdec"]), verts)
        c = [float(x) for x in row["c"]]
        assert separation(c[0], c[1], float(row["cra"]), float(row["cdec"])) <= SEP


def test_polygon_through_a_derived_table_and_with(run) -> None:
    p = _poly(3)
    direct, _ = run(f"SELECT id, AREA({p}), CENTROID({p}) FROM skvo.polys WHERE nv = 3 "
                    "ORDER BY id")
    derived, _ = run(f"SELECT t.id, AREA(t.p), CENTROID(t.p) FROM (SELECT id, {p} AS p "
                     "FROM skvo.polys WHERE nv = 3) AS t ORDER BY t.id")
    cte, _ = run(f"WITH w AS (SELECT id, {p} AS p FROM skvo.polys WHERE nv = 3) "
                 "SELECT id, AREA(p), CENTROID(p) FROM w ORDER BY id")
    assert len(direct) > 100 and direct == derived == cte
