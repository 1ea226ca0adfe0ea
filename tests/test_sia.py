"""SIA 2.0 against live servers (SQLite and MariaDB)."""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from conftest import ALICE, BOB
from test_scs import votlint
from test_shapes import (
    boundary_samples,
    poly_vecs,
    radec,
    range_boundary,
    range_has,
    winding_inside,
    xyz,
)

from voservice.demo import ARCHIVE_SOURCES
from voservice.ingest.tree import walk

DEL_CEP = (337.292771, 58.415197)
OBSCORE_MANDATORY = [
    "dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did",
    "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec", "s_fov",
    "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max", "t_exptime",
    "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel", "o_ucd",
    "pol_states", "pol_xel", "facility_name", "instrument_name",
]


#: the sources whose frames the geometry cases below are designed around (the campaign's
#: frames have other fields of view)
ARCHIVE = [src.name for src in ARCHIVE_SOURCES]


def query(url: str, auth: tuple[str, str] | None = None, **params: object) -> requests.Response:
    return requests.get(f"{url}/sia/query", params=params, auth=auth, timeout=30)


def archive(url: str, auth: tuple[str, str] | None = None, **params: object
            ) -> requests.Response:
    """A query of the archive sources' frames only."""
    return query(url, auth, COLLECTION=params.pop("COLLECTION", ARCHIVE), **params)


@dataclass(frozen=True)
class TreeFrames:
    """The frames of one series of the upload tree, with the series' metadata."""

    source: str
    target: str
    access: str
    instrument: str
    facility: str
    count: int


@pytest.fixture(scope="module")
def tree_frames(demo_tree) -> list[TreeFrames]:  # noqa: ANN001
    """What the tree holds: the expected answers come from here, not from the service."""
    out = []
    for s in walk(demo_tree).series:
        if s.frames and s.meta is not None:
            with s.meta.open(newline="") as f:
                row = next(csv.DictReader(f))
            out.append(TreeFrames(s.key.source, row["target.target"], row["access.access"],
                                  row["instrument.instrument"], row["facility.facility"],
                                  len(s.frames)))
    return out


def n_frames(frames: list[TreeFrames], *, open_only: bool = False, archive_only: bool = False,
             **match: str) -> int:
    """How many frames of the tree match."""
    return sum(f.count for f in frames
               if (not open_only or f.access == "open")
               and (not archive_only or f.source in ARCHIVE)
               and all(getattr(f, k) == v for k, v in match.items()))


def rows(response: requests.Response):  # noqa: ANN201 - astropy Table
    assert response.status_code == 200, response.text
    return parse(io.BytesIO(response.content)).get_first_table().to_table()


def test_pyvo_sia2(server, tree_frames) -> None:  # noqa: ANN001
    service = pyvo.dal.SIA2Service(f"{server.url}/sia")
    results = service.search(pos=(DEL_CEP[0] * u.deg, DEL_CEP[1] * u.deg, 0.05 * u.deg))
    assert len(results) == n_frames(tree_frames, open_only=True, target="del_Cep") > 0
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


def test_access_rights(server, tree_frames) -> None:  # noqa: ANN001
    opened = {f.target for f in tree_frames if f.access == "open"}
    anon = rows(query(server.url, MAXREC=1000))
    assert set(anon["target_name"]) == opened
    assert len(anon) == n_frames(tree_frames, open_only=True)
    assert len(rows(query(server.url, BOB, MAXREC=1000))) == len(anon)
    alice = rows(query(server.url, ALICE, MAXREC=1000))
    assert len(alice) == n_frames(tree_frames) > len(anon)
    assert set(alice["target_name"]) == {f.target for f in tree_frames} > opened


def test_parameters(server, tree_frames) -> None:  # noqa: ANN001
    def n(auth=None, **params: object) -> int:
        return len(rows(archive(server.url, auth, MAXREC=1000, **params)))

    def want(**match: str) -> int:
        return n_frames(tree_frames, open_only=True, archive_only=True, **match)

    cep = want(target="del_Cep")
    assert cep > 0 and want() == cep  # the archive's open frames are del_Cep's
    ra, dec = DEL_CEP
    assert n(POS=f"CIRCLE {ra} {dec} 0.01") == cep
    assert n(POS=f"CIRCLE {ra} {dec + 0.3} 0.01") == 0  # outside the field of view
    assert n(POS=f"RANGE {ra - 1} {ra + 1} {dec - 1} {dec + 1}") == cep
    assert n(POS=f"POLYGON {ra - 1} {dec - 1} {ra + 1} {dec - 1} {ra + 1} {dec + 1} {ra - 1} "
             f"{dec + 1}") == cep
    # several POS are ORed; R_Cas near RA 0 through a RANGE wrapping 0/360
    cas = n_frames(tree_frames, archive_only=True, target="R_Cas")
    assert cas > 0
    assert n(ALICE, POS=["RANGE 359 1 50 52", "CIRCLE 10 10 1"]) == cas
    assert n(ALICE, POS="CIRCLE 0.2 51.4 1") == cas
    assert n(BAND="3.9e-7 4.1e-7") > 0 and n(BAND="1e-5 +Inf") == 0
    assert n(DPTYPE="image") == cep and n(DPTYPE="cube") == 0
    assert n(CALIB=[0, 1]) == cep and n(CALIB=3) == 0
    assert n(COLLECTION="skalnate") == want(source="skalnate") > 0
    assert n(COLLECTION="upjs") == want(source="upjs") == 0
    instrument = "1.3 m Nasmyth-Cassegrain with FLI"
    assert n(INSTRUMENT=instrument) == want(instrument=instrument) > 0
    assert n(FACILITY="Skalnate Pleso Observatory", TARGET="del_Cep", FORMAT="image/png") == (
        want(facility="Skalnate Pleso Observatory", target="del_Cep"))
    assert n(EXPTIME="0 1") == 0 and n(EXPTIME="-Inf +Inf") == cep
    assert n(FOV="0.2 0.3") == cep and n(SPATRES="0 10") == 0 and n(POL="I") == 0
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


# -- POS is exact: the frames whose square region meets the shape ------------------
# The expectation is computed independently: each frame's region is sampled densely
# (a grid over the square, its edges, all in the square's own astropy offset frame,
# where its great-circle edges are straight lines of the gnomonic projection), and
# the shape's boundary is sampled too (a region inside the other has no crossing).

def _offset_frame(ra: float, dec: float):  # noqa: ANN202 - astropy frame
    return SkyCoord(ra * u.deg, dec * u.deg).skyoffset_frame()


def _from_offsets(ra: float, dec: float, lon, lat) -> SkyCoord:
    """ICRS positions of offsets (degrees) in the frame centred on (ra, dec)."""
    return SkyCoord(lon=np.asarray(lon, float) * u.deg, lat=np.asarray(lat, float) * u.deg,
                    frame=_offset_frame(ra, dec)).icrs


def _square_extent(fov: float) -> tuple[float, float]:
    """Gnomonic half-sizes of the square whose corners are at (+-fov/2, +-fov/2)."""
    a = math.radians(fov / 2)
    return math.tan(a), math.tan(a) / math.cos(a)


@functools.cache
def _square_points(ra: float, dec: float, fov: float, n: int = 61, edge: int = 600) -> SkyCoord:
    gx, gy = _square_extent(fov)
    g = np.linspace(-1, 1, n)
    e = np.linspace(-1, 1, edge)
    x, y = np.meshgrid(g * gx, g * gy)
    px = np.concatenate([x.ravel(), e * gx, e * gx, np.full(edge, -gx), np.full(edge, gx)])
    py = np.concatenate([y.ravel(), np.full(edge, -gy), np.full(edge, gy), e * gy, e * gy])
    lon = np.degrees(np.arctan(px))
    lat = np.degrees(np.arctan2(py, np.hypot(1, px)))
    return _from_offsets(ra, dec, lon, lat)


def _in_square(points: SkyCoord, ra: float, dec: float, fov: float) -> np.ndarray:
    off = points.transform_to(_offset_frame(ra, dec))
    v = xyz(off.lon.deg, off.lat.deg)
    gx, gy = _square_extent(fov)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (v[:, 0] > 0) & (np.abs(v[:, 1] / v[:, 0]) <= gx) & (np.abs(v[:, 2] / v[:, 0])
                                                                     <= gy)


def _circle_ref(ra: float, dec: float, r: float):  # noqa: ANN202
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    pa = np.linspace(0, 360, 7200, endpoint=False)
    ring = centre.directional_offset_by(pa * u.deg, np.full(len(pa), r) * u.deg)
    points = SkyCoord(np.append(ring.ra.deg, ra) * u.deg, np.append(ring.dec.deg, dec) * u.deg)
    return (lambda c: c.separation(centre).deg <= r), points


def _range_ref(values: tuple[float, float, float, float]):  # noqa: ANN202
    pts, _ = range_boundary(values, 5000)
    ra, dec = radec(pts)
    return (lambda c: range_has(c.ra.deg, c.dec.deg, values)), SkyCoord(ra * u.deg, dec * u.deg)


def _polygon_ref(verts: list[tuple[float, float]]):  # noqa: ANN202
    vs = poly_vecs(verts)
    pts, _ = boundary_samples(vs, 4000)
    ra, dec = radec(pts)
    return ((lambda c: winding_inside(xyz(c.ra.deg, c.dec.deg), vs)),
            SkyCoord(ra * u.deg, dec * u.deg))


def _pos_text(kind: str, values) -> str:  # noqa: ANN001
    if kind == "POLYGON":
        values = [x for v in values for x in v]
    return kind + " " + " ".join("-Inf" if x == -math.inf else "+Inf" if x == math.inf
                                 else repr(float(x)) for x in values)


def _expected_frames(frames, refs) -> set[str]:  # noqa: ANN001
    """DIDs of the frames whose region meets one of the (predicate, points) references."""
    out, cache = set(), {}
    for did, ra, dec, fov in frames:
        key = (ra, dec, fov)
        if key not in cache:
            if fov is None:
                here = SkyCoord(ra * u.deg, dec * u.deg)
                cache[key] = any(bool(np.any(pred(SkyCoord([here])))) for pred, _ in refs)
            else:
                square = _square_points(ra, dec, fov)
                cache[key] = any(bool(pred(square).any() or _in_square(pts, ra, dec, fov).any())
                                 for pred, pts in refs)
        if cache[key]:
            out.add(did)
    return out


@pytest.fixture(scope="module")
def frames(server, tree_frames):  # noqa: ANN001, ANN201
    """The archive sources' frames as alice sees them (did, ra, dec, fov)."""
    t = rows(archive(server.url, ALICE, MAXREC=1000))
    out = [(str(r["obs_publisher_did"]), float(r["s_ra"]), float(r["s_dec"]),
            None if np.ma.is_masked(r["s_fov"]) else float(r["s_fov"])) for r in t]
    assert len(out) == n_frames(tree_frames, archive_only=True)
    return out


def _target(frames, name_ra: float):  # noqa: ANN001, ANN202
    """(ra, dec, fov) of the target at that RA."""
    return next((ra, dec, fov) for _, ra, dec, fov in frames if abs(ra - name_ra) < 1e-3)


ALGOL_RA, DEL_CEP_RA, R_CAS_RA = 47.042215, DEL_CEP[0], 359.603625


def _pos_cases(frames):  # noqa: ANN001, ANN202
    """(name, POS kind, values) designed around the sample targets."""
    cases = []
    ra, dec, fov = _target(frames, DEL_CEP_RA)
    corner = math.degrees(math.acos(math.cos(math.radians(fov / 2)) ** 2))
    # circles beyond the north-east corner along the diagonal: one reaches the corner by
    # 0.01 deg (a circle of radius fov/2 around the target would not), one misses it
    for name, gap in (("corner-touch", 0.01), ("corner-miss", -0.01)):
        c = _from_offsets(ra, dec, [corner * 0.7071 + 0.1], [corner * 0.7071 + 0.1])[0]
        far = SkyCoord(ra * u.deg, dec * u.deg).separation(c).deg
        cases.append((name, "CIRCLE", (c.ra.deg, c.dec.deg, far - corner + gap)))
    # north of the top edge: the SQL prefilter keeps it, the exact test does not
    c = _from_offsets(ra, dec, [0.0], [fov / 2 + 0.05])[0]
    cases.append(("edge-miss", "CIRCLE", (c.ra.deg, c.dec.deg, 0.045)))
    cases.append(("edge-touch", "CIRCLE", (c.ra.deg, c.dec.deg, 0.055)))
    # R_Cas: RANGEs wrapping through RA 0, reaching into its square or just missing it
    rra, rdec, rfov = _target(frames, R_CAS_RA)
    east = rra + rfov / 2 / math.cos(math.radians(rdec))
    cases.append(("wrap-touch", "RANGE", (east - 0.01, 0.5, 51.0, 52.0)))
    cases.append(("wrap-miss", "RANGE", (east + 0.016, 0.5, 51.0, 52.0)))
    cases.append(("wrap-all", "RANGE", (359.0, 1.0, 50.0, 52.0)))
    # Algol: longitude strips with infinite latitudes, a latitude band with infinite
    # longitudes, the corner of a RANGE
    ara, adec, afov = _target(frames, ALGOL_RA)
    aeast = ara + afov / 2 / math.cos(math.radians(adec + afov / 2))
    cases.append(("strip-touch", "RANGE", (aeast - 0.03, aeast + 1, -math.inf, math.inf)))
    cases.append(("strip-miss", "RANGE", (aeast + 0.03, aeast + 1, -math.inf, math.inf)))
    cases.append(("band", "RANGE", (-math.inf, math.inf, 58.52, math.inf)))
    top = _from_offsets(ara, adec, [afov / 2], [afov / 2])[0]
    cases.append(("range-corner", "RANGE", (top.ra.deg - 0.01, top.ra.deg + 0.3,
                                             top.dec.deg - 0.01, top.dec.deg + 0.3)))
    cases.append(("range-corner-miss", "RANGE", (top.ra.deg + 0.01, top.ra.deg + 0.3,
                                                  top.dec.deg + 0.01, top.dec.deg + 0.3)))
    # Algol: polygons whose edges cross the square with no vertex inside either
    a = afov / 2
    for name, y0 in (("sliver-cross", a - 0.07), ("sliver-miss", a + 0.02)):
        sliver = _from_offsets(ara, adec, [-a - 0.1, a + 0.1, a + 0.1, -a - 0.1],
                               [y0, y0, y0 + 0.02, y0 + 0.02])
        cases.append((name, "POLYGON", list(zip(sliver.ra.deg, sliver.dec.deg, strict=True))))
    cut = _from_offsets(ara, adec, [a + 0.1, a - 0.12, a + 0.3], [a - 0.12, a + 0.1, a + 0.3])
    cases.append(("corner-cut", "POLYGON", list(zip(cut.ra.deg, cut.dec.deg, strict=True))))
    return cases


def _refs(kind: str, values):  # noqa: ANN001, ANN202
    if kind == "CIRCLE":
        return _circle_ref(*values)
    if kind == "RANGE":
        return _range_ref(values)
    return _polygon_ref(values)


def test_pos_exact(server, frames, tree_frames) -> None:  # noqa: ANN001
    found = {}
    for name, kind, values in _pos_cases(frames):
        want = _expected_frames(frames, [_refs(kind, values)])
        got = rows(archive(server.url, ALICE, MAXREC=1000, POS=_pos_text(kind, values)))
        assert set(got["obs_publisher_did"]) == want, (name, _pos_text(kind, values))
        assert len(got) == len(want)
        found[name] = len(want)
    # the cases are what their names say: each touching one selects one target's frames
    for name, n in found.items():
        assert (n == 0) == ("miss" in name), found
    cas = n_frames(tree_frames, archive_only=True, target="R_Cas")
    cep = n_frames(tree_frames, archive_only=True, target="del_Cep")
    assert found["wrap-all"] == found["wrap-touch"] == cas and found["band"] == cep


def test_pos_or_exact(server, frames, tree_frames) -> None:  # noqa: ANN001
    cases = {name: (kind, values) for name, kind, values in _pos_cases(frames)}
    names = ["corner-touch", "strip-touch", "wrap-miss", "sliver-miss"]
    want = _expected_frames(frames, [_refs(*cases[n]) for n in names])
    got = rows(archive(server.url, ALICE, MAXREC=1000,
                       POS=[_pos_text(*cases[n]) for n in names]))
    assert set(got["obs_publisher_did"]) == want
    assert len(want) == sum(n_frames(tree_frames, archive_only=True, target=t)
                            for t in ("del_Cep", "Algol"))


def test_pos_maxrec_with_filter(server, frames, tree_frames) -> None:  # noqa: ANN001
    # a circle around del_Cep reaching R_Cas but stopping 0.25 deg short of Algol: the
    # SQL prefilter (target within 1.5 half fields of view) keeps Algol's frames,
    # which come first in time order; the exact test drops them
    ra, dec, _ = _target(frames, DEL_CEP_RA)
    ara, adec, _ = _target(frames, ALGOL_RA)
    r = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ara * u.deg, adec * u.deg)).deg
    pos = f"CIRCLE {ra} {dec} {r - 0.25}"
    want = _expected_frames(frames, [_circle_ref(ra, dec, r - 0.25)])
    total = len(want)
    assert total == sum(n_frames(tree_frames, archive_only=True, target=t)
                        for t in ("del_Cep", "R_Cas"))
    full = archive(server.url, ALICE, MAXREC=1000, POS=pos)
    every = list(rows(full)["obs_publisher_did"])
    assert set(every) == want and len(every) == total and b"OVERFLOW" not in full.content
    for maxrec in (1, 2, total // 2, total - 1, total, total + 1):
        response = archive(server.url, ALICE, MAXREC=maxrec, POS=pos)
        got = list(rows(response)["obs_publisher_did"])
        assert got == every[:maxrec], maxrec
        overflow = b'name="QUERY_STATUS" value="OVERFLOW"' in response.content
        assert overflow == (maxrec < total), maxrec
        assert votlint(response.content) == "", maxrec


def test_region_matches_without_field_of_view() -> None:
    from voservice.protocols.sia import parse_pos, pos_shape, region_matches

    circle = [pos_shape(*parse_pos("CIRCLE 10 20 0.1"))]
    assert region_matches(circle, 10.05, 20.0, None)
    assert not region_matches(circle, 10.2, 20.0, None)
    assert not region_matches(circle, 10.2, 20.0, 0.0)  # no field of view: the target only
    assert region_matches(circle, 10.2, 20.0, 0.3)  # a square reaching the circle
    wrap = [pos_shape(*parse_pos("RANGE 359 1 -Inf +Inf"))]
    assert region_matches(wrap, 0.5, 89.0, None) and region_matches(wrap, 359.5, -89.0, None)
    assert not region_matches(wrap, 1.5, 0.0, None) and region_matches(wrap, 1.5, 0.0, 1.5)
    assert not region_matches(circle, None, 20.0, 0.3)
