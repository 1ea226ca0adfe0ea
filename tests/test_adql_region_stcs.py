"""ADQL 2.1 REGION() with the STC-S region literal of TAP 1.0 section 6.

Parsing (adql.stcs: every form the subset allows, every error with its
message), translation (a REGION shape is exactly the equivalent ADQL
constructor; Box is ADQL 2.1's BOX, section 4.2.9), and queries on SQLite and
MariaDB over a table of random positions, each with a field-of-view square
(a footprint column like ivoa.obscore.s_region): the answers are compared
with independent numpy/astropy membership (angles between unit vectors, the
winding-number test of tests/test_shapes.py, BOX from astropy's offset
frame).  The last tests ask the live servers through TAP.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse as parse_votable
from conftest import LiveServer
from footprint_tables import databases, run_both, schemas
from test_shapes import ang, offset, poly_vecs, random_centre, winding_inside, xyz
from test_tap_sync import TRACE_MARKERS, status, sync, tap

import adql
from adql import geometry, stcs

# -- parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("Position ICRS 10 20", stcs.Position(10, 20)),
    ("position 10 20", stcs.Position(10, 20)),
    ("POSITION UNKNOWNFrame 359.5 -90", stcs.Position(359.5, -90)),
    ("Circle ICRS 10 20 0.5", stcs.Circle(10, 20, 0.5)),
    ("circle icrs 1e1 +2.5E0 .5", stcs.Circle(10, 2.5, 0.5)),
    ("Circle 10 20 0", stcs.Circle(10, 20, 0)),
    ("Circle ICRS GEOCENTER 10 20 1", stcs.Circle(10, 20, 1)),
    ("Circle ICRS BARYCENTER SPHERICAL2 10 20 1 unit deg", stcs.Circle(10, 20, 1)),
    ("Circle TOPOCENTER 10 20 1", stcs.Circle(10, 20, 1)),
    ("Circle UNKNOWNFrame UNKNOWNRefPos SPHERICAL2 10 20 1", stcs.Circle(10, 20, 1)),
    ("  Circle\tICRS\n10   20 1  ", stcs.Circle(10, 20, 1)),
    ("Box ICRS 180 -30 2 1", stcs.Box(180, -30, 2, 1)),
    ("box 180.0 -30.0 2.0 1.0 UNIT DEG", stcs.Box(180, -30, 2, 1)),
    ("Polygon ICRS 10 20 11 20 11 21",
     stcs.Polygon(((10, 20), (11, 20), (11, 21)))),
    ("Polygon 1 2 3 4 5 6 7 8", stcs.Polygon(((1, 2), (3, 4), (5, 6), (7, 8)))),
    ("Union ICRS ( Circle 10 20 1 Polygon 1 2 3 4 5 6 )",
     stcs.Union((stcs.Circle(10, 20, 1), stcs.Polygon(((1, 2), (3, 4), (5, 6)))))),
    ("union(circle 1 2 3 circle 4 5 6 position 7 8)",
     stcs.Union((stcs.Circle(1, 2, 3), stcs.Circle(4, 5, 6), stcs.Position(7, 8)))),
    ("Intersection ICRS (Circle ICRS 1 2 3 Box ICRS 1 2 3 4)",
     stcs.Intersection((stcs.Circle(1, 2, 3), stcs.Box(1, 2, 3, 4)))),
    ("Not (Circle ICRS 1 2 3)", stcs.Not(stcs.Circle(1, 2, 3))),
    ("NOT(NOT(Position 1 2))", stcs.Not(stcs.Not(stcs.Position(1, 2)))),
    ("Union ( Intersection ( Circle 1 2 3 Not ( Circle 1 2 1 ) ) Position 0 0 )",
     stcs.Union((stcs.Intersection((stcs.Circle(1, 2, 3), stcs.Not(stcs.Circle(1, 2, 1)))),
                 stcs.Position(0, 0)))),
])
def test_parse_valid_forms(text: str, want: stcs.Region) -> None:
    assert stcs.parse(text) == want


@pytest.mark.parametrize(("text", "message"), [
    ("Circle ICRS 10 x", "REGION: expected a number after 'Circle ICRS 10', found 'x'"),
    ("Circle ICRS 10 20", "REGION: expected a number after 'Circle ICRS 10 20', found the end"),
    ("", "REGION: the text is empty"),
    ("   ", "REGION: the text is empty"),
    ("Circle FK5 10 20 1", "REGION: coordinate frame 'FK5' is not supported (in 'Circle FK5'): "
                           "this service only has ICRS positions"),
    ("Box GALACTIC 10 20 1 1", "frame 'GALACTIC' is not supported"),
    ("Union FK4 ( Circle 1 2 3 Circle 1 2 3 )", "frame 'FK4' is not supported"),
    ("Union ( Circle 1 2 3 Circle J2000 1 2 3 )", "frame 'J2000' is not supported"),
    ("Circle ICRS CARTESIAN2 1 2 3", "REGION: flavor 'CARTESIAN2' is not supported (in "
                                     "'Circle ICRS CARTESIAN2'): only SPHERICAL2"),
    ("Circle ICRS SPHERICAL3 1 2 3", "flavor 'SPHERICAL3' is not supported"),
    ("Circle 10 95 1", "REGION: declination 95 is outside [-90, 90] (in 'Circle 10 95')"),
    ("Position 10 -90.5", "declination -90.5 is outside [-90, 90]"),
    ("Polygon 1 2 3 4 5 -91", "declination -91 is outside [-90, 90] (in 'Polygon 1 2 3 4 5 "
                              "-91')"),
    ("Circle 10 20 -1", "REGION: a Circle radius cannot be negative: -1 (in 'Circle 10 20 -1')"),
    ("Box 1 2 -1 3", "a Box width cannot be negative: -1"),
    ("Box 1 2 1 -3", "a Box height cannot be negative: -3 (in 'Box 1 2 1 -3')"),
    ("Polygon 1 2 3 4", "REGION: a Polygon needs at least three vertices (six numbers), found 2 "
                        "in 'Polygon 1 2 3 4'"),
    ("Polygon 1 2 3 4 5 6 7", "expected a number (the latitude of the vertex) after "
                              "'Polygon 1 2 3 4 5 6 7', found the end of the text"),
    ("Polygon ICRS", "expected a number after 'Polygon ICRS', found the end of the text"),
    ("Union ( Circle 1 2 3 )", "REGION: a Union needs at least two regions in its parentheses, "
                               "found 1 in 'Union ( Circle 1 2 3 )'"),
    ("Intersection ( Circle 1 2 3 )", "REGION: an Intersection needs at least two regions"),
    ("Not ( Circle 1 2 3 Circle 1 2 3 )", "REGION: Not takes exactly one region in its "
                                          "parentheses, found 2"),
    ("Not ( )", "Not takes exactly one region in its parentheses, found 0"),
    ("Union ( Circle 1 2 3 Circle 1 2 3", "expected ')' after 'Union ( Circle 1 2 3 Circle 1 2 "
                                          "3', found the end of the text"),
    ("Union Circle 1 2 3", "expected '(' and the regions of the Union after 'Union', found "
                           "'Circle'"),
    ("Union ( Circle 1 2 3 4 )", "expected ')' or another region of the Union after "
                                 "'Union ( Circle 1 2 3', found '4'"),
    ("Circle 1 2 3 4", "REGION: unexpected '4' after 'Circle 1 2 3'"),
    ("Circle 1 2 3 )", "unexpected ')' after 'Circle 1 2 3'"),
    ("Ellipse ICRS 1 2 3 4 5", "REGION: Ellipse is not supported by this service"),
    ("Frob 1 2", "REGION: expected a region (Position, Circle, Box, Polygon, Union, "
                 "Intersection or Not) at the start of the text, found 'Frob'"),
    ("Circle 1 2 3 unit arcsec", "REGION: unit 'arcsec' is not supported"),
    ("Circle 1 2 3 unit", "expected a unit after 'Circle 1 2 3 unit', found the end"),
    ("Circle 1 2 1e999", "the number 1e999 is out of range"),
    ("Circle 1 2 nan", "expected a number after 'Circle 1 2', found 'nan'"),
    ("Circle 1 2 inf", "expected a number after 'Circle 1 2', found 'inf'"),
    ("Circle 1,5 2 3", "expected a number after 'Circle', found '1,5'"),
    ("Not (" * 60 + "Position 1 2" + ")" * 60, "nested too deeply"),
])
def test_parse_errors_name_the_problem_and_place(text: str, message: str) -> None:
    with pytest.raises(adql.ADQLError) as err:
        stcs.parse(text)
    assert message in err.value.message, err.value.message
    assert err.value.message.startswith("REGION: ")


# -- the fixture table: random positions with field-of-view squares -------------------

SCHEMA = schemas("t.obj", "objs", "id", "ra", "dec")

# the constant shapes of the tests: near RA 0 / 360, near a pole, overlapping
CIRCLES = {"a": (10.0, 20.0, 1.5), "b": (11.5, 20.5, 1.0), "c": (359.8, -30.0, 2.0),
           "d": (40.0, 88.5, 2.5)}
POLYGONS = {"p": [(9.0, 19.0), (12.5, 19.5), (12.0, 22.0), (10.5, 20.5), (9.5, 21.5)],
            "q": [(358.0, -32.0), (2.0, -31.5), (1.5, -28.0), (358.5, -27.5)]}
BOXES = {"x": (11.0, 19.5, 3.0, 2.0), "y": (0.5, -29.0, 4.0, 3.0), "z": (40.0, 87.0, 6.0, 4.0)}
EXACT = (12.25, -3.5)  # a row's exact position


def _rows(seed: int = 5) -> list[tuple]:
    """(id, ra, dec, fov): uniform on the sphere, clustered around the shapes, one exact
    position, and two rows without a position."""
    rng = np.random.default_rng(seed)
    pts = [random_centre(rng) for _ in range(600)]
    for ra, dec, r in CIRCLES.values():
        pts += [offset(ra, dec, float(rng.uniform(0, 2.5 * r)), float(rng.uniform(0, 360)))
                for _ in range(150)]
    out = [(i + 1, float(ra), float(dec), float(rng.choice([0.05, 0.4, 1.5])))
           for i, (ra, dec) in enumerate(pts)]
    n = len(out)
    return [*out, (n + 1, *EXACT, 0.1), (n + 2, None, None, None), (n + 3, 10.0, None, None)]


ROWS = _rows()
WITH_POS = [r for r in ROWS if r[1] is not None and r[2] is not None]
IDS = np.array([r[0] for r in WITH_POS])
WITHOUT = {r[0] for r in ROWS if r[1] is None or r[2] is None}
VECS = xyz(np.array([r[1] for r in WITH_POS]), np.array([r[2] for r in WITH_POS]))


@pytest.fixture(scope="module")
def dbs():
    yield from databases("adql_region_stcs", "objs", "id", "ra", "dec", ROWS)


def run(dbs, adql_text: str, same: bool = True) -> list[tuple]:
    """The rows of the query (sorted), the same on both databases unless ``same`` is
    false (computed doubles may differ in their last bit)."""
    return run_both(dbs, SCHEMA, adql_text, same)["sqlite"]


def ids(dbs, where: str) -> set[int]:
    return {int(r[0]) for r in run(dbs, f"SELECT id FROM t.obj WHERE {where}")}


# -- independent membership (numpy, astropy) -----------------------------------------

def _in_circle(ra: float, dec: float, r: float) -> np.ndarray:
    return ang(VECS, xyz(ra, dec)) <= math.radians(r)


def _in_polygon(verts) -> np.ndarray:
    return winding_inside(VECS, poly_vecs(verts))


def _in_box(ra: float, dec: float, w: float, h: float) -> np.ndarray:
    """ADQL 2.1 BOX: arms of w/2 along the great circle to the east and h/2 along the
    meridian from the centre; the sides are the great circles through the arm ends
    perpendicular to the arms.  In the frame centred on the box (astropy's offset
    frame: x to the centre, y east, z north) a side through the east arm end is the
    plane y = tan(w/2) x."""
    frame = SkyCoord(ra * u.deg, dec * u.deg).skyoffset_frame()
    pts = SkyCoord(VECS[:, 0], VECS[:, 1], VECS[:, 2], representation_type="cartesian",
                   frame="icrs").transform_to(frame)
    v = xyz(pts.lon.deg, pts.lat.deg)
    return ((v[:, 0] > 0) & (np.abs(v[:, 1]) <= math.tan(math.radians(w / 2)) * v[:, 0])
            & (np.abs(v[:, 2]) <= math.tan(math.radians(h / 2)) * v[:, 0]))


def _near_boundary() -> np.ndarray:
    """Rows within 1e-7 degrees of a circle's rim: no test decides by them."""
    out = np.zeros(len(VECS), bool)
    for ra, dec, r in CIRCLES.values():
        out |= np.abs(np.degrees(ang(VECS, xyz(ra, dec))) - r) < 1e-7
    return out


def _ids(mask: np.ndarray) -> set[int]:
    return {int(i) for i in IDS[mask]}


def _check(dbs, where: str, mask: np.ndarray, least: int = 3,
           among: set[int] | None = None) -> None:
    got = ids(dbs, where)
    if among is not None:
        got &= among
    skip = _ids(_near_boundary())
    assert got - skip == _ids(mask) - skip, where
    assert least <= len(got) <= len(IDS) - least, (where, len(got))  # decides something


def _circle(k: str) -> str:
    return "Circle ICRS {} {} {}".format(*CIRCLES[k])


def _polygon(k: str) -> str:
    return "Polygon ICRS " + " ".join(f"{x!r}" for v in POLYGONS[k] for x in v)


def _box(k: str) -> str:
    return "Box ICRS {} {} {} {}".format(*BOXES[k])


P = "POINT('ICRS', ra, dec)"


# -- simple shapes: the same as ADQL's constructors -----------------------------------

@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
def test_region_translates_as_the_constructor(dialect: str) -> None:
    pairs = [("Position ICRS 10 20", "POINT('ICRS', 10.0, 20.0)"),
             ("Circle ICRS 10 20 1.5", "CIRCLE('ICRS', 10.0, 20.0, 1.5)"),
             ("circle 10 20 1.5 unit deg", "CIRCLE(10.0, 20.0, 1.5)"),
             ("Box ICRS 11 19.5 3 2", "BOX('ICRS', 11.0, 19.5, 3.0, 2.0)"),
             ("Polygon 9 19 12.5 19.5 12 22", "POLYGON(9.0, 19.0, 12.5, 19.5, 12.0, 22.0)")]
    for region, shape in pairs:
        for form in ("SELECT id FROM t.obj WHERE CONTAINS({p}, {s}) = 1",
                     "SELECT id FROM t.obj WHERE INTERSECTS({s}, {p}) = 1",
                     "SELECT id FROM t.obj WHERE INTERSECTS(s_region, {s}) = 1",
                     "SELECT {s} AS g, AREA({s}) AS a, COORD1(CENTROID({s})) AS c FROM t.obj"):
            want = adql.translate(form.format(p=P, s=shape), SCHEMA[dialect], dialect)
            got = adql.translate(form.format(p=P, s=f"REGION('{region}')"), SCHEMA[dialect],
                                 dialect)
            assert got.sql == want.sql, (region, form)
            assert got.columns == want.columns


def test_region_shapes_select_the_rows_of_the_constructors(dbs) -> None:
    for k, (ra, dec, r) in CIRCLES.items():
        plain = ids(dbs, f"CONTAINS({P}, CIRCLE('ICRS', {ra}, {dec}, {r})) = 1")
        assert ids(dbs, f"CONTAINS({P}, REGION('{_circle(k)}')) = 1") == plain
        assert ids(dbs, f"1 = INTERSECTS(REGION('{_circle(k)}'), {P})") == plain
        _check(dbs, f"CONTAINS({P}, REGION('{_circle(k)}')) = 1", _in_circle(ra, dec, r))
    for k, verts in POLYGONS.items():
        coords = ", ".join(f"{x!r}" for v in verts for x in v)
        plain = ids(dbs, f"CONTAINS({P}, POLYGON('ICRS', {coords})) = 1")
        assert ids(dbs, f"CONTAINS({P}, REGION('{_polygon(k)}')) = 1") == plain
        _check(dbs, f"CONTAINS({P}, REGION('{_polygon(k)}')) = 1", _in_polygon(verts))
    for k, (ra, dec, w, h) in BOXES.items():
        plain = ids(dbs, f"CONTAINS({P}, BOX('ICRS', {ra}, {dec}, {w}, {h})) = 1")
        assert ids(dbs, f"CONTAINS({P}, REGION('{_box(k)}')) = 1") == plain
        _check(dbs, f"CONTAINS({P}, REGION('{_box(k)}')) = 1", _in_box(ra, dec, w, h))
    # a Position is the same position as a POINT
    exact = [r[0] for r in ROWS if (r[1], r[2]) == EXACT]
    assert ids(dbs, f"CONTAINS({P}, REGION('Position ICRS {EXACT[0]} {EXACT[1]}')) = 1") == \
        set(exact)


def test_region_with_the_footprint_column(dbs) -> None:
    for k in CIRCLES:
        ra, dec, r = CIRCLES[k]
        for form in ("INTERSECTS(s_region, {}) = 1", "CONTAINS(s_region, {}) = 1",
                     "CONTAINS({}, s_region) = 1"):
            assert ids(dbs, form.format(f"REGION('{_circle(k)}')")) == \
                ids(dbs, form.format(f"CIRCLE({ra}, {dec}, {r})")), (k, form)
    ra, dec, w, h = BOXES["x"]
    assert ids(dbs, f"INTERSECTS(REGION('{_box('x')}'), s_region) = 1") == \
        ids(dbs, f"INTERSECTS(BOX({ra}, {dec}, {w}, {h}), s_region) = 1") != set()


def test_area_centroid_coords_distance_and_output(dbs) -> None:
    # AREA of a cap of radius r: 2 pi (1 - cos r) steradians
    cap = 2 * math.pi * (1 - math.cos(math.radians(1))) * (180 / math.pi) ** 2
    (row,) = run(dbs, "SELECT TOP 1 AREA(REGION('Circle ICRS 0 0 1')), "
                      "AREA(CIRCLE('ICRS', 0, 0, 1)) FROM t.obj")
    assert row[0] == row[1] and row[0] == pytest.approx(cap, rel=1e-12)
    ra, dec, w, h = BOXES["x"]
    (row,) = run(dbs, f"SELECT TOP 1 AREA(REGION('{_box('x')}')), AREA(BOX({ra}, {dec}, {w}, "
                      f"{h})), COORD1(CENTROID(REGION('{_box('x')}'))), "
                      f"COORD2(CENTROID(REGION('{_circle('a')}'))) FROM t.obj")
    assert row[0] == row[1] and 0.9 * w * h < row[0] < w * h
    assert row[2] == pytest.approx(ra) and row[3] == CIRCLES["a"][1]
    (row,) = run(dbs, "SELECT TOP 1 COORD1(REGION('Position 12.5 -3')), "
                      "COORD2(REGION('Position 12.5 -3')), "
                      "DISTANCE(REGION('Position ICRS 0 0'), REGION('Position 0 1')) FROM t.obj")
    assert row[:2] == (12.5, -3.0) and row[2] == pytest.approx(1.0, abs=1e-12)
    # DISTANCE of a column position and a Position, in the select list and a WHERE
    got = run(dbs, f"SELECT id, DISTANCE({P}, REGION('Position 10 20')) FROM t.obj "
                   "WHERE DISTANCE(REGION('Position 10 20'), POINT(ra, dec)) < 1", same=False)
    d = np.degrees(ang(VECS, xyz(10.0, 20.0)))
    assert {r[0] for r in got} == _ids(d < 1)
    want = dict(zip(IDS.tolist(), d.tolist(), strict=True))
    assert all(abs(r[1] - want[r[0]]) < 1e-9 for r in got)
    # in the select list: the DALI type of the shape, as the constructor's
    t = adql.translate("SELECT REGION('Circle ICRS 10 20 1.5') AS c, "
                       "REGION('Position 1 2') AS p, REGION('Box 1 2 3 4') AS b FROM t.obj",
                       SCHEMA["sqlite"], "sqlite")
    assert [(c.datatype, c.arraysize, c.xtype, c.unit) for c in t.columns] == [
        ("double", "3", "circle", "deg"), ("double", "2", "point", "deg"),
        ("double", "*", "polygon", "deg")]
    rows = run(dbs, "SELECT TOP 1 REGION('Circle ICRS 10 20 1.5') FROM t.obj")
    assert rows == [(10.0, 20.0, 1.5)]


# -- compounds -----------------------------------------------------------------------

def test_compounds_against_numpy(dbs) -> None:
    a, b, c, d = (_in_circle(*CIRCLES[k]) for k in "abcd")
    p, q = (_in_polygon(POLYGONS[k]) for k in "pq")
    x = _in_box(*BOXES["x"])
    cases = [
        (f"Union ICRS ( {_circle('a')} {_circle('b')} )", a | b),
        (f"Union ( {_circle('a')} {_circle('c')} {_circle('d')} {_polygon('q')} )",
         a | c | d | q),
        (f"Intersection ICRS ( {_circle('a')} {_circle('b')} )", a & b),
        (f"Intersection ( {_circle('a')} {_polygon('p')} {_box('x')} )", a & p & x),
        (f"Not ( {_circle('a')} )", ~a),
        (f"Not ( {_polygon('q')} )", ~q),
        (f"Intersection ( {_circle('a')} Not ( {_circle('b')} ) )", a & ~b),
        (f"Union ( Intersection ( {_circle('a')} {_polygon('p')} ) Not ( Union ( "
         f"{_circle('a')} {_circle('c')} {_circle('d')} ) ) )", (a & p) | ~(a | c | d)),
        (f"Not ( Not ( {_circle('c')} ) )", c),
    ]
    for region, mask in cases:
        _check(dbs, f"CONTAINS({P}, REGION('{region}')) = 1", mask)
        _check(dbs, f"1 = INTERSECTS(REGION('{region}'), {P})", mask)
        _check(dbs, f"INTERSECTS({P}, REGION('{region}')) = 1", mask)
        # the complement, among the rows with a position (without one, a Not is NULL;
        # Union and Intersection are as their members)
        _check(dbs, f"CONTAINS({P}, REGION('{region}')) = 0", ~mask, among=set(IDS.tolist()))
        if region.startswith("Not"):
            for truth in (0, 1):
                assert not WITHOUT & ids(dbs, f"CONTAINS({P}, REGION('{region}')) = {truth}")


def test_intersects_shapes_with_a_union(dbs) -> None:
    """INTERSECTS(CIRCLE(column centre), Union): two caps meet when their centres are
    at most the sum of the radii apart; a cap and a position when it is within it."""
    r0 = 0.7
    dist = {k: np.degrees(ang(VECS, xyz(ra, dec))) for k, (ra, dec, _) in CIRCLES.items()}
    region = f"Union ( {_circle('a')} {_circle('c')} Position ICRS 40 88.5 )"
    mask = ((dist["a"] <= CIRCLES["a"][2] + r0) | (dist["c"] <= CIRCLES["c"][2] + r0)
            | (dist["d"] <= r0))  # circle d is centred on (40, 88.5)
    for where in (f"INTERSECTS(CIRCLE('ICRS', ra, dec, {r0}), REGION('{region}')) = 1",
                  f"INTERSECTS(REGION('{region}'), CIRCLE(ra, dec, {r0})) = 1"):
        _check(dbs, where, mask)
    # the footprint column: the OR of the members, the AND for an Intersection
    parts = [f"REGION('{_circle('a')}')", f"REGION('{_polygon('q')}')"]
    union = ids(dbs, "INTERSECTS(s_region, REGION('Union (" + _circle("a") + " "
                     + _polygon("q") + ")')) = 1")
    assert union == ids(dbs, f"INTERSECTS(s_region, {parts[0]}) = 1") | ids(
        dbs, f"INTERSECTS({parts[1]}, s_region) = 1") and union
    # a square lies within two caps of radius < 90 when its four corners do
    both = ids(dbs, f"CONTAINS(s_region, REGION('Intersection ({_circle('a')} "
                    f"{_circle('b')})')) = 1")
    want = set()
    for r in WITH_POS:
        corners = poly_vecs(geometry.box_vertices(r[1], r[2], r[3], r[3]))
        if all((ang(corners, xyz(*CIRCLES[k][:2])) <= math.radians(CIRCLES[k][2])).all()
               for k in "ab"):
            want.add(r[0])
    assert both == want and both


def test_constant_regions_are_decided_in_python(dbs) -> None:
    n = len(ROWS)
    for where, truth in [
        (f"CONTAINS(POINT(10, 20), REGION('Union ({_circle('c')} {_circle('a')})')) = 1", True),
        (f"CONTAINS(POINT(10, 20), REGION('Not ({_circle('a')})')) = 1", False),
        (f"INTERSECTS(REGION('Intersection ({_circle('a')} {_circle('b')})'), "
         "POINT(10.8, 20.2)) = 1", True),
        (f"CONTAINS(REGION('Position 11 19.5'), REGION('Intersection ({_box('x')} "
         f"Not ({_circle('b')}))')) = 1", True),
        (f"CONTAINS(CIRCLE(10, 20, 0.1), REGION('Intersection ({_circle('a')} "
         f"{_polygon('p')})')) = 1", True),
        (f"INTERSECTS(CIRCLE(30, 20, 1), REGION('Union ({_circle('a')} {_box('y')})')) = 1",
         False),
    ]:
        sql = adql.translate(f"SELECT id FROM t.obj WHERE {where}", SCHEMA["sqlite"],
                             "sqlite").sql
        assert sql.endswith("(1 = 1)" if truth else "(1 = 0)"), (where, sql)
        assert len(ids(dbs, where)) == (n if truth else 0), where


UNION = f"REGION('Union ({_circle('a')} {_circle('b')})')"
INTER = f"REGION('Intersection ({_circle('a')} {_circle('b')})')"
NOT = f"REGION('Not ({_circle('a')})')"


@pytest.mark.parametrize(("query", "message"), [
    (f"SELECT id FROM t.obj WHERE CONTAINS(CIRCLE(ra, dec, 1), {UNION}) = 1",
     "CONTAINS of a CIRCLE in a REGION Union is not supported by this service"),
    (f"SELECT id FROM t.obj WHERE CONTAINS(s_region, {UNION}) = 1",
     "CONTAINS of the region column 's_region' in a REGION Union is not supported"),
    (f"SELECT id FROM t.obj WHERE CONTAINS(POLYGON(1, 2, 3, 4, 5, 6), {NOT}) = 1",
     "CONTAINS of a POLYGON in a REGION Not is not supported by this service"),
    (f"SELECT id FROM t.obj WHERE INTERSECTS(CIRCLE(ra, dec, 1), {INTER}) = 1",
     "INTERSECTS of a CIRCLE and a REGION Intersection is not supported by this service"),
    (f"SELECT id FROM t.obj WHERE INTERSECTS({NOT}, s_region) = 1",
     "INTERSECTS of the region column 's_region' and a REGION Not is not supported"),
    (f"SELECT id FROM t.obj WHERE CONTAINS({UNION}, CIRCLE(ra, dec, 1)) = 1",
     "CONTAINS of a REGION Union in a CIRCLE is not supported by this service"),
    (f"SELECT id FROM t.obj WHERE CONTAINS({UNION}, {INTER}) = 1",
     "CONTAINS of a REGION Union in a REGION Intersection is not supported"),
    (f"SELECT id FROM t.obj WHERE INTERSECTS({NOT}, {UNION}) = 1",
     "INTERSECTS of a REGION Not and a REGION Union is not supported"),
    ("SELECT id FROM t.obj WHERE INTERSECTS(CIRCLE(ra, dec, 1), REGION('Union (Circle 1 2 3 "
     "Intersection (Circle 1 2 3 Circle 2 2 3))')) = 1",
     "INTERSECTS of a CIRCLE and a REGION Intersection is not supported"),
    (f"SELECT AREA({UNION}) FROM t.obj", "AREA of a REGION Union is not supported"),
    (f"SELECT CENTROID({NOT}) FROM t.obj", "CENTROID of a REGION Not is not supported"),
    (f"SELECT COORD1({INTER}) FROM t.obj", "COORD1 of a REGION Intersection is not supported"),
    (f"SELECT DISTANCE({UNION}, POINT(1, 2)) FROM t.obj",
     "DISTANCE of a REGION Union is not supported"),
    (f"SELECT {UNION} FROM t.obj",
     "a REGION Union can only be used in CONTAINS and INTERSECTS on this service"),
    (f"SELECT id FROM t.obj WHERE {NOT} IS NULL", "a REGION Not can only be used in CONTAINS"),
    (f"SELECT id FROM t.obj ORDER BY {INTER}",
     "a REGION Intersection can only be used in CONTAINS"),
    (f"SELECT COUNT({UNION}) FROM t.obj", "a REGION Union can only be used in CONTAINS"),
    ("SELECT id FROM t.obj WHERE CONTAINS(POINT(ra, dec), REGION('Circle FK5 1 2 3')) = 1",
     "REGION: coordinate frame 'FK5' is not supported"),
    ("SELECT id FROM t.obj WHERE CONTAINS(POINT(ra, dec), REGION('Box 1 2 0 1')) = 1",
     "REGION: a Box is ADQL's BOX here: BOX width and height must be in (0, 180) degrees"),
    ("SELECT id FROM t.obj WHERE CONTAINS(POINT(ra, dec), REGION('Polygon 0 0 170 0 0 89 -170 "
     "0 10 -89')) = 1", "hemisphere"),
])
def test_refused_with_the_feature_named(query: str, message: str) -> None:
    for dialect in ("sqlite", "mysql"):
        with pytest.raises(adql.ADQLError) as err:
            adql.translate(query, SCHEMA[dialect], dialect)
        assert message in err.value.message, err.value.message
        assert err.value.line == 1 and err.value.column > 1


# -- through TAP, on both servers -----------------------------------------------------

def test_tap_region(server: LiveServer) -> None:
    targets = tap(server).run_sync("SELECT target, right_ascension, declination FROM "
                                   "skvo.target", maxrec=100000).to_table()
    names = [str(t) for t in targets["target"]]
    v = xyz(np.asarray(targets["right_ascension"], float),
            np.asarray(targets["declination"], float))
    (ra1, dec1), (ra2, dec2) = ((float(targets[k]["right_ascension"]),
                                 float(targets[k]["declination"])) for k in (0, 1))
    region = (f"Union ICRS (Circle {ra1!r} {dec1!r} 5 Intersection (Circle {ra2!r} {dec2!r} "
              f"30 Not (Circle ICRS {ra2!r} {dec2!r} 0.01)))")
    d1, d2 = (np.degrees(ang(v, xyz(ra, dec))) for ra, dec in ((ra1, dec1), (ra2, dec2)))
    mask = (d1 <= 5) | ((d2 <= 30) & (d2 > 0.01))
    assert mask.any() and not mask.all() and not mask[1]
    got = tap(server).run_sync(
        "SELECT target FROM skvo.target WHERE CONTAINS(POINT('ICRS', right_ascension, "
        f"declination), REGION('{region}')) = 1", maxrec=100000).to_table()
    assert sorted(str(t) for t in got["target"]) == sorted(np.array(names)[mask].tolist())
    # a REGION shape in the select list is the DALI type of the shape
    response = sync(server, "SELECT TOP 1 REGION('Circle ICRS 10 20 1.5') AS c "
                            "FROM skvo.target")
    assert response.status_code == 200
    table = parse_votable(io.BytesIO(response.content)).get_first_table()
    (field,) = table.fields
    assert (field.datatype, field.arraysize, field.xtype) == ("double", "3", "circle")
    assert [float(x) for x in table.array["c"][0]] == [10.0, 20.0, 1.5]
    # errors reach the client as a DALI error document naming the problem
    for query, words in [
        ("SELECT target FROM skvo.target WHERE CONTAINS(POINT(right_ascension, declination), "
         "REGION('Circle GALACTIC 10 20 1')) = 1", "frame 'GALACTIC' is not supported"),
        ("SELECT target FROM skvo.target WHERE CONTAINS(POINT(right_ascension, declination), "
         "REGION('Circle ICRS 10 x 1')) = 1", "expected a number after 'Circle ICRS 10'"),
        ("SELECT target FROM skvo.target WHERE CONTAINS(CIRCLE(right_ascension, declination, 1), "
         "REGION('Union (Circle 1 2 3 Circle 4 5 6)')) = 1",
         "CONTAINS of a CIRCLE in a REGION Union is not supported"),
    ]:
        response = sync(server, query)
        value, text = status(response.content)
        assert response.status_code == 400 and value == "ERROR" and words in text, text
        assert not any(m in text for m in TRACE_MARKERS)


def test_token_soup_only_ever_gives_adql_errors() -> None:
    """Random STC-S-like texts in every place a REGION can stand: a translation or an
    ADQLError, never another exception."""
    words = ["Circle", "Box", "Polygon", "Position", "Union", "Intersection", "Not", "(",
             ")", "ICRS", "FK5", "GEOCENTER", "SPHERICAL2", "CARTESIAN2", "unit", "deg",
             "arcsec", "10", "-5", "95", "0", "1e3", ".5", "x", "Ellipse"]
    forms = [f"SELECT id FROM t.obj WHERE CONTAINS({P}, REGION('{{}}')) = 1",
             "SELECT id FROM t.obj WHERE INTERSECTS(REGION('{}'), CIRCLE(ra, dec, 1)) = 0",
             "SELECT id FROM t.obj WHERE CONTAINS(s_region, REGION('{}')) = 1",
             "SELECT REGION('{}') AS r, AREA(REGION('{}')) AS a FROM t.obj"]
    rng = np.random.default_rng(3)
    ok = 0
    for _ in range(1500):
        text = " ".join(rng.choice(words, int(rng.integers(1, 14))))
        if rng.random() < 0.5:  # mostly well-formed starts
            text = str(rng.choice(["Circle ICRS 10 20 1", "Union ( Circle 1 2 3 Position 1 2 "
                                   "Not ( Box 1 2 3 4 ) )", "Polygon 1 2 3 4 5 6"])) + " " + text
        for form in forms:
            try:
                adql.translate(form.format(text, text), SCHEMA["mysql"], "mysql")
                ok += 1
            except adql.ADQLError:
                pass
    assert ok > 0
