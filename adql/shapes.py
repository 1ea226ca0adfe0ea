"""Exact spherical predicates on constant shapes, evaluated in Python.

Shapes are :class:`Point`, :class:`Circle` (a spherical cap), :class:`Polygon`
(great-circle edges, prepared with :func:`adql.geometry.plan_polygon`, so
that it is the smaller of the two regions its boundary bounds, whatever the
vertex order) and :class:`Range` (a longitude interval times a latitude
band: two meridian arcs and two parallels, which are small circles).  All
angles are in degrees; RA wraps at 0/360 and the poles need no special care
because the tests work on unit vectors.

:func:`intersects` and :func:`contains` answer ADQL's INTERSECTS(a, b) and
CONTAINS(a, b) (``a`` lies within ``b``) for every pair of points, circles
and polygons; :func:`intersects` also takes a :class:`Range`.  Shapes are
closed sets, and a boundary within :data:`TOL` of the other shape counts as
touching it.  Between polygons, CONTAINS is exact when the outer polygon is
simple (not self-intersecting; ADQL and DALI polygons are).

The module is pure: no Flask, no database.  The SQL forms of the
predicates with column positions are in :mod:`adql.geometry`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .geometry import (
    Edge,
    _cross,
    _dot,
    _norm,
    _radec,
    _vec,
    plan_polygon,
    polygon_edges,
)

Vec = tuple[float, float, float]

#: boundary tolerance in radians (2 micro-arcseconds): far above rounding
#: errors, far below any meaningful angle
TOL = 1e-11
_HALF_PI = math.pi / 2


class Point(NamedTuple):
    ra: float
    dec: float


class Circle(NamedTuple):
    ra: float
    dec: float
    r: float


def _check(ra: float, dec: float) -> None:
    if not math.isfinite(ra):
        raise ValueError(f"right ascension {ra} is not a finite number")
    if not math.isfinite(dec) or not -90.0 <= dec <= 90.0:
        raise ValueError(f"declination {dec} is outside [-90, 90]")


def _angle(u: Vec, v: Vec) -> float:
    """Angle between two unit vectors in radians (accurate at 0 and at pi)."""
    c = _cross(u, v)
    return math.atan2(math.sqrt(_dot(c, c)), _dot(u, v))


def _neg(u: Vec) -> Vec:
    return (-u[0], -u[1], -u[2])


def _arc_distance(p: Vec, e: Edge) -> float:
    """Distance in radians from p to the arc of an edge."""
    if _dot(p, e.na) >= 0 and _dot(p, e.nb) >= 0:
        return math.asin(min(1.0, abs(_dot(p, e.n))))
    return min(_angle(p, e.a), _angle(p, e.b))


def _arc_point(e: Edge, t: float) -> Vec:
    """The point at angle t from e.a along the edge's great circle."""
    tang = _cross(e.n, e.a)
    c, s = math.cos(t), math.sin(t)
    return (e.a[0] * c + tang[0] * s, e.a[1] * c + tang[1] * s, e.a[2] * c + tang[2] * s)


def _arc_length(e: Edge) -> float:
    return _angle(e.a, e.b)


def _on_arc(x: Vec, e: Edge) -> bool:
    """x (a unit vector on the edge's great circle) lies on the arc."""
    return _dot(x, e.na) >= -TOL and _dot(x, e.nb) >= -TOL


def _crossings(e: Edge, f: Edge) -> list[Vec]:
    """Points where two arcs meet (none for arcs on one great circle)."""
    c = _cross(e.n, f.n)
    if _dot(c, c) < 1e-24:
        return []  # one great circle: an overlap has an endpoint on the other arc
    x = _norm(c)
    return [y for y in (x, _neg(x)) if _on_arc(y, e) and _on_arc(y, f)]


class Polygon:
    """A polygon with great-circle edges, prepared for the predicates."""

    def __init__(self, vertices: Iterable[tuple[float, float]]) -> None:
        self.vertices = [(float(ra), float(dec)) for ra, dec in vertices]
        for ra, dec in self.vertices:
            _check(ra, dec)
        self.plan = plan_polygon(self.vertices)
        self.vecs = [_vec(ra, dec) for ra, dec in self.vertices]
        self.edges = polygon_edges(self.vertices)

    def __repr__(self) -> str:
        return f"Polygon({self.vertices!r})"

    def boundary_distance(self, p: Vec) -> float:
        """Distance in radians from p to the polygon's boundary."""
        d = min((_angle(p, v) for v in self.vecs), default=math.pi)
        return min([d] + [_arc_distance(p, e) for e in self.edges])

    def _parity(self, p: Vec) -> bool:
        plan = self.plan
        if _dot(plan.front, p) <= 0:
            return False
        k = sum(1 for a, b, c in plan.edges if _dot(a, p) >= 0 and _dot(b, p) < 0
                and _dot(c, p) > 0)
        return k % 2 == 1

    def has(self, p: Vec) -> bool:
        """p lies in the (closed) polygon."""
        return self._parity(p) or self.boundary_distance(p) <= TOL

    def distance(self, p: Vec) -> float:
        """Distance in radians from p to the polygon (0 inside)."""
        return 0.0 if self._parity(p) else self.boundary_distance(p)


class Range:
    """``lon1 lon2 lat1 lat2`` (SIA 2.0 POS RANGE): longitudes from lon1 eastwards
    to lon2 (through 0 when lon1 > lon2), latitudes from lat1 to lat2.

    Infinite longitudes mean all longitudes; latitudes are clipped to
    [-90, 90] (so -Inf/+Inf reach the poles).
    """

    def __init__(self, lon1: float, lon2: float, lat1: float, lat2: float) -> None:
        if any(math.isnan(v) for v in (lon1, lon2, lat1, lat2)):
            raise ValueError("RANGE values must be numbers")
        self.lat1, self.lat2 = max(lat1, -90.0), min(lat2, 90.0)
        width = lon2 - lon1 if lon1 <= lon2 else lon2 + 360.0 - lon1
        self.full = not (math.isfinite(lon1) and math.isfinite(lon2)) or width >= 360.0
        self.start = 0.0 if self.full else lon1 % 360.0
        self.width = 360.0 if self.full else width
        self.empty = self.lat1 > self.lat2

    def __repr__(self) -> str:
        return f"Range({self.start}+{self.width}, {self.lat1}..{self.lat2})"

    def _lon_ok(self, ra: float, tol: float) -> bool:
        if self.full:
            return True
        d = (ra - self.start) % 360.0
        return d <= self.width + tol or d >= 360.0 - tol

    def has(self, p: Vec) -> bool:
        """p lies in the (closed) range."""
        if self.empty:
            return False
        ra, dec = _radec(p)
        tol = math.degrees(TOL)
        if not self.lat1 - tol <= dec <= self.lat2 + tol:
            return False
        if abs(p[2]) >= 1.0 - 1e-20 or 90.0 - abs(dec) <= tol:
            return True  # a pole: every meridian passes through it
        return self._lon_ok(ra, tol / math.cos(math.radians(dec)))

    def anchors(self) -> list[Vec]:
        """A point of the range on each connected part of its boundary."""
        lons = [self.start] if self.full else [self.start, self.start + self.width]
        return [_vec(lon, lat) for lon in lons for lat in (self.lat1, self.lat2)]

    def meets_edge(self, e: Edge) -> bool:
        """The arc of an edge meets the range's boundary."""
        if self.empty:
            return False
        tol = math.degrees(TOL)
        if not self.full:
            for lon in (self.start, self.start + self.width):
                m = (-math.sin(math.radians(lon)), math.cos(math.radians(lon)), 0.0)
                half = (m[1], -m[0], 0.0)  # towards the meridian's longitude
                c = _cross(e.n, m)
                if _dot(c, c) < 1e-24:
                    continue  # the edge lies on the meridian's circle: vertices decide
                x = _norm(c)
                for y in (x, _neg(x)):
                    if _on_arc(y, e) and _dot(y, half) >= -TOL:
                        dec = _radec(y)[1]
                        if self.lat1 - tol <= dec <= self.lat2 + tol:
                            return True
        length = _arc_length(e)
        tang = _cross(e.n, e.a)
        rho = math.hypot(e.a[2], tang[2])
        for lat in (self.lat1, self.lat2):
            if abs(lat) >= 90.0:
                continue  # a pole: on a meridian, or inside a full-longitude range
            z = math.sin(math.radians(lat))
            if rho < 1e-15 or abs(z) > rho + 1e-15:
                continue  # the great circle misses the parallel (or is the equator)
            alpha = math.atan2(tang[2], e.a[2])
            delta = math.acos(max(-1.0, min(1.0, z / rho)))
            for t in (alpha - delta, alpha + delta):
                t = (t + TOL) % (2 * math.pi) - TOL
                if -TOL <= t <= length + TOL:
                    ra = _radec(_arc_point(e, t))[0]
                    if self._lon_ok(ra, tol / math.cos(math.radians(lat))):
                        return True
        return False


Shape = Point | Circle | Polygon | Range


def _pv(p: Point) -> Vec:
    _check(p.ra, p.dec)
    return _vec(p.ra, p.dec)


def _cap(c: Circle) -> tuple[Vec, float]:
    if not math.isfinite(c.r) or c.r < 0:
        raise ValueError(f"bad circle radius {c.r}")
    return _pv(Point(c.ra, c.dec)), math.radians(min(c.r, 180.0))


# -- the predicates ----------------------------------------------------------

def point_in_circle(p: Point, c: Circle) -> bool:
    cv, r = _cap(c)
    return _angle(_pv(p), cv) <= r + TOL


def circles_intersect(a: Circle, b: Circle) -> bool:
    (av, ar), (bv, br) = _cap(a), _cap(b)
    return _angle(av, bv) <= ar + br + TOL


def circle_in_circle(a: Circle, b: Circle) -> bool:
    (av, ar), (bv, br) = _cap(a), _cap(b)
    return br >= math.pi or _angle(av, bv) + ar <= br + TOL


def circle_intersects_polygon(c: Circle, poly: Polygon) -> bool:
    cv, r = _cap(c)
    return poly.distance(cv) <= r + TOL


def circle_in_polygon(c: Circle, poly: Polygon) -> bool:
    """The cap lies within the polygon: its centre inside, every edge at least r away."""
    cv, r = _cap(c)
    return poly.has(cv) and poly.boundary_distance(cv) >= r - TOL


def polygon_in_circle(poly: Polygon, c: Circle) -> bool:
    """The polygon lies within the cap: no point of it is closer than 180 - r to the
    antipode of the centre (for r <= 90 the same as every vertex inside)."""
    cv, r = _cap(c)
    if r >= math.pi:
        return True
    return poly.distance(_neg(cv)) >= math.pi - r - TOL


def polygons_intersect(p: Polygon, q: Polygon) -> bool:
    """A vertex of one lies in the other, or two edges meet."""
    if any(q.has(v) for v in p.vecs) or any(p.has(v) for v in q.vecs):
        return True
    return any(_crossings(e, f) for e in p.edges for f in q.edges)


def polygon_in_polygon(p: Polygon, q: Polygon) -> bool:
    """p lies within q: p's boundary does (q simple, both within a hemisphere).

    Each edge of p is cut where q's boundary meets it; every piece is wholly
    in or out of q, decided by its midpoint.
    """
    if not all(q.has(v) for v in p.vecs):
        return False
    for e in p.edges:
        length = _arc_length(e)
        cuts = {0.0, length}
        tang = _cross(e.n, e.a)
        points = [x for f in q.edges for x in _crossings(e, f)]
        points += [v for v in q.vecs if _arc_distance(v, e) <= TOL]
        for x in points:
            cuts.add(min(length, max(0.0, math.atan2(_dot(x, tang), _dot(x, e.a)))))
        ts = sorted(cuts)
        for t0, t1 in zip(ts, ts[1:], strict=False):
            if t1 - t0 > 1e-15 and not q.has(_arc_point(e, (t0 + t1) / 2)):
                return False
    return True


def polygon_intersects_range(p: Polygon, rng: Range) -> bool:
    if rng.empty:
        return False
    if any(rng.has(v) for v in p.vecs) or any(p.has(a) for a in rng.anchors()):
        return True
    return any(rng.meets_edge(e) for e in p.edges)


def _same_point(u: Vec, v: Vec) -> bool:
    return _angle(u, v) <= TOL


def intersects(a: Shape, b: Shape) -> bool:
    """ADQL INTERSECTS(a, b) (symmetric)."""
    order = (Point, Circle, Polygon, Range)
    if order.index(type(a)) > order.index(type(b)):
        a, b = b, a
    if isinstance(a, Point):
        if isinstance(b, Point):
            return _same_point(_pv(a), _pv(b))
        if isinstance(b, Circle):
            return point_in_circle(a, b)
        return b.has(_pv(a))
    if isinstance(a, Circle):
        if isinstance(b, Circle):
            return circles_intersect(a, b)
        if isinstance(b, Polygon):
            return circle_intersects_polygon(a, b)
    if isinstance(a, Polygon):
        if isinstance(b, Polygon):
            return polygons_intersect(a, b)
        return polygon_intersects_range(a, b)
    raise TypeError(f"INTERSECTS({type(a).__name__}, {type(b).__name__}) is not implemented")


def contains(a: Shape, b: Shape) -> bool:
    """ADQL CONTAINS(a, b): ``a`` lies within ``b``."""
    if isinstance(a, Point):
        return intersects(a, b)
    if isinstance(b, Point):  # only a shape shrunk to that point lies within it
        pv = _pv(b)
        if isinstance(a, Circle):
            cv, r = _cap(a)
            return r <= TOL and _same_point(cv, pv)
        if isinstance(a, Polygon):
            return all(_same_point(v, pv) for v in a.vecs)
    if isinstance(a, Circle):
        if isinstance(b, Circle):
            return circle_in_circle(a, b)
        if isinstance(b, Polygon):
            return circle_in_polygon(a, b)
    if isinstance(a, Polygon):
        if isinstance(b, Circle):
            return polygon_in_circle(a, b)
        if isinstance(b, Polygon):
            return polygon_in_polygon(a, b)
    raise TypeError(f"CONTAINS({type(a).__name__}, {type(b).__name__}) is not implemented")


def box(ra: float, dec: float, w: float, h: float) -> Polygon:
    """BOX(ra, dec, w, h) as a polygon (see :func:`adql.geometry.box_vertices`)."""
    from .geometry import box_vertices

    return Polygon(box_vertices(ra, dec, w, h))


def polygon(coords: Sequence[float]) -> Polygon:
    """A polygon from flat ``lon lat lon lat ...`` values."""
    return Polygon(zip(coords[0::2], coords[1::2], strict=True))
