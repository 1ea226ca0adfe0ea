"""SIA 2.0 (``/sia/query``): the image frames as ObsCore-shaped rows.

Every parameter is multi-valued: values of one parameter are ORed, different
parameters ANDed; a constraint on metadata that is null never matches.  A
frame's sky region (``s_region``) is the great-circle square of the
instrument's field of view around its target (``BOX(ra, dec, fov, fov)``);
POS (CIRCLE, RANGE, POLYGON) selects the frames whose region intersects the
shape, exactly: SQL keeps every frame whose target is within 1.5 half fields
of view (more than the square's circumradius) of the shape, a generous and
index-friendly prefilter that never loses a frame, then
:mod:`adql.shapes` tests each candidate's square against the shapes (a RANGE
has two meridian arcs and two parallels, which are small circles).  A frame
without a field of view matches by its target position alone.  With POS,
the candidates are read in pages (LIMIT/OFFSET, doubling) until MAXREC+1
frames have passed, so MAXREC and the OVERFLOW status stay exact.
The frame bytes are served by the frame endpoint; access_url points there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cache, lru_cache
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response
from lxml import etree
from werkzeug.datastructures import MultiDict

from adql import geometry, shapes
from voservice import catalog, tables
from voservice.access import Principal, visible_clause
from voservice.archive.describe import SERVICES_DIR, field_of
from voservice.archive.rows import (
    QueryFailed,
    column_compiler,
    filtered_rows,
    limited_rows,
    run_select,
)
from voservice.config import Settings
from voservice.context import principal, services
from voservice.protocols import dali, vosi
from voservice.protocols.vosi import dal_capability
from voservice.urls import frame_url
from voservice.votable import Field, Info, Resource, UnwritableValue, error_document, write_table

bp = Blueprint("sia", __name__)

SIA_STANDARD_ID = "ivo://ivoa.net/std/SIA#query-2.0"
RANGE_PARAMS = ("BAND", "TIME", "EXPTIME", "FOV", "SPATRES", "SPECRP", "TIMERES")
STRING_PARAMS = ("ID", "COLLECTION", "FACILITY", "INSTRUMENT", "DPTYPE", "TARGET", "FORMAT",
                 "POL")
CALIB_LEVEL = 1
#: a frame's square of side fov reaches at most this factor times fov/2 from
#: its target (the circumradius acos(cos^2(fov/2)) is below sqrt(2) fov/2)
REACH = 1.5


# --------------------------------------------------------------------------
# Identifiers


def frame_did(authority: str, observation_uuid: str, frame_index: int) -> str:
    """Publisher DID of one frame."""
    return f"{catalog.publisher_did(authority, observation_uuid)}/frame/{frame_index}"


def parse_frame_did(did: str, authority: str) -> tuple[str, int] | None:
    """(observation uuid, frame index) of one of our frame DIDs, else None."""
    prefix = catalog.did_prefix(authority)
    if not did.lower().startswith(prefix.lower()):
        return None
    uuid, sep, index = did[len(prefix):].partition("/frame/")
    if not sep or not index.isdigit():
        return None
    return uuid, int(index)


# --------------------------------------------------------------------------
# Columns


@cache
def _fields() -> tuple[Field, ...]:
    import tomllib

    with (SERVICES_DIR / "sia.toml").open("rb") as fh:
        overrides = {c["name"]: c for c in tomllib.load(fh).get("column", [])}
    out = []
    for desc in tables.table("ivoa.obscore").columns:
        extra = {k: v for k, v in overrides.get(desc.name, {}).items() if k != "name"}
        out.append(field_of(desc, **extra))
    return tuple(out)


def sia_fields() -> list[Field]:
    """The response FIELDs: the ivoa.obscore columns, described for frames."""
    return [replace(f) for f in _fields()]


# --------------------------------------------------------------------------
# Parameters


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise dali.UsageError(f"{name}: {text!r} is not a number") from None
    if math.isnan(value):
        raise dali.UsageError(f"{name}: {text!r} is not a number")
    return value


def parse_range(text: str, name: str) -> tuple[float, float]:
    """``lo hi`` (or one value) with -Inf/+Inf allowed."""
    parts = text.split()
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise dali.UsageError(f"{name}={text!r}: expected 'lo hi'")
    lo, hi = (_float(x, name) for x in parts)
    if lo > hi:
        raise dali.UsageError(f"{name}={text!r}: lower bound above upper bound")
    return lo, hi


def parse_pos(text: str) -> tuple[str, list[float]]:
    """POS: ``CIRCLE ra dec r`` | ``RANGE lon1 lon2 lat1 lat2`` | ``POLYGON lon lat ...``."""
    parts = text.split()
    if not parts:
        raise dali.UsageError("POS is empty")
    shape = parts[0].upper()
    nums = [_float(x, "POS") for x in parts[1:]]
    if shape == "CIRCLE":
        if len(nums) != 3:
            raise dali.UsageError(f"POS={text!r}: CIRCLE takes ra dec radius")
        ra, dec, r = nums
        if not (math.isfinite(ra) and -90 <= dec <= 90 and 0 <= r <= 180):
            raise dali.UsageError(f"POS={text!r}: bad CIRCLE values")
        return shape, [ra % 360.0, dec, r]
    if shape == "RANGE":
        if len(nums) != 4:
            raise dali.UsageError(f"POS={text!r}: RANGE takes lon1 lon2 lat1 lat2")
        if nums[2] > nums[3]:
            raise dali.UsageError(f"POS={text!r}: lat1 above lat2")
        return shape, nums
    if shape == "POLYGON":
        if len(nums) < 6 or len(nums) % 2:
            raise dali.UsageError(f"POS={text!r}: POLYGON takes at least 3 lon lat pairs")
        if not all(math.isfinite(x) for x in nums):
            raise dali.UsageError(f"POS={text!r}: POLYGON values must be finite")
        return shape, nums
    raise dali.UsageError(f"POS={text!r}: shape must be CIRCLE, RANGE or POLYGON")


# --------------------------------------------------------------------------
# The query


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def _in_range(col: sa.ColumnElement[Any], lo: float, hi: float) -> sa.ColumnElement[bool]:
    if lo == math.inf or hi == -math.inf:
        return sa.false()  # no finite value reaches +Inf (or stays below -Inf)
    conds = [col.is_not(None)]
    if math.isfinite(lo):
        conds.append(col >= lo)
    if math.isfinite(hi):
        conds.append(col <= hi)
    return sa.and_(*conds)


def _overlap(lo_col: sa.ColumnElement[Any], hi_col: sa.ColumnElement[Any], lo: float,
             hi: float) -> sa.ColumnElement[bool]:
    if lo == math.inf or hi == -math.inf:
        return sa.false()  # infinities are never bound: MySQL cannot take them
    conds = [lo_col.is_not(None), hi_col.is_not(None)]
    if math.isfinite(hi):
        conds.append(lo_col <= hi)
    if math.isfinite(lo):
        conds.append(hi_col >= lo)
    return sa.and_(*conds)


def _max_half_fov() -> float:
    i = _t("instrument")
    with services().engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(i.c.field_of_view))).scalar()
    return float(value or 0.0) / 2.0


def pos_shape(shape: str, nums: list[float]) -> shapes.Shape:
    """The :mod:`adql.shapes` value of a parsed POS (UsageError if it is unusable)."""
    try:
        if shape == "CIRCLE":
            return shapes.Circle(*nums)
        if shape == "RANGE":
            return shapes.Range(*nums)
        return shapes.polygon(nums)
    except ValueError as exc:
        raise dali.UsageError(f"POS {shape}: {exc}") from None


def _pos_condition(pos: shapes.Shape, ra_sql: str, dec_sql: str,
                   reach: sa.ColumnElement[Any], max_reach: float, dialect: str,
                   ) -> sa.ColumnElement[bool]:
    """SQL keeping every frame whose region may meet ``pos``: its target lies within
    ``reach`` (per row; ``max_reach`` over all rows) of the shape."""
    ra_col = sa.literal_column(ra_sql, sa.Double)
    dec_col = sa.literal_column(dec_sql, sa.Double)
    if isinstance(pos, shapes.Circle):
        ra, dec, r = pos
        box = geometry.cone_sql(ra_sql, dec_sql, ra, dec, min(180.0, r + max_reach), dialect)
        dist = sa.literal_column(geometry.distance_sql(
            ra_sql, dec_sql, geometry.num(ra), geometry.num(dec), dialect), sa.Double)
        return sa.and_(sa.text(box), dist <= r + reach + 1e-9)
    if isinstance(pos, shapes.Range):
        if pos.empty:
            return sa.false()
        pad = max_reach + 1e-9
        conds = [ra_col.is_not(None)]
        if pos.lat1 - pad > -90.0:
            conds.append(dec_col >= pos.lat1 - pad)
        if pos.lat2 + pad < 90.0:
            conds.append(dec_col <= pos.lat2 + pad)
        worst = max(abs(pos.lat1), abs(pos.lat2))
        if not pos.full and worst + pad < 89.999:
            # a point within max_reach of a point at |dec| <= worst differs in RA by
            # at most asin(sin(reach) / cos(worst))
            widen = math.degrees(math.asin(min(1.0, math.sin(math.radians(pad))
                                               / math.cos(math.radians(worst)))))
            widen = widen * (1 + 1e-9) + 1e-9
            if pos.width + 2 * widen < 360.0:
                lo, hi = pos.start - widen, pos.start + pos.width + widen
                conds.append(sa.or_(*(sa.and_(ra_col + shift >= lo, ra_col + shift <= hi)
                                      for shift in (-360.0, 0.0, 360.0))))
        return sa.and_(*conds)
    try:
        near = geometry.circle_polygon_sql(ra_sql, dec_sql, max_reach + 1e-9, pos.vertices,
                                           "intersects", dialect)
    except ValueError as exc:
        raise dali.UsageError(f"POS POLYGON: {exc}") from None
    return sa.text(near)


@lru_cache(maxsize=4096)
def _frame_region(ra: float, dec: float, fov: float | None) -> shapes.Shape:
    if fov is None or not fov > 0:
        return shapes.Point(ra, dec)
    return shapes.box(ra, dec, fov, fov)


def region_matches(positions: Sequence[shapes.Shape], ra: float | None, dec: float | None,
                   fov: float | None) -> bool:
    """The exact POS test of one frame: its region (or, without a field of view,
    its target) intersects one of the POS shapes."""
    if ra is None or dec is None:
        return False
    if fov is not None and fov >= 180.0:
        return True  # not a square any more: it covers nearly everything
    region = _frame_region(float(ra), float(dec), None if fov is None else float(fov))
    return any(shapes.intersects(region, pos) for pos in positions)


def frame_select(who: Principal, p: MultiDict[str, str], dialect: str, authority: str,
                 compile_column: Callable[[sa.ColumnElement[Any]], str]
                 ) -> tuple[sa.Select, Callable[[Any], bool] | None]:
    """Frames matching the SIA 2.0 constraints that the principal may see, ordered,
    without a LIMIT, and the exact POS test each row must also pass (None without
    POS: the SQL is then exact)."""
    fr, ph, o, t = _t("frame"), _t("photometry"), _t("observation"), _t("target")
    b, i, fa, d = _t("bandpass"), _t("instrument"), _t("facility"), _t("dataid")
    conds: list[sa.ColumnElement[bool]] = [visible_clause(who, o.c.access, o.c.source)]
    half_exposure = sa.func.coalesce(fr.c.exposure, 0.0) / 172800.0
    positions = [pos_shape(*parse_pos(v)) for v in p.getlist("POS")]
    keep: Callable[[Any], bool] | None = None
    if positions:
        ra_sql, dec_sql = compile_column(t.c.right_ascension), compile_column(t.c.declination)
        reach = sa.func.coalesce(i.c.field_of_view, 0.0) * (REACH / 2.0)
        max_reach = _max_half_fov() * REACH
        conds.append(sa.or_(*(
            _pos_condition(pos, ra_sql, dec_sql, reach, max_reach, dialect)
            for pos in positions)))

        def keep(row: Any) -> bool:
            m = row._mapping
            return region_matches(positions, m["right_ascension"], m["declination"],
                                  m["field_of_view"])

    range_columns: dict[str, Callable[[float, float], sa.ColumnElement[bool]]] = {
        "BAND": lambda lo, hi: _overlap(b.c.wavelength_min, b.c.wavelength_max, lo, hi),
        "TIME": lambda lo, hi: _overlap(fr.c.mjd - half_exposure, fr.c.mjd + half_exposure,
                                        lo, hi),
        "EXPTIME": lambda lo, hi: _in_range(fr.c.exposure, lo, hi),
        "TIMERES": lambda lo, hi: _in_range(fr.c.exposure, lo, hi),
        "FOV": lambda lo, hi: _in_range(i.c.field_of_view, lo, hi),
        # s_resolution and em_res_power are not known: null never matches
        "SPATRES": lambda lo, hi: sa.false(),
        "SPECRP": lambda lo, hi: sa.false(),
    }
    for name in RANGE_PARAMS:
        values = p.getlist(name)
        if values:
            conds.append(sa.or_(*(range_columns[name](*parse_range(v, name)) for v in values)))
    calibs = p.getlist("CALIB")
    if calibs:
        try:
            levels = {int(v) for v in calibs}
        except ValueError:
            raise dali.UsageError(f"CALIB={calibs!r}: must be integers") from None
        conds.append(sa.true() if CALIB_LEVEL in levels else sa.false())
    strings: dict[str, Callable[[list[str]], sa.ColumnElement[bool]]] = {
        "COLLECTION": lambda v: o.c.source.in_(v),
        "FACILITY": lambda v: fa.c.facility.in_(v),
        "INSTRUMENT": lambda v: i.c.instrument.in_(v),
        "TARGET": lambda v: t.c.target.in_(v),
        "FORMAT": lambda v: fr.c.content_type.in_(v),
        "DPTYPE": lambda v: sa.true() if "image" in v else sa.false(),
        "POL": lambda v: sa.false(),
        "ID": lambda v: _id_condition(v, authority, o, fr),
    }
    for name in STRING_PARAMS:
        values = p.getlist(name)
        if values:
            conds.append(strings[name](values))
    select = (
        sa.select(
            fr.c.frame_id, fr.c.frame_index, fr.c.mjd, fr.c.exposure, fr.c.content_type,
            fr.c.file_size, o.c.observation_uuid, o.c.source, o.c.night, o.c.access,
            t.c.target, t.c.target_class, t.c.right_ascension, t.c.declination,
            b.c.bandpass, b.c.bandpass_uid, b.c.wavelength_min, b.c.wavelength_max,
            i.c.instrument, i.c.field_of_view, fa.c.facility, d.c.title, d.c.publisher_did,
        )
        .select_from(
            catalog.series_join().join(fr, fr.c.photometry_id == ph.c.photometry_id)
        )
        .where(*conds)
        .order_by(fr.c.mjd, fr.c.frame_id)
    )
    return select, keep


def _id_condition(values: list[str], authority: str, o: sa.Table, fr: sa.Table
                  ) -> sa.ColumnElement[bool]:
    ors = []
    for value in values:
        parsed = parse_frame_did(value.strip(), authority)
        if parsed:
            ors.append(sa.and_(o.c.observation_uuid == parsed[0],
                               fr.c.frame_index == parsed[1]))
    return sa.or_(*ors) if ors else sa.false()


def region(ra: float, dec: float, fov: float | None) -> list[float] | None:
    """DALI polygon (counter-clockwise) of a frame: the field of view around the target
    (the same square as ivoa.obscore's s_region, :func:`adql.geometry.fov_region`)."""
    return geometry.fov_region(ra, dec, fov)


def row_converter(base_url: str, authority: str, fields: Sequence[Field]
                  ) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Turn a :func:`frame_select` row into an ObsCore-shaped row."""
    names = [f.name for f in fields]

    def convert(r: Any) -> tuple[Any, ...]:
        m = r._mapping
        exposure = m["exposure"]
        half = (exposure or 0.0) / 172800.0
        mjd = m["mjd"]
        values = {
            "dataproduct_type": "image",
            "calib_level": CALIB_LEVEL,
            "obs_collection": m["source"],
            "obs_id": m["observation_uuid"],
            "obs_publisher_did": frame_did(authority, m["observation_uuid"], m["frame_index"]),
            "access_url": frame_url(base_url, m["frame_id"]),
            "access_format": m["content_type"],
            "access_estsize": max(1, math.ceil(m["file_size"] / 1024)),
            "target_name": m["target"],
            "target_class": m["target_class"],
            "s_ra": m["right_ascension"],
            "s_dec": m["declination"],
            "s_fov": m["field_of_view"],
            "s_region": region(m["right_ascension"], m["declination"], m["field_of_view"]),
            "s_resolution": None,
            "s_xel1": None,
            "s_xel2": None,
            "t_min": None if mjd is None else mjd - half,
            "t_max": None if mjd is None else mjd + half,
            "t_exptime": exposure,
            "t_resolution": exposure,
            "t_xel": 1,
            "em_min": m["wavelength_min"],
            "em_max": m["wavelength_max"],
            "em_res_power": None,
            "em_xel": 1,
            "o_ucd": None,
            "pol_states": None,
            "pol_xel": None,
            "facility_name": m["facility"],
            "instrument_name": m["instrument"],
            "obs_creator_did": m["publisher_did"],
            "obs_title": f"{m['target']} {m['bandpass']} {m['night']} frame {m['frame_index']}",
            "bandpass_uid": m["bandpass_uid"],
            "access_rights": m["access"],
            "dataproduct_subtype": "frame",
            # a frame is small (a preview is the frame itself) when the browser shows it
            "preview": frame_url(base_url, m["frame_id"])
            if m["content_type"] in ("image/png", "image/jpeg") else None,
        }
        return tuple(values[n] for n in names)

    return convert


def sia_error(message: str, status: int = 400) -> Response:
    """A DALI error document (``UsageFault: ...``)."""
    return Response(error_document(message), status=status, mimetype="application/x-votable+xml")


def self_descriptor(base_url: str) -> Resource:
    """The service's self-description (DataLink 1.1 ``adhoc:this``)."""
    from voservice.votable import Param

    return Resource(
        type="meta", utype="adhoc:this", name="this",
        params=[Param("accessURL", "char", arraysize="*", ucd="meta.ref.url",
                      value=f"{base_url}/sia/query"),
                Param("standardID", "char", arraysize="*", value=SIA_STANDARD_ID)],
    )


@bp.route("/sia/query", methods=["GET", "POST"])
@bp.route("/sia", methods=["GET", "POST"])
def sia_query() -> Response:
    """SIA 2.0 query."""
    svc = services()
    p = dali.params()
    try:
        maxrec = dali.maxrec(p, svc.settings.get("vo", "maxrec_default"),
                             svc.settings.get("vo", "maxrec_hard"))
        if dali.single(p, "RESPONSEFORMAT"):
            fmt = dali.response_format(p)
        else:  # TABLEDATA: small results, and stilts votlint misreads BINARY2 polygons
            fmt = dali.OutputFormat("votable/td", "application/x-votable+xml")
        select, keep = frame_select(principal(), p, svc.dialect, svc.authority,
                                    column_compiler(svc.engine))
    except dali.UsageError as exc:
        return sia_error(f"UsageFault: {exc}")
    fields = sia_fields()
    infos = [Info("standardID", SIA_STANDARD_ID)]
    trailer: Callable[[], list[Info]] | None = None
    if maxrec == 0:
        chunks: Any = iter(())

        def trailer() -> list[Info]:
            return [Info("QUERY_STATUS", "OVERFLOW", "MAXREC=0: metadata only")]
    else:
        convert = row_converter(svc.base_url, svc.authority, fields)
        try:
            if keep is None:
                result, close = run_select(svc.engine, select.limit(maxrec + 1))
                chunks, trailer = limited_rows(result, maxrec, convert, close)
            else:
                chunks, trailer = filtered_rows(svc.engine, select, keep, maxrec, convert)
        except QueryFailed as exc:
            return sia_error(str(exc), 500)
    body = write_table(fields, chunks, format=fmt.name, infos=infos, trailer=trailer,
                       resources=[self_descriptor(svc.base_url)], table_name="frames",
                       catch=(QueryFailed,), value_errors=True)
    return dali.stream(body, fmt.mime, safe=(QueryFailed, UnwritableValue), error=sia_error)


@bp.get("/sia/capabilities")
def sia_capabilities() -> Response:
    """VOSI capabilities: the SIA 2.0 query capability pyvo's SIA2Service looks for."""
    svc = services()
    return vosi.capabilities_response(capabilities_element(svc.base_url, svc.settings))


def capabilities_element(base_url: str, settings: Settings) -> etree._Element:
    """The ``vosi:capabilities`` of the SIA 2.0 service of SKVO at ``base_url``."""
    base = f"{base_url}/sia"

    def build(root: etree._Element) -> None:
        dal_capability(root, SIA_STANDARD_ID, f"{base}/query", "2.0")

    return vosi.capabilities_element(base, build)


@bp.get("/sia/availability")
def sia_availability() -> Response:
    """VOSI availability of the SIA service."""
    return vosi.availability_response()


def register(app: Flask) -> None:
    """Add the SIA 2.0 service to the application."""
    app.register_blueprint(bp)
    vosi.publish_capabilities(app, "sia", capabilities_element)
