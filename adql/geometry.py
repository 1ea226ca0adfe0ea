"""Spherical geometry helpers: cone bounding boxes and SQL for exact tests.

All angles are in degrees.  The one implementation of the cone search
predicate (:func:`cone_sql`) is shared by the ADQL translator and the Simple
Cone Search service.  :func:`polygon_sql` tests a position against a constant
polygon with great-circle edges, :func:`circle_polygon_sql` a circle around a
position against one (INTERSECTS and CONTAINS both ways); :mod:`adql.shapes`
evaluates the same predicates exactly in Python when every shape is constant.
:func:`polygon_area_sql` and :func:`polygon_centroid_sql` write ADQL's AREA and
CENTROID of a polygon with column vertices as :func:`polygon_area` and
:func:`polygon_centroid` compute them for constant ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

# padding added to bounding boxes so that rounding never excludes a row the
# exact test would accept (3.6 micro-arcseconds)
_PAD = 1e-9


class BBox(NamedTuple):
    """Index-friendly bounds of a cone: a declination band and RA ranges.

    ``ra_ranges`` is None when no RA cut applies (the cone reaches a pole or
    covers all RAs); otherwise one or two (lo, hi) ranges within [0, 360].
    """

    dec_min: float
    dec_max: float
    ra_ranges: tuple[tuple[float, float], ...] | None


def _check(ra: float, dec: float, r: float) -> None:
    for v in (ra, dec, r):
        if not math.isfinite(v):
            raise ValueError("cone parameters must be finite numbers")
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"declination {dec} outside [-90, 90]")
    if r < 0:
        raise ValueError(f"negative radius {r}")


def cone_bbox(ra: float, dec: float, r: float) -> BBox:
    """Bounding box of the cone of radius ``r`` around (``ra``, ``dec``).

    The RA half-width is asin(sin r / cos dec), the exact extent of a small
    circle not containing a pole; ranges are split across RA 0/360.
    """
    _check(ra, dec, r)
    ra = ra % 360.0
    dec_min = max(-90.0, dec - r - _PAD)
    dec_max = min(90.0, dec + r + _PAD)
    if r >= 90.0 - abs(dec) - _PAD or r >= 90.0:
        return BBox(dec_min, dec_max, None)
    s = math.sin(math.radians(r)) / math.cos(math.radians(dec))
    if s >= 1.0:
        return BBox(dec_min, dec_max, None)
    half = math.degrees(math.asin(s)) * (1 + 1e-12) + _PAD
    if half >= 180.0:
        return BBox(dec_min, dec_max, None)
    lo, hi = ra - half, ra + half
    if lo < 0.0:
        return BBox(dec_min, dec_max, ((lo + 360.0, 360.0), (0.0, hi)))
    if hi > 360.0:
        return BBox(dec_min, dec_max, ((lo, 360.0), (0.0, hi - 360.0)))
    return BBox(dec_min, dec_max, ((lo, hi),))


def num(v: float) -> str:
    """A float as an SQL literal that round-trips exactly."""
    if not math.isfinite(v):
        raise ValueError("non-finite number")
    r = repr(float(v))
    return r if "e" in r or "." in r else r + ".0"


def bbox_sql(ra_sql: str, dec_sql: str, box: BBox) -> str:
    """SQL for the bounding-box part of a cone predicate.  The RA ranges are those of
    positions in [0, 360); a position outside (RA -2.5 is 357.5) passes the box and is
    left to the exact test (still ranges of an index on RA)."""
    parts = [f"{dec_sql} BETWEEN {num(box.dec_min)} AND {num(box.dec_max)}"]
    if box.ra_ranges is not None:
        ors = [f"{ra_sql} BETWEEN {num(lo)} AND {num(hi)}" for lo, hi in box.ra_ranges]
        ors += [f"{ra_sql} < 0", f"{ra_sql} >= 360"]
        parts.append("(" + " OR ".join(ors) + ")")
    return " AND ".join(parts)


def hav_sql(ra1: str, dec1: str, ra2: str, dec2: str, cos_dec2: str | None = None) -> str:
    """SQL for the haversine of the angular distance between two positions."""
    cd2 = cos_dec2 if cos_dec2 is not None else f"COS(RADIANS({dec2}))"
    if ra2[:1] == "-":
        ra2 = f"({ra2})"
    if dec2[:1] == "-":
        dec2 = f"({dec2})"
    return (f"POWER(SIN(RADIANS({dec1} - {dec2}) / 2), 2) + COS(RADIANS({dec1})) * {cd2}"
            f" * POWER(SIN(RADIANS({ra1} - {ra2}) / 2), 2)")


def distance_sql(ra1: str, dec1: str, ra2: str, dec2: str, dialect: str) -> str:
    """SQL for the great-circle distance in degrees (haversine formula)."""
    least = "LEAST" if dialect == "mysql" else "MIN"
    return f"DEGREES(2 * ASIN(SQRT({least}(1.0, {hav_sql(ra1, dec1, ra2, dec2)}))))"


def cone_sql(ra_sql: str, dec_sql: str, ra0: float, dec0: float, r: float, dialect: str,
             strict: bool = False) -> str:
    """SQL predicate: position (``ra_sql``, ``dec_sql``) lies within ``r`` of (ra0, dec0).

    ``ra_sql``/``dec_sql`` are SQL expressions (normally quoted columns with
    RA in [0, 360)); the predicate is a bounding box usable by indexes AND an
    exact haversine test.  ``dialect`` is "mysql" or "sqlite" (the sqlite
    form needs :func:`adql.sqlite_functions.register`).  ``strict`` makes the
    exact test ``<`` instead of ``<=``.
    """
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unknown dialect {dialect!r}")
    _check(ra0, dec0, r)
    if r >= 180.0:
        return f"({dec_sql} IS NOT NULL AND {ra_sql} IS NOT NULL)"
    box = cone_bbox(ra0, dec0, r)
    limit = math.sin(math.radians(r) / 2) ** 2
    hav = hav_sql(ra_sql, dec_sql, num(ra0 % 360.0), num(dec0),
                  cos_dec2=num(math.cos(math.radians(dec0))))
    op = "<" if strict else "<="
    return f"({bbox_sql(ra_sql, dec_sql, box)} AND {hav} {op} {num(limit)})"


# -- polygons ---------------------------------------------------------------

def _vec(ra: float, dec: float) -> tuple[float, float, float]:
    a, d = math.radians(ra), math.radians(dec)
    return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))


def _dot(u, v) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _cross(u, v):
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


def _norm(u):
    s = math.sqrt(_dot(u, u))
    if s == 0:
        raise ValueError("degenerate polygon")
    return (u[0] / s, u[1] / s, u[2] / s)


def _radec(u) -> tuple[float, float]:
    # a tiny negative angle % 360 rounds to 360: the largest double below it then
    ra = min(math.degrees(math.atan2(u[1], u[0])) % 360.0, math.nextafter(360.0, 0.0))
    dec = math.degrees(math.asin(max(-1.0, min(1.0, u[2]))))
    return ra, dec


def box_vertices(ra: float, dec: float, w: float, h: float) -> list[tuple[float, float]]:
    """Vertices of BOX(ra, dec, w, h): the great-circle quadrilateral whose corners
    are at (±w/2, ±h/2) in a frame centred on (ra, dec), rotated into place."""
    if not (0 < w < 180 and 0 < h < 180):
        raise ValueError("BOX width and height must be in (0, 180) degrees")
    return [_centred_on(ra, dec, _vec(sx * w / 2, sy * h / 2))
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def _centred_on(ra: float, dec: float, v: tuple[float, float, float]) -> tuple[float, float]:
    """(ra, dec) of ``v`` given in the frame centred on (ra, dec) (x to the centre,
    y east, z north): rotated about y by -dec (tilt up to dec), then about z by ra."""
    a, d = math.radians(ra), math.radians(dec)
    x, y, z = v
    x1 = x * math.cos(d) - z * math.sin(d)
    z1 = x * math.sin(d) + z * math.cos(d)
    x2 = x1 * math.cos(a) - y * math.sin(a)
    y2 = x1 * math.sin(a) + y * math.cos(a)
    return _radec((x2, y2, z1))


def rec_box_vertices(ra: float, dec: float, w: float, h: float) -> list[tuple[float, float]]:
    """Vertices of ADQL's BOX(ra, dec, w, h) (ADQL 2.1 section 4.2.9): from the centre,
    arms of w/2 along the great circle towards the east and h/2 along the meridian;
    the sides are the great circles through the arm ends perpendicular to the arms.
    In the frame centred on (ra, dec) (x to the centre, y east, z north) the corner
    between the sides through the east and north arm ends is the direction
    (1, tan(w/2), tan(h/2)): the box is the rectangle |y| <= tan(w/2) x,
    |z| <= tan(h/2) x of the gnomonic projection.  (:func:`box_vertices`, the
    field-of-view squares, puts its corners at (w/2, h/2) in that frame instead.)"""
    if not (0 < w < 180 and 0 < h < 180):
        raise ValueError("BOX width and height must be in (0, 180) degrees")
    tw, th = math.tan(math.radians(w / 2)), math.tan(math.radians(h / 2))
    return [_centred_on(ra, dec, _norm((1.0, sx * tw, sy * th)))
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


class PolygonPlan(NamedTuple):
    center: tuple[float, float]  # ra, dec of the projection centre
    radius: float  # bounding cap radius (deg)
    # per edge: (plane a, plane b, plane c) normals with the test
    #   a.p >= 0 and b.p < 0 (edge spans the ray's latitude) and c.p > 0
    edges: tuple[tuple[tuple[float, float, float], ...], ...]
    front: tuple[float, float, float]


def plan_polygon(vertices: Sequence[tuple[float, float]]) -> PolygonPlan:
    """Prepare the exact point-in-polygon test for a polygon with great-circle edges.

    The polygon must fit into a hemisphere.  Its gnomonic projection around
    the vertex centroid is a plane polygon (great circles become straight
    lines); a ray-crossing test there becomes sign tests of dot products
    p . n against fixed normals n, i.e. linear in the point's unit vector.
    """
    if len(vertices) < 3:
        raise ValueError("a polygon needs at least three vertices")
    vs = [_vec(ra, dec) for ra, dec in vertices]
    c = _norm((sum(v[0] for v in vs), sum(v[1] for v in vs), sum(v[2] for v in vs)))
    if min(_dot(c, v) for v in vs) <= 1e-6:
        raise ValueError("polygon too large: it must fit within a hemisphere")
    # tangent basis
    pole = (0.0, 0.0, 1.0) if abs(c[2]) < 0.9 else (1.0, 0.0, 0.0)
    e1 = _norm(_cross(pole, c))
    e2 = _cross(c, e1)
    proj = [(_dot(v, e1) / _dot(v, c), _dot(v, e2) / _dot(v, c)) for v in vs]
    edges = []
    n = len(proj)
    for i in range(n):
        (xi, yi), (xj, yj) = proj[i], proj[(i + 1) % n]
        if yi == yj:
            continue
        ylo, yhi = min(yi, yj), max(yi, yj)
        k = (xj - xi) / (yj - yi)
        x0 = xi - yi * k
        # py >= ylo  <=> p.(e2 - ylo c) >= 0 ;  py < yhi <=> p.(e2 - yhi c) < 0
        # px < x0 + k py  <=> p.(x0 c + k e2 - e1) > 0
        a = tuple(e2[m] - ylo * c[m] for m in range(3))
        b = tuple(e2[m] - yhi * c[m] for m in range(3))
        cc = tuple(x0 * c[m] + k * e2[m] - e1[m] for m in range(3))
        edges.append((a, b, cc))
    radius = max(math.degrees(math.acos(max(-1.0, min(1.0, _dot(c, v))))) for v in vs)
    return PolygonPlan(_radec(c), radius, tuple(edges), c)


def _linear(ra_sql: str, dec_sql: str):
    """A function giving the SQL of n . p for a fixed vector n, p the position's unit vector."""
    x = f"(COS(RADIANS({dec_sql})) * COS(RADIANS({ra_sql})))"
    y = f"(COS(RADIANS({dec_sql})) * SIN(RADIANS({ra_sql})))"
    z = f"SIN(RADIANS({dec_sql}))"

    def lin(n, sign: float = 1.0) -> str:
        return (f"({num(sign * n[0])} * {x} + {num(sign * n[1])} * {y}"
                f" + {num(sign * n[2])} * {z})")

    return lin


def _inside_sql(plan: PolygonPlan, lin, dialect: str, sign: float = 1.0) -> str:
    """The exact part of the point-in-polygon test (of -p when ``sign`` is -1)."""
    terms = [f"CASE WHEN {lin(a, sign)} >= 0 AND {lin(b, sign)} < 0 AND {lin(cc, sign)} > 0"
             " THEN 1 ELSE 0 END" for a, b, cc in plan.edges]
    mod = "MOD(({}), 2)" if dialect == "mysql" else "(({}) % 2)"
    parity = mod.format(" + ".join(terms)) if terms else "0"
    return f"{lin(plan.front, sign)} > 0 AND {parity} = 1"


def polygon_sql(ra_sql: str, dec_sql: str, vertices: Sequence[tuple[float, float]],
                dialect: str) -> str:
    """SQL predicate: position lies inside the polygon (great-circle edges)."""
    plan = plan_polygon(vertices)
    box = cone_bbox(plan.center[0], plan.center[1], plan.radius + 1e-7)
    return (f"({bbox_sql(ra_sql, dec_sql, box)} AND "
            f"{_inside_sql(plan, _linear(ra_sql, dec_sql), dialect)})")


class Edge(NamedTuple):
    """A great-circle arc a -> b (shorter than 180 degrees) prepared for distance tests.

    ``n`` is the unit normal of the arc's great circle; a point p is at
    asin(|p . n|) from that circle, and its nearest point on the circle lies
    on the arc iff p . na >= 0 and p . nb >= 0 (the lune the arc spans).
    """

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    n: tuple[float, float, float]
    na: tuple[float, float, float]
    nb: tuple[float, float, float]


def polygon_edges(vertices: Sequence[tuple[float, float]]) -> list[Edge]:
    """The prepared edges of a polygon (repeated vertices give no edge)."""
    vs = [_vec(ra, dec) for ra, dec in vertices]
    out = []
    for i, a in enumerate(vs):
        b = vs[(i + 1) % len(vs)]
        c = _cross(a, b)
        if _dot(c, c) < 1e-30:  # same (or antipodal) points: no great circle
            continue
        n = _norm(c)
        out.append(Edge(a, b, n, _cross(n, a), _cross(b, n)))
    return out


#: CIRCLE / POLYGON relations :func:`circle_polygon_sql` writes
CIRCLE_POLYGON = ("intersects", "circle_in_polygon", "polygon_in_circle")


def circle_polygon_sql(ra_sql: str, dec_sql: str, r: float | str,
                       vertices: Sequence[tuple[float, float]], relation: str,
                       dialect: str) -> str:
    """SQL predicate relating the circle of radius ``r`` around a position to a polygon.

    ``relation`` is "intersects", "circle_in_polygon" (ADQL CONTAINS(circle,
    polygon)) or "polygon_in_circle" (CONTAINS(polygon, circle)).  ``r`` is
    a constant (degrees) or an SQL expression; a constant radius adds an
    index-friendly bounding box.  The polygon is constant: with p the unit
    vector of the position, the distance to an edge's great circle is
    asin(|p . n|) and the nearest point is on the edge iff p is inside the
    edge's lune (see :class:`Edge`), all linear in p; otherwise the nearest
    point is a vertex, tested with haversines (exact for tiny radii too).
    """
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unknown dialect {dialect!r}")
    if relation not in CIRCLE_POLYGON:
        raise ValueError(f"unknown relation {relation!r}")
    plan = plan_polygon(vertices)
    edges = polygon_edges(vertices)
    lin = _linear(ra_sql, dec_sql)
    least = "LEAST" if dialect == "mysql" else "MIN"
    const = not isinstance(r, str)
    not_null = f"({dec_sql} IS NOT NULL AND {ra_sql} IS NOT NULL)"
    if const:
        if not math.isfinite(r) or r < 0:
            raise ValueError(f"bad circle radius {r}")
        r = min(float(r), 180.0)
        hav_r = num(math.sin(math.radians(r) / 2) ** 2)
        sin_r90 = num(math.sin(math.radians(min(r, 90.0))))
        sin_r = num(math.sin(math.radians(r)))
    else:
        hav_r = f"POWER(SIN(RADIANS({least}({r}, 180.0)) / 2), 2)"
        sin_r90 = f"SIN(RADIANS({least}({r}, 90.0)))"
        sin_r = f"SIN(RADIANS({least}({r}, 180.0)))"

    def hav(v) -> str:
        return hav_sql(ra_sql, dec_sql, num(v[0] % 360.0), num(v[1]),
                       cos_dec2=num(math.cos(math.radians(v[1]))))

    inside = _inside_sql(plan, lin, dialect)
    parts = []
    if relation == "intersects":
        if const and r >= 180.0:
            return not_null
        if const:
            box = cone_bbox(plan.center[0], plan.center[1],
                            min(180.0, plan.radius + r + 1e-7))
            parts.append(bbox_sql(ra_sql, dec_sql, box))
        else:
            parts.append(f"{r} >= 0")
        near = [f"({inside})"]
        near += [f"{hav(v)} <= {hav_r}" for v in vertices]
        near += [f"({lin(e.na)} >= 0 AND {lin(e.nb)} >= 0 AND ABS({lin(e.n)}) <= {sin_r90})"
                 for e in edges]
        parts.append("(" + " OR ".join(near) + ")")
    elif relation == "circle_in_polygon":
        # a cap of radius >= 90 never fits into a polygon within a hemisphere
        if const and r >= 90.0:
            return "(1 = 0)"
        if not const:
            parts.append(f"{r} >= 0 AND {r} < 90")
        box = cone_bbox(plan.center[0], plan.center[1], plan.radius + 1e-7)
        parts.append(bbox_sql(ra_sql, dec_sql, box))
        parts.append(inside)
        parts += [f"{hav(v)} >= {hav_r}" for v in vertices]
        parts += [f"({lin(e.na)} < 0 OR {lin(e.nb)} < 0 OR ABS({lin(e.n)}) >= {sin_r90})"
                  for e in edges]
    else:  # polygon_in_circle
        if const and r >= 180.0:
            return not_null
        if const and r <= 90.0:
            # the cap is convex: it holds the vertex centroid (the plan's centre)
            box = cone_bbox(plan.center[0], plan.center[1], r + 1e-7)
            parts.append(bbox_sql(ra_sql, dec_sql, box))
        if not const:
            parts.append(f"{r} >= 0")
        parts += [f"{hav(v)} <= {hav_r}" for v in vertices]
        # a cap larger than a hemisphere is not convex: no point of the polygon
        # may come closer than 180 - r to the antipode -p of the centre
        far = [f"NOT ({_inside_sql(plan, lin, dialect, -1.0)})"]
        far += [f"({lin(e.na)} > 0 OR {lin(e.nb)} > 0 OR ABS({lin(e.n)}) >= {sin_r})"
                for e in edges]
        if const and r > 90.0:
            parts += far
        elif not const:
            parts.append(f"({r} <= 90 OR {r} >= 180 OR (" + " AND ".join(far) + "))")
    return "(" + " AND ".join(parts) + ")"


def polygon_area(vertices: Sequence[tuple[float, float]]) -> float:
    """Area in square degrees of a polygon with great-circle edges: the signed solid
    angles of the triangles (c, a, b) of a fan around the normalised vertex mean c,
    2 atan2(c.(a x b), 1 + c.a + a.b + b.c), summed, then abs.  The triple product
    is computed as (c - b).((a - b) x b) (the same determinant): of small
    differences for a small polygon, so its relative error stays near
    eps / size, where c.(a x b) written out loses eps / size^2."""
    vs = [_vec(ra, dec) for ra, dec in vertices]
    c = _norm((sum(v[0] for v in vs), sum(v[1] for v in vs), sum(v[2] for v in vs)))
    total = 0.0
    for i in range(len(vs)):
        a, b = vs[i], vs[(i + 1) % len(vs)]
        ab = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
        num_ = _dot((c[0] - b[0], c[1] - b[1], c[2] - b[2]), _cross(ab, b))
        den = 1 + _dot(c, a) + _dot(a, b) + _dot(b, c)
        total += 2 * math.atan2(num_, den)
    return abs(total) * (180 / math.pi) ** 2


def polygon_centroid(vertices: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Normalised mean of the vertex unit vectors, as (ra, dec)."""
    vs = [_vec(ra, dec) for ra, dec in vertices]
    return _radec(_norm((sum(v[0] for v in vs), sum(v[1] for v in vs),
                         sum(v[2] for v in vs))))


def circle_area(r: float) -> float:
    """Area in square degrees of a spherical cap of radius r degrees."""
    return 2 * math.pi * (1 - math.cos(math.radians(r))) * (180 / math.pi) ** 2


#: a vertex coordinate for the polygon SQL builders: SQL (a column expression) or a
#: constant in degrees (its sine and cosine are then computed here)
Coord = str | float


def _lit(v: float) -> str:
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def _unit_sql(ra: Coord, dec: Coord) -> tuple[str, str, str]:
    """SQL of the unit vector (x, y, z) of the position (ra, dec)."""
    if isinstance(ra, str):
        ca, sa = f"COS(RADIANS({ra}))", f"SIN(RADIANS({ra}))"
    else:
        ca, sa = _lit(math.cos(math.radians(ra))), _lit(math.sin(math.radians(ra)))
    if isinstance(dec, str):
        cd, sd = f"COS(RADIANS({dec}))", f"SIN(RADIANS({dec}))"
    else:
        cd, sd = _lit(math.cos(math.radians(dec))), _lit(math.sin(math.radians(dec)))
    return f"({cd} * {ca})", f"({cd} * {sa})", sd


def _vertex_sum_sql(vertices: Sequence[tuple[Coord, Coord]]):
    """The vertices' unit vectors (SQL) and the SQL of their sum's components."""
    if len(vertices) < 3:
        raise ValueError("a polygon needs at least three vertices")
    vs = [_unit_sql(ra, dec) for ra, dec in vertices]
    return vs, tuple("(" + " + ".join(v[m] for v in vs) + ")" for m in range(3))


def polygon_area_sql(vertices: Sequence[tuple[Coord, Coord]], dialect: str) -> str:
    """SQL: area in square degrees of the polygon with great-circle edges whose vertex
    coordinates are SQL expressions (or constants), as :func:`polygon_area` computes it.

    With S the sum of the n vertex unit vectors (c = S / |S| the fan's apex), the
    term of the edge a -> b is 2 atan2(c.(a x b), 1 + c.a + a.b + b.c); both
    arguments are multiplied by |S| here (atan2 does not change), so S is written
    out, not normalised: the SQL grows as n^2.  The triple product S.(a x b) is
    (S - n b).((a - b) x b), of small differences for a small polygon (as
    polygon_area computes it).  NULL in any vertex gives NULL, and so does a zero
    S (no apex: NULLIF).
    """
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unknown dialect {dialect!r}")
    vs, s = _vertex_sum_sql(vertices)
    s0, s1, s2 = s
    n = len(vs)
    norm = f"NULLIF(SQRT(POWER({s0}, 2) + POWER({s1}, 2) + POWER({s2}, 2)), 0)"
    terms = []
    for i, a in enumerate(vs):
        b = vs[(i + 1) % n]
        d = [f"({a[m]} - {b[m]})" for m in range(3)]  # a - b
        triple = " + ".join(
            f"({s[m]} - {n} * {b[m]}) * ({d[(m + 1) % 3]} * {b[(m + 2) % 3]} - "
            f"{d[(m + 2) % 3]} * {b[(m + 1) % 3]})" for m in range(3))
        den = (f"{norm} * (1 + {a[0]} * {b[0]} + {a[1]} * {b[1]} + {a[2]} * {b[2]}) + "
               f"{s0} * ({a[0]} + {b[0]}) + {s1} * ({a[1]} + {b[1]}) + "
               f"{s2} * ({a[2]} + {b[2]})")
        terms.append(f"ATAN2({triple}, {den})")
    k = num(2 * (180 / math.pi) ** 2)
    return f"({k} * ABS({' + '.join(terms)}))"


def polygon_centroid_sql(vertices: Sequence[tuple[Coord, Coord]],
                         dialect: str) -> tuple[str, str]:
    """SQL of (ra, dec) of :func:`polygon_centroid` (the direction of the sum of the
    vertex unit vectors) for vertex coordinates that are SQL expressions (or
    constants): RA in [0, 360), DEC from ATAN2 (no domain error from rounding).
    NULL in any vertex gives NULL.  Linear in the vertex count."""
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unknown dialect {dialect!r}")
    _, (s0, s1, s2) = _vertex_sum_sql(vertices)
    least = "LEAST" if dialect == "mysql" else "MIN"
    a = f"DEGREES(ATAN2({s1}, {s0}))"
    # a + 360 rounds to 360 for a in [-2.9e-14, 0): the largest double below 360 then;
    # + 0.0 turns a -0.0 into 0.0
    ra = (f"(CASE WHEN {a} < 0 THEN {least}({a} + 360.0, {num(math.nextafter(360.0, 0))})"
          f" ELSE {a} + 0.0 END)")
    dec = f"DEGREES(ATAN2({s2}, SQRT(POWER({s0}, 2) + POWER({s1}, 2))))"
    return ra, dec


# -- field-of-view squares ----------------------------------------------------
# A frame's sky region, and an ivoa.obscore row's s_region, is the square of the
# instrument's field of view around the target: BOX(ra, dec, fov, fov) as
# :func:`box_vertices` builds it.  In the frame of its centre (x towards the
# centre, y east, z north; a = fov / 2) it is x > 0, |y| <= tan(a) x and
# |z| <= tan(a) / cos(a) x: two edges lie on meridians of that frame, two on
# great circles through the corners (c^2, +-cs, +-s) with c = cos a, s = sin a.
# It is symmetric in y and in z, so a point p = (x, |y|, |z|) folded into the
# first quadrant has the same distance to it, and the nearest boundary point
# is then on the half edges from the edge midpoints to the corner K = (c^2, cs, s).
# The predicates below are written in SQL with every argument an SQL
# expression (columns or literals), so both databases evaluate them exactly.

#: boundary tolerance in radians, as :data:`adql.shapes.TOL`
_TOL = 1e-11
#: a square of side fov reaches at most REACH * fov from its centre (its
#: circumradius acos(cos^2(fov/2)) is below sqrt(2) fov / 2)
FOV_REACH = 0.75


def fov_usable(fov: float | None) -> bool:
    """Whether a field of view gives a square region (0 < fov < 180)."""
    return fov is not None and 0.0 < fov < 180.0


def fov_region(ra: float, dec: float, fov: float | None) -> list[float] | None:
    """DALI polygon (counter-clockwise, flat lon lat values) of the field-of-view
    square around (ra, dec); None without a usable field of view."""
    if not fov_usable(fov):
        return None
    return [v for vertex in box_vertices(ra, dec, fov, fov) for v in vertex]


def fov_usable_sql(fov_sql: str) -> str:
    """SQL: the row has a square region (what makes its s_region not null)."""
    return f"({fov_sql} > 0 AND {fov_sql} < 180)"


def _local_sql(ra: str, dec: str, cra: str, cdec: str) -> tuple[str, str, str]:
    """SQL of the unit vector of (ra, dec) in the frame of the centre (cra, cdec)."""
    d = f"RADIANS(({ra}) - ({cra}))"
    cp, sp = f"COS(RADIANS({dec}))", f"SIN(RADIANS({dec}))"
    cc, sc = f"COS(RADIANS({cdec}))", f"SIN(RADIANS({cdec}))"
    return (f"({cp} * COS({d}) * {cc} + {sp} * {sc})", f"({cp} * SIN({d}))",
            f"({sp} * {cc} - {cp} * COS({d}) * {sc})")


def _local_const_sql(ra: float, dec: float, cra: str, cdec: str) -> tuple[str, str, str]:
    """:func:`_local_sql` of a constant position (its declination's sine and cosine
    computed here)."""
    d = f"RADIANS({num(ra % 360.0)} - ({cra}))"
    cp, sp = num(math.cos(math.radians(dec))), num(math.sin(math.radians(dec)))
    cc, sc = f"COS(RADIANS({cdec}))", f"SIN(RADIANS({cdec}))"
    return (f"({cp} * COS({d}) * {cc} + {sp} * {sc})", f"({cp} * SIN({d}))",
            f"({sp} * {cc} - {cp} * COS({d}) * {sc})")


def _band_sql(dec: str, cdec: str, reach: str) -> str:
    """Index-friendly: the centre's declination is within ``reach`` of ``dec``."""
    return f"{cdec} BETWEEN ({dec}) - ({reach}) AND ({dec}) + ({reach})"


def _reach_sql(max_fov: str) -> str:
    return f"({num(FOV_REACH)} * {max_fov})"


def point_in_fov_sql(ra: str, dec: str, cra: str, cdec: str, fov: str, max_fov: str) -> str:
    """SQL predicate: the position (ra, dec) lies in the (closed) square of side
    ``fov`` around (cra, cdec).  ``max_fov`` is an SQL scalar no smaller than any
    row's ``fov``: it bounds an index-friendly band on ``cdec``."""
    x, y, z = _local_sql(ra, dec, cra, cdec)
    t = f"TAN(RADIANS({fov}) / 2)"
    return (f"({fov_usable_sql(fov)} AND {_band_sql(dec, cdec, _reach_sql(max_fov))}"
            f" AND {x} > 0 AND ABS({y}) <= {t} * {x} + {num(_TOL)}"
            f" AND ABS({z}) <= {t} / COS(RADIANS({fov}) / 2) * {x} + {num(_TOL)})")


def _near_sql(x: str, yy: str, zz: str, r: str, fov: str, tol: float, dialect: str) -> str:
    """SQL: the folded unit vector (x, yy, zz) is within r (+ tol radians) of the
    square's boundary."""
    least = "LEAST" if dialect == "mysql" else "MIN"
    a = f"(RADIANS({fov}) / 2)"
    s, c = f"SIN({a})", f"COS({a})"
    c2, c4 = f"POWER({c}, 2)", f"POWER({c}, 4)"
    sin_r90 = f"SIN(RADIANS({least}({r}, 90.0)))"
    chord = f"POWER(2 * SIN(RADIANS({least}({r}, 180.0)) / 2) + {num(tol)}, 2)"
    t = num(tol)
    # top half edge: great circle with normal (-s, 0, c^2), lune side p.(c^3 s, -(s^2 + c^4), c s^2)
    top = (f"({x} * POWER({c}, 3) * {s} - {yy} * (POWER({s}, 2) + {c4}) + {zz} * {c} * "
           f"POWER({s}, 2) >= 0 AND ABS({zz} * {c2} - {x} * {s}) <= "
           f"({sin_r90} + {t}) * SQRT(POWER({s}, 2) + {c4}))")
    # right half edge: the meridian with normal (-s, c, 0), lune side p.(sc, s^2, -c)
    right = (f"({x} * {s} * {c} + {yy} * POWER({s}, 2) - {zz} * {c} >= 0"
             f" AND ABS({yy} * {c} - {x} * {s}) <= {sin_r90} + {t})")
    corner = (f"POWER({x} - {c2}, 2) + POWER({yy} - {c} * {s}, 2) + POWER({zz} - {s}, 2)"
              f" <= {chord}")
    return f"({top} OR {right} OR {corner})"


def _inside_folded_sql(x: str, yy: str, zz: str, fov: str) -> str:
    t = f"TAN(RADIANS({fov}) / 2)"
    return (f"({x} > 0 AND {yy} <= {t} * {x} + {num(_TOL)}"
            f" AND {zz} <= {t} / COS(RADIANS({fov}) / 2) * {x} + {num(_TOL)})")


#: CIRCLE / field-of-view square relations :func:`circle_fov_sql` writes
CIRCLE_FOV = ("intersects", "circle_in_square", "square_in_circle")


def circle_fov_sql(ra: str, dec: str, r: str, cra: str, cdec: str, fov: str, max_fov: str,
                   relation: str, dialect: str) -> str:
    """SQL predicate relating the circle of radius ``r`` around (ra, dec) to the
    square of side ``fov`` around (cra, cdec) (arguments are SQL expressions).

    ``relation`` is "intersects", "circle_in_square" (ADQL CONTAINS(circle,
    region)) or "square_in_circle" (CONTAINS(region, circle)); ``max_fov`` is
    as for :func:`point_in_fov_sql`.
    """
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unknown dialect {dialect!r}")
    if relation not in CIRCLE_FOV:
        raise ValueError(f"unknown relation {relation!r}")
    x, y, z = _local_sql(ra, dec, cra, cdec)
    yy, zz = f"ABS({y})", f"ABS({z})"
    usable = fov_usable_sql(fov)
    reach = _reach_sql(max_fov)
    if relation == "intersects":
        return (f"({usable} AND {r} >= 0 AND {_band_sql(dec, cdec, f'{reach} + ({r})')} AND "
                f"({_inside_folded_sql(x, yy, zz, fov)} OR "
                f"{_near_sql(x, yy, zz, r, fov, _TOL, dialect)}))")
    if relation == "circle_in_square":
        return (f"({usable} AND {r} >= 0 AND {r} < 90 AND {_band_sql(dec, cdec, reach)} AND "
                f"{_inside_folded_sql(x, yy, zz, fov)} AND NOT "
                f"{_near_sql(x, yy, zz, r, fov, -_TOL, dialect)})")
    # square_in_circle: up to 90 degrees the cap is convex and must hold the
    # corner farthest from its centre, (c^2, -cs, -s) in the folded frame; a
    # larger cap must stay 180 - r away from its antipode (-x, |y|, |z|)
    a = f"(RADIANS({fov}) / 2)"
    s, c = f"SIN({a})", f"COS({a})"
    least = "LEAST" if dialect == "mysql" else "MIN"
    chord = f"POWER(2 * SIN(RADIANS({least}({r}, 180.0)) / 2) + {num(_TOL)}, 2)"
    far = (f"POWER({x} - POWER({c}, 2), 2) + POWER({yy} + {c} * {s}, 2) + "
           f"POWER({zz} + {s}, 2) <= {chord}")
    anti = f"(-{x})"
    away = (f"NOT ({_inside_folded_sql(anti, yy, zz, fov)} OR "
            f"{_near_sql(anti, yy, zz, f'180.0 - ({r})', fov, -_TOL, dialect)})")
    return (f"({usable} AND {r} >= 0 AND ({r} >= 180 OR ({r} <= 90 AND {far}) OR "
            f"({r} > 90 AND {away})))")


def fov_area_sql(fov: str) -> str:
    """SQL: area in square degrees of the square of side ``fov`` (null if unusable).

    In the gnomonic projection around its centre the square is the rectangle
    |X| <= tan a, |Y| <= tan a / cos a, whose solid angle is
    4 asin(AB / sqrt((1 + A^2)(1 + B^2))).
    """
    t = f"TAN(RADIANS({fov}) / 2)"
    b = f"({t} / COS(RADIANS({fov}) / 2))"
    k = num((180 / math.pi) ** 2)
    return (f"(CASE WHEN {fov_usable_sql(fov)} THEN {k} * 4 * ASIN({t} * {b} / "
            f"SQRT((1 + POWER({t}, 2)) * (1 + POWER({b}, 2)))) END)")


def fov_area(fov: float) -> float:
    """Area in square degrees of the field-of-view square (as :func:`fov_area_sql`)."""
    t = math.tan(math.radians(fov) / 2)
    b = t / math.cos(math.radians(fov) / 2)
    return (180 / math.pi) ** 2 * 4 * math.asin(t * b / math.sqrt((1 + t * t) * (1 + b * b)))


#: constant POLYGON (or BOX) / field-of-view square relations :func:`polygon_fov_sql` writes
POLYGON_FOV = ("intersects", "polygon_in_square", "square_in_polygon")


def polygon_fov_sql(vertices: Sequence[tuple[float, float]], cra: str, cdec: str, fov: str,
                    max_fov: str, relation: str, dialect: str) -> str:
    """SQL predicate relating a constant polygon (great-circle edges) to the square of
    side ``fov`` around (cra, cdec) (SQL expressions, as for :func:`circle_fov_sql`).

    ``relation`` is "intersects", "polygon_in_square" (ADQL CONTAINS(polygon,
    region)) or "square_in_polygon" (CONTAINS(region, polygon)).  Everything is
    computed in the frame of the square's centre, where the square is the convex
    x > 0, |y| <= tan(a) x, |z| <= tan(a) / cos(a) x (a = fov / 2) bounded by four
    great circles (planes through the origin).  A polygon edge u -> w meets
    the plane d(p) = 0 iff d(u) d(w) <= 0, at X = |d(w)| u + |d(u)| w, which is
    on a side of the square iff X is within the other two planes' bounds.
    Then: the shapes intersect iff a polygon vertex is in the square, the
    square's centre is in the polygon or an edge crosses a side; the polygon is
    within the (convex) square iff its vertices are; the square is within the
    polygon iff its centre is and no vertex, edge midpoint or side crossing of
    the polygon lies in the square's interior (boundaries may touch).  A
    declination band on ``cdec`` (the polygon's bounding cap widened by the
    largest square's reach, ``max_fov``) comes first for the indexes.
    """
    if dialect not in ("mysql", "sqlite"):
        raise ValueError(f"unknown dialect {dialect!r}")
    if relation not in POLYGON_FOV:
        raise ValueError(f"unknown relation {relation!r}")
    plan = plan_polygon(vertices)  # the polygon must fit into a hemisphere
    distinct: list[tuple[float, float]] = []
    for v in vertices:  # repeated vertices (a closing one too) make no edge
        if not distinct or _vec(*v) != _vec(*distinct[-1]):
            distinct.append(v)
    while len(distinct) > 1 and _vec(*distinct[0]) == _vec(*distinct[-1]):
        distinct.pop()
    pts = [_local_const_sql(ra, dec, cra, cdec) for ra, dec in distinct]
    a = f"(RADIANS({fov}) / 2)"
    s, c = f"SIN({a})", f"COS({a})"
    t = f"TAN(RADIANS({fov}) / 2)"
    k = f"{t} / COS(RADIANS({fov}) / 2)"  # as in point_in_fov_sql
    tol = num(_TOL)

    def inside(p, strict: bool, scale: str = "1") -> str:
        if strict:
            return (f"({p[0]} > 0 AND ABS({p[1]}) < {t} * {p[0]} - {tol} * {scale}"
                    f" AND ABS({p[2]}) < {k} * {p[0]} - {tol} * {scale})")
        return (f"({p[0]} > 0 AND ABS({p[1]}) <= {t} * {p[0]} + {tol}"
                f" AND ABS({p[2]}) <= {k} * {p[0]} + {tol})")

    # the sides: (signed distance-like form, index of the coordinate the side bounds,
    # its limit): x s = y c (east), -x s = y c (west), x s = z c^2 (north), south
    sides = [
        (lambda p: f"({c} * {p[1]} - {s} * {p[0]})", 2, k),
        (lambda p: f"({c} * {p[1]} + {s} * {p[0]})", 2, k),
        (lambda p: f"(POWER({c}, 2) * {p[2]} - {s} * {p[0]})", 1, t),
        (lambda p: f"(POWER({c}, 2) * {p[2]} + {s} * {p[0]})", 1, t),
    ]

    def crossing(u, w, side, strict: bool) -> str:
        d, axis, lim = side
        du, dw = d(u), d(w)
        x, other = (f"(ABS({dw}) * {u[i]} + ABS({du}) * {w[i]})" for i in (0, axis))
        eps = f"{tol} * (ABS({du}) + ABS({dw}))"
        if strict:
            return (f"({du} * {dw} < 0 AND ABS({du}) > {tol} AND ABS({dw}) > {tol}"
                    f" AND ABS({other}) < {lim} * {x} - {eps})")
        return f"({du} * {dw} <= 0 AND ABS({other}) <= {lim} * {x} + {eps})"

    edges = [(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]
    usable = fov_usable_sql(fov)
    reach = _reach_sql(max_fov)
    lo, hi = plan.center[1] - plan.radius - 1e-7, plan.center[1] + plan.radius + 1e-7
    band = f"{cdec} BETWEEN {num(lo)} - {reach} AND {num(hi)} + {reach}"
    if relation == "polygon_in_square":
        return f"({usable} AND {band} AND " + " AND ".join(inside(p, False) for p in pts) + ")"
    centre_in = polygon_sql(cra, cdec, vertices, dialect)
    if relation == "intersects":
        near = [inside(p, False) for p in pts] + [centre_in]
        near += [crossing(u, w, side, False) for u, w in edges for side in sides]
        return f"({usable} AND {band} AND (" + " OR ".join(near) + "))"
    # square_in_polygon
    into = [inside(p, True) for p in pts]
    into += [inside(tuple(f"({u[i]} + {w[i]})" for i in range(3)), True, "2")
             for u, w in edges]
    into += [crossing(u, w, side, True) for u, w in edges for side in sides]
    return f"({usable} AND {centre_in} AND NOT (" + " OR ".join(into) + "))"
