"""adql.shapes: exact spherical predicates, checked against brute force on the sphere.

The reference functions here (numpy, no adql) are shared with the ADQL and
SIA tests: winding numbers for polygons, densely sampled (and locally
refined) boundaries for distances, astropy for separations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from adql import shapes
from adql.geometry import box_vertices

# -- reference geometry (independent of adql) ---------------------------------


def xyz(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def radec(v):
    v = np.asarray(v, float)
    ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(v[..., 2] / np.linalg.norm(v, axis=-1), -1, 1)))
    return ra, dec


def ang(p, q):
    """Angles (radians) between unit vectors (broadcasting)."""
    c = np.cross(p, q)
    return np.arctan2(np.linalg.norm(c, axis=-1), np.sum(p * q, axis=-1))


def offset(ra, dec, dist, bearing):
    """The point at ``dist`` degrees from (ra, dec) towards position angle ``bearing``."""
    c = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(bearing * u.deg, dist * u.deg)
    return c.ra.deg % 360.0, c.dec.deg


def winding_inside(points, verts):
    """Points (n, 3) inside the polygon (vertex unit vectors, k x 3): a winding number
    test, restricted to the hemisphere around the vertex mean."""
    points = np.atleast_2d(points)
    total = np.zeros(len(points))
    for i in range(len(verts)):
        a, b = verts[i], verts[(i + 1) % len(verts)]
        y = points @ np.cross(a, b)
        x = (a @ b) - (points @ a) * (points @ b)
        total += np.arctan2(y, x)
    return (np.abs(total) > np.pi) & (points @ verts.sum(0) > 0)


def slerp(a, b, t):
    """Points at fractions t along the minor arc a -> b."""
    w = ang(a, b)
    t = np.asarray(t)[..., None]
    return (np.sin((1 - t) * w) * a + np.sin(t * w) * b) / np.sin(w)


def arc_extreme(p, a, b, largest=False, n=1001, passes=4):
    """Min (or max) distance (radians) from points p (m x 3) to the arc a -> b: dense
    sampling, then dense passes around the best sample, each 500 times finer."""
    p = np.atleast_2d(p)
    lo, hi = np.zeros(len(p)), np.ones(len(p))
    for _ in range(passes):
        t = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, n)[None, :]
        d = ang(p[:, None, :], slerp(a, b, t))
        k = np.argmax(d, 1) if largest else np.argmin(d, 1)
        best = t[np.arange(len(p)), k]
        step = (hi - lo) / (n - 1)
        lo, hi = np.clip(best - step, 0, 1), np.clip(best + step, 0, 1)
    return d.max(1) if largest else d.min(1)


def boundary_extreme(p, verts, largest=False, n=1001):
    """Min (or max) distance (radians) from points p to the polygon's edges."""
    f = np.maximum if largest else np.minimum
    out = None
    for i in range(len(verts)):
        d = arc_extreme(p, verts[i], verts[(i + 1) % len(verts)], largest, n=n)
        out = d if out is None else f(out, d)
    return out


def boundary_samples(verts, per_edge=200):
    """Points along the polygon's edges and the largest gap between neighbours."""
    pts, gap = [], 0.0
    t = np.linspace(0, 1, per_edge, endpoint=False)
    for i in range(len(verts)):
        a, b = verts[i], verts[(i + 1) % len(verts)]
        pts.append(slerp(a, b, t))
        gap = max(gap, ang(a, b) / per_edge)
    return np.concatenate(pts), gap


def min_pair_distance(a, b):
    """Smallest angle (radians, to ~1e-8) between a point of a and a point of b."""
    dot = min(1.0, float((a @ b.T).max()))
    return 2 * math.asin(math.sqrt(max(0.0, 2 - 2 * dot)) / 2)


def range_has(ra, dec, rng_values):
    lon1, lon2, lat1, lat2 = rng_values
    inside = (dec >= lat1) & (dec <= lat2)
    if math.isfinite(lon1) and math.isfinite(lon2):
        width = lon2 - lon1 if lon1 <= lon2 else lon2 + 360 - lon1
        if width < 360:
            inside &= ((ra - lon1) % 360.0 <= width) | (np.abs(dec) > 90 - 1e-12)
    return inside


def range_boundary(rng_values, n=2000):
    """Sample points of a RANGE's edges (meridian arcs and parallels) and their gap."""
    lon1, lon2, lat1, lat2 = rng_values
    lat1, lat2 = max(lat1, -90.0), min(lat2, 90.0)
    pts, gap = [], 0.0
    full = not (math.isfinite(lon1) and math.isfinite(lon2))
    width = 360.0 if full else (lon2 - lon1 if lon1 <= lon2 else lon2 + 360 - lon1)
    full = full or width >= 360
    if full:
        lon1, width = 0.0, 360.0
    else:
        lats = np.linspace(lat1, lat2, n)
        for lon in (lon1, lon1 + width):
            pts.append(xyz(np.full(n, lon), lats))
        gap = math.radians(lat2 - lat1) / n
    lons = np.linspace(lon1, lon1 + width, n)
    for lat in (lat1, lat2):
        if abs(lat) < 90:
            pts.append(xyz(lons, np.full(n, lat)))
            gap = max(gap, math.radians(width) * math.cos(math.radians(lat)) / n)
    return np.concatenate(pts), gap


def star_polygon(rng, ra0, dec0, size, n=None):
    """A random simple (star-shaped) polygon around (ra0, dec0), either orientation."""
    n = n or int(rng.integers(3, 9))
    bearings = np.sort(rng.uniform(0, 360, n))
    if rng.random() < 0.5:
        bearings = bearings[::-1]
    dists = rng.uniform(0.3, 1.0, n) * size
    ra, dec = offset(np.full(n, ra0), np.full(n, dec0), dists, bearings)
    return list(zip(ra.tolist(), dec.tolist(), strict=True))


def random_centre(rng):
    kind = rng.integers(0, 4)
    if kind == 0:  # near RA 0/360
        return float(rng.uniform(-0.5, 0.5) % 360.0), float(rng.uniform(-60, 60))
    if kind == 1:  # near a pole
        return float(rng.uniform(0, 360)), float(rng.choice([-1, 1]) * rng.uniform(85, 90))
    return float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))


def poly_vecs(verts):
    return xyz(np.array([v[0] for v in verts]), np.array([v[1] for v in verts]))


def ref_polygon_distance(p, verts):
    """Distance (radians) from points to the polygon (0 inside), and the boundary distance."""
    vs = poly_vecs(verts)
    b = boundary_extreme(p, vs)
    return np.where(winding_inside(p, vs), 0.0, b), b


# -- unit tests ---------------------------------------------------------------


def test_points_and_circles():
    rng = np.random.default_rng(1)
    for _ in range(400):
        ra0, dec0 = random_centre(rng)
        r = float(10 ** rng.uniform(-4, 2.2))
        ra1, dec1 = offset(ra0, dec0, float(r * rng.uniform(0, 2)), float(rng.uniform(0, 360)))
        sep = SkyCoord(ra0 * u.deg, dec0 * u.deg).separation(
            SkyCoord(ra1 * u.deg, dec1 * u.deg)).deg
        if abs(sep - r) < 1e-9:
            continue
        c, p = shapes.Circle(ra0, dec0, r), shapes.Point(float(ra1), float(dec1))
        assert shapes.intersects(p, c) == shapes.contains(p, c) == (sep <= r)
        assert shapes.intersects(c, p) == (sep <= r)
        r2 = float(10 ** rng.uniform(-4, 2.2))
        c2 = shapes.Circle(float(ra1), float(dec1), r2)
        if abs(sep - (r + r2)) > 1e-9:
            assert shapes.intersects(c, c2) == (sep <= r + r2)
        if abs(sep + r2 - r) > 1e-9:
            assert shapes.contains(c2, c) == (sep + r2 <= r or r >= 180)
    # wrap and poles: the same point under other coordinates
    assert shapes.intersects(shapes.Point(0, 10), shapes.Point(360, 10))
    assert shapes.contains(shapes.Point(12, 90), shapes.Point(250, 90))
    assert not shapes.intersects(shapes.Point(0, 10), shapes.Point(0, 10.001))
    assert shapes.contains(shapes.Circle(5, 5, 0), shapes.Point(5, 5))
    assert not shapes.contains(shapes.Circle(5, 5, 0.001), shapes.Point(5, 5))
    assert shapes.contains(shapes.Circle(5, 5, 100), shapes.Circle(185, -5, 180))
    with pytest.raises(ValueError, match="declination"):
        shapes.intersects(shapes.Point(1, 95), shapes.Circle(1, 2, 3))


def test_point_in_polygon_matches_winding():
    rng = np.random.default_rng(2)
    for _ in range(60):
        ra0, dec0 = random_centre(rng)
        verts = star_polygon(rng, ra0, dec0, float(10 ** rng.uniform(-3, 1.4)))
        poly = shapes.Polygon(verts)
        size = max(ang(xyz(ra0, dec0), v) for v in poly_vecs(verts))
        ras, decs = offset(np.full(300, ra0), np.full(300, dec0),
                           np.degrees(size) * rng.uniform(0, 1.3, 300), rng.uniform(0, 360, 300))
        pts = xyz(ras, decs)  # random: none within rounding of an edge
        want = winding_inside(pts, poly_vecs(verts))
        for ra, dec, w in zip(ras, decs, want, strict=True):
            p = shapes.Point(float(ra), float(dec))
            assert shapes.intersects(p, poly) == shapes.contains(p, poly) == w


def _circle_cases(rng, n):
    """Random polygons with circles of every size around, many grazing an edge."""
    for _ in range(n):
        ra0, dec0 = random_centre(rng)
        size = float(10 ** rng.uniform(-2, 1.3))
        verts = star_polygon(rng, ra0, dec0, size)
        r = float(10 ** rng.uniform(math.log10(1 / 3600), 2.1))
        kind = rng.random()
        if kind < 0.2:  # a small circle in the middle: often inside
            r = float(size * 10 ** rng.uniform(-4, -0.5))
            cra, cdec = offset(ra0, dec0, float(0.1 * size * rng.random()), rng.uniform(0, 360))
        elif kind < 0.7:  # near the boundary, at a few radii from it
            vs = poly_vecs(verts)
            k = int(rng.integers(len(vs)))
            foot = slerp(vs[k], vs[(k + 1) % len(vs)], rng.uniform(0, 1))
            fra, fdec = radec(foot)
            d = min(r * rng.uniform(0, 3), 150.0)
            cra, cdec = offset(float(fra), float(fdec), d, float(rng.uniform(0, 360)))
        else:
            cra, cdec = offset(ra0, dec0, float(rng.uniform(0, 3) * size), rng.uniform(0, 360))
        yield verts, float(cra), float(cdec), r


@pytest.mark.parametrize("seed", range(4))
def test_circle_polygon_against_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    decided = {(k, v): 0 for k in ("intersects", "circle_in", "poly_in") for v in (0, 1)}
    for verts, cra, cdec, r in _circle_cases(rng, 120):
        poly, circle = shapes.Polygon(verts), shapes.Circle(cra, cdec, r)
        c = xyz(cra, cdec)[None, :]
        dist, bdist = (float(x[0]) for x in ref_polygon_distance(c, verts))
        rr = math.radians(r)
        margin = 1e-9
        if abs(dist - rr) > margin:
            got = shapes.intersects(circle, poly)
            assert got == shapes.intersects(poly, circle) == (dist <= rr), (verts, cra, cdec, r)
            decided["intersects", got] += 1
        inside = dist == 0.0
        if abs(bdist - rr) > margin:
            want = inside and bdist >= rr
            assert shapes.contains(circle, poly) == want, (verts, cra, cdec, r)
            decided["circle_in", want] += 1
        vs = poly_vecs(verts)
        if winding_inside(-c, vs)[0]:
            far = math.pi
        else:
            far = float(boundary_extreme(c, vs, largest=True)[0])
        if abs(far - rr) > margin:
            assert shapes.contains(poly, circle) == (far <= rr), (verts, cra, cdec, r)
            decided["poly_in", far <= rr] += 1
    assert min(decided.values()) >= 10, decided


def test_polygon_in_big_circle():
    # the cap beyond a hemisphere is not convex: all vertices inside is not enough
    verts = [(0, -10), (120, -10), (240, -10)]  # a triangle around the south pole
    around_north = shapes.Circle(0, 90, 100.5)
    assert all(shapes.intersects(shapes.Point(*v), around_north) for v in verts)
    assert not shapes.contains(shapes.Polygon(verts), around_north)  # misses the pole
    assert shapes.contains(shapes.Polygon(verts), shapes.Circle(0, 90, 180))
    edge = [(0, -10), (40, -10), (20, -5)]  # an edge bulging below -10 (great circle)
    mid = xyz(0, -10) + xyz(40, -10)
    far = 90 - math.degrees(math.asin(mid[2] / np.linalg.norm(mid)))
    assert far > 100.5
    assert all(shapes.intersects(shapes.Point(*v), shapes.Circle(0, 90, far - 0.05))
               for v in edge)
    assert not shapes.contains(shapes.Polygon(edge), shapes.Circle(0, 90, far - 0.05))
    assert shapes.contains(shapes.Polygon(edge), shapes.Circle(0, 90, far + 0.05))


def _polygon_pairs(rng, n):
    for _ in range(n):
        ra0, dec0 = random_centre(rng)
        size = float(10 ** rng.uniform(-2, 1.2))
        p = star_polygon(rng, ra0, dec0, size)
        if rng.random() < 0.3:  # a small one near the middle: often inside
            scale, dist = 0.2, float(size * rng.uniform(0, 0.1))
        else:
            scale, dist = float(rng.choice([0.6, 1.0, 1.5])), float(size * rng.uniform(0, 2))
        qra, qdec = offset(ra0, dec0, dist, rng.uniform(0, 360))
        yield p, star_polygon(rng, float(qra), float(qdec), size * scale)


@pytest.mark.parametrize("seed", range(3))
def test_polygons_against_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    counts = {"meet": 0, "apart": 0, "in": 0, "out": 0}
    for pv, qv in _polygon_pairs(rng, 80):
        p, q = shapes.Polygon(pv), shapes.Polygon(qv)
        pvs, qvs = poly_vecs(pv), poly_vecs(qv)
        pb, gp = boundary_samples(pvs)
        qb, gq = boundary_samples(qvs)
        p_in_q, q_in_p = winding_inside(pb, qvs), winding_inside(qb, pvs)
        gap = min_pair_distance(pb, qb)
        h = 2 * max(gp, gq)
        if p_in_q.any() or q_in_p.any():
            assert shapes.intersects(p, q) and shapes.intersects(q, p), (pv, qv)
            counts["meet"] += 1
        elif gap > h:
            assert not shapes.intersects(p, q) and not shapes.intersects(q, p), (pv, qv)
            counts["apart"] += 1
        for a, b, a_in_b in ((p, q, p_in_q), (q, p, q_in_p)):
            if not a_in_b.all():
                assert not shapes.contains(a, b), (a, b)
                counts["out"] += 1
            elif gap > h:
                assert shapes.contains(a, b), (a, b)
                counts["in"] += 1
    assert min(counts.values()) >= 5, counts


def test_polygon_edge_cases():
    sq = shapes.Polygon([(10, 10), (12, 10), (12, 12), (10, 12)])
    rev = shapes.Polygon([(10, 12), (12, 12), (12, 10), (10, 10)])
    assert shapes.contains(sq, rev) and shapes.contains(rev, sq)  # same region, any order
    # sharing one edge, the other side: they touch
    right = shapes.Polygon([(12, 10), (14, 10), (14, 12), (12, 12)])
    assert shapes.intersects(sq, right) and not shapes.contains(sq, right)
    # a cross: no vertex of either inside the other, the edges cross
    wide = shapes.Polygon([(9, 10.8), (13, 10.8), (13, 11.2), (9, 11.2)])
    tall = shapes.Polygon([(10.8, 9), (11.2, 9), (11.2, 13), (10.8, 13)])
    assert shapes.intersects(wide, tall) and not shapes.contains(wide, tall)
    # a concave polygon whose notch an inner polygon's edge runs through
    notch = shapes.Polygon([(0, 0), (4, 0), (4, 4), (2, 1), (0, 4)])
    assert not shapes.contains(shapes.Polygon([(0.5, 0.5), (3.5, 0.5), (3.5, 2), (0.5, 2)]),
                               notch)
    assert shapes.contains(shapes.Polygon([(0.5, 0.2), (3.5, 0.2), (2, 0.8)]), notch)
    # around the pole and across RA 0
    cap = shapes.Polygon([(0, 80), (90, 80), (180, 80), (270, 80)])
    assert shapes.intersects(shapes.Point(123, 89.9), cap)
    # its edges are great circles: they pass closer to the pole than 10 degrees
    mid = xyz(0, 80) + xyz(90, 80)
    reach = 90 - math.degrees(math.asin(mid[2] / np.linalg.norm(mid)))
    assert reach < 7.2
    assert shapes.contains(shapes.Circle(77, 90, reach - 0.01), cap)
    assert not shapes.contains(shapes.Circle(77, 90, reach + 0.01), cap)
    assert shapes.contains(cap, shapes.Circle(77, 90, 10.01))
    assert not shapes.contains(cap, shapes.Circle(77, 90, 9.99))
    across = shapes.Polygon([(359, -1), (1, -1), (1, 1), (359, 1)])
    assert shapes.contains(shapes.Circle(0, 0, 0.9), across)
    assert shapes.intersects(shapes.Circle(180, 0, 179.5), across)
    assert not shapes.intersects(shapes.Circle(180, 0, 178.5), across)


def test_range_point():
    r = shapes.Range(350, 10, -5, 5)  # wraps through RA 0
    assert r.has(xyz(355, 0)) and r.has(xyz(5, 4.99)) and r.has(xyz(0, -5))
    assert not r.has(xyz(11, 0)) and not r.has(xyz(349, 0)) and not r.has(xyz(0, 5.1))
    up = shapes.Range(10, 20, 80, math.inf)
    assert up.has(xyz(200, 90)) and not up.has(xyz(200, 89))  # the pole is in it
    assert shapes.Range(-math.inf, math.inf, -math.inf, math.inf).has(xyz(123, -45))
    assert shapes.Range(0, 360, -1, 1).full and shapes.Range(-10, 10, 0, 1).width == 20
    assert shapes.Range(0, 1, 95, math.inf).empty


def _range_cases(rng, n):
    for _ in range(n):
        ra0, dec0 = random_centre(rng)
        size = float(10 ** rng.uniform(-1.5, 1.2))
        verts = star_polygon(rng, ra0, dec0, size)
        kind = rng.integers(0, 5)
        w = float(size * rng.uniform(0.2, 4))
        lon1 = float((ra0 + rng.uniform(-2, 2) * size) % 360.0)
        lat1 = float(dec0 + rng.uniform(-2, 1) * size)
        lat2 = lat1 + float(size * rng.uniform(0.1, 3))
        if kind == 0:
            lon1, lon2 = -math.inf, math.inf
        elif kind == 1:
            lon2 = (lon1 + w) % 360.0  # often wrapping through 0 (lon1 > lon2)
        elif kind == 2:
            lat2 = math.inf
            lon2 = lon1 + w
        else:
            lon2 = lon1 + w
        yield verts, (lon1, lon2, lat1, lat2)


@pytest.mark.parametrize("seed", range(3))
def test_polygon_range_against_brute_force(seed):
    rng = np.random.default_rng(300 + seed)
    counts = {"meet": 0, "apart": 0}
    for verts, values in _range_cases(rng, 100):
        poly, rng_shape = shapes.Polygon(verts), shapes.Range(*values)
        vs = poly_vecs(verts)
        pb, gp = boundary_samples(vs, 400)
        rb, gr = range_boundary(values)
        pra, pdec = radec(pb)
        p_in = range_has(pra, pdec, values)
        r_in = winding_inside(rb, vs)
        got = shapes.intersects(poly, rng_shape)
        assert got == shapes.intersects(rng_shape, poly)
        if p_in.any() or r_in.any():
            assert got, (verts, values)
            counts["meet"] += 1
        elif min_pair_distance(pb, rb) > 2 * max(gp, gr):
            assert not got, (verts, values)
            counts["apart"] += 1
    assert min(counts.values()) >= 10, counts


def test_range_edge_cases():
    box = shapes.box(0.0, 50.0, 0.3, 0.3)  # around RA 0
    assert shapes.intersects(box, shapes.Range(359.0, 1.0, 49.0, 51.0))
    assert shapes.intersects(box, shapes.Range(359.9, 359.95, 49.0, 51.0))  # an inner strip
    assert not shapes.intersects(box, shapes.Range(1.0, 359.0, 49.0, 51.0))  # the rest
    # a parallel is a small circle: the box's top edge (a great circle) bulges north
    # of its corners' latitude in the middle
    corners = box_vertices(10.0, 30.0, 4.0, 4.0)
    top = max(v[1] for v in corners)
    bulge = shapes.box(10.0, 30.0, 4.0, 4.0)
    assert shapes.intersects(bulge, shapes.Range(9.9, 10.1, top + 1e-4, 40))
    assert not shapes.intersects(bulge, shapes.Range(9.9, 10.1, top + 0.1, 40))
    # a box around the pole meets every longitude range touching it
    polar = shapes.box(0.0, 90.0, 1.0, 1.0)
    assert shapes.intersects(polar, shapes.Range(100, 101, 89.9, 89.95))
    assert not shapes.intersects(polar, shapes.Range(100, 101, 80, 89))


def test_errors():
    with pytest.raises(ValueError, match="hemisphere"):
        shapes.Polygon([(0, 0), (120, 0), (240, 0)])
    with pytest.raises(ValueError, match="declination"):
        shapes.Polygon([(0, 0), (1, 100), (2, 0)])
    with pytest.raises(ValueError):
        shapes.intersects(shapes.Circle(0, 0, -1), shapes.Point(0, 0))
