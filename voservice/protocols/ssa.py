"""Simple Spectral Access 1.1 (``/ssa``): one record per light curve.

``REQUEST=queryData`` finds the photometry series the principal may see by
POS/SIZE (cone via :func:`adql.geometry.cone_sql`), BAND (metres or a
bandpass name), TIME (ISO 8601 or MJD), FORMAT, TARGETNAME, COLLECTION and
PUBDID; ``FORMAT=metadata`` describes the parameters and the columns.
``REQUEST=getData&PUBDID=...`` redirects to the light curve.  Every record
carries the ``ssa:`` utypes pyvo's SSARecord reads; a DataLink service
descriptor points at ``/datalink`` with the publisher DID as ID.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, redirect
from lxml import etree
from werkzeug.datastructures import MultiDict

from adql import geometry
from voservice import catalog, resolver, tables
from voservice.access import Principal, downloadable_clause, visible_clause
from voservice.archive.describe import service_columns
from voservice.archive.rows import QueryFailed, column_compiler, limited_rows, run_select
from voservice.config import Settings
from voservice.context import principal, services
from voservice.protocols import dali, vosi
from voservice.protocols.dali import parse_float
from voservice.protocols.vosi import dal_capability
from voservice.urls import lightcurve_url, star_curve_url
from voservice.votable import (
    Field,
    Group,
    Info,
    Param,
    Resource,
    UnwritableValue,
    error_document,
    write_table,
)

bp = Blueprint("ssa", __name__)

SSA_STANDARD_ID = "ivo://ivoa.net/std/SSA"
DATALINK_STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
LIGHTCURVE_MIME = "application/x-votable+xml"
#: SIZE (diameter, degrees) when the request gives none
DEFAULT_SIZE = 0.1
#: FORMAT values that select our light curves (VOTable)
OUR_FORMATS = {"all", "compliant", "native", "votable", "xml", "application/x-votable+xml",
               "text/xml", "application/x-votable+xml;content=timeseries"}
KNOWN_FORMATS = OUR_FORMATS | {"graphic", "fits", "metadata"}
_MJD0 = dt.datetime(1858, 11, 17)
_NUMERIC_RANGE = re.compile(r"[-+0-9.eE]*(/[-+0-9.eE]*)?")


# --------------------------------------------------------------------------
# Parameters


@dataclass
class SsaQuery:
    """A parsed queryData request."""

    pos: tuple[float, float] | None = None
    size: float = DEFAULT_SIZE
    band_ranges: list[tuple[float | None, float | None]] = field(default_factory=list)
    band_names: list[str] = field(default_factory=list)
    time_ranges: list[tuple[float | None, float | None]] = field(default_factory=list)
    formats_ok: bool = True
    metadata: bool = False
    targetnames: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    pubdids: list[str] = field(default_factory=list)
    maxrec: int = 0
    #: TARGETNAME resolved (voservice.resolver): target ids, and Sesame positions that
    #: reached no target (cones of ``cone_radius`` degrees); None: compare names only
    target_ids: list[int] | None = None
    target_cones: list[tuple[float, float]] = field(default_factory=list)
    cone_radius: float = 0.0


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise dali.UsageError(f"{name}: {text!r} is not a number") from None
    if math.isnan(value):
        raise dali.UsageError(f"{name}: {text!r} is not a number")
    return value


def parse_pos(text: str) -> tuple[float, float]:
    """POS ``ra,dec[;frame]`` in ICRS degrees."""
    value, _, frame = text.partition(";")
    if frame.strip() and frame.strip().upper() not in ("ICRS", "FK5", "J2000"):
        raise dali.UsageError(f"POS={text!r}: only ICRS positions are supported")
    parts = [x for x in value.replace(" ", ",").split(",") if x]
    if len(parts) != 2:
        raise dali.UsageError(f"POS={text!r}: expected ra,dec in degrees")
    ra, dec = (_number(x, "POS") for x in parts)
    if not (0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0):
        raise dali.UsageError(f"POS={text!r}: RA must be in [0, 360], Dec in [-90, 90]")
    return ra % 360.0, dec


def _range_list(text: str, name: str, convert: Callable[[str], float]
                ) -> list[tuple[float | None, float | None]]:
    out: list[tuple[float | None, float | None]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "/" in item:
            lo_text, _, hi_text = item.partition("/")
            lo = convert(lo_text.strip()) if lo_text.strip() else None
            hi = convert(hi_text.strip()) if hi_text.strip() else None
            if lo is not None and hi is not None and lo > hi:
                raise dali.UsageError(f"{name}={text!r}: range {item!r} is reversed")
            out.append((lo, hi))
        else:
            v = convert(item)
            out.append((v, v))
    return out


def parse_band(text: str) -> tuple[list[tuple[float | None, float | None]], list[str]]:
    """BAND: wavelength ranges in metres (``a/b``, ``a/``, ``/b``, ``a``) or bandpass names."""
    text = text.split(";")[0].strip()  # ";source" / ";observer": same for us
    ranges: list[tuple[float | None, float | None]] = []
    names: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if _NUMERIC_RANGE.fullmatch(item):
            ranges.extend(_range_list(item, "BAND", lambda s: _number(s, "BAND")))
        else:
            names.append(item)
    return ranges, names


def to_mjd(text: str) -> float:
    """An ISO 8601 time (UTC) or an MJD number as MJD."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isnan(value):
            raise dali.UsageError(f"TIME: {text!r} is not a number")
        return value
    value = text.strip().rstrip("Z")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise dali.UsageError(f"TIME: {text!r} is neither ISO 8601 nor an MJD") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return (when - _MJD0).total_seconds() / 86400.0


def parse_query(p: MultiDict[str, str], maxrec_default: int, maxrec_hard: int) -> SsaQuery:
    """The queryData parameters of a request (UsageError if wrong)."""
    q = SsaQuery(maxrec=dali.maxrec(p, maxrec_default, maxrec_hard))
    top = dali.single(p, "TOP")
    if top:
        try:
            q.maxrec = min(q.maxrec, max(0, int(top)))
        except ValueError:
            raise dali.UsageError(f"TOP={top!r}: must be a non-negative integer") from None
    pos = dali.single(p, "POS")
    if pos:
        q.pos = parse_pos(pos)
    size = dali.single(p, "SIZE")
    if size:
        q.size = parse_float(size, "SIZE")
        if not 0 <= q.size <= 360:
            raise dali.UsageError(f"SIZE={size!r}: must be a diameter in [0, 360] degrees")
    band = dali.single(p, "BAND")
    if band:
        q.band_ranges, q.band_names = parse_band(band)
    time = dali.single(p, "TIME")
    if time:
        q.time_ranges = _range_list(time, "TIME", to_mjd)
    fmt = dali.single(p, "FORMAT")
    if fmt:
        wanted = {f.strip().lower().replace(" ", "") for f in fmt.split(",") if f.strip()}
        if "metadata" in wanted:
            q.metadata = True
        unknown = {w for w in wanted if w not in KNOWN_FORMATS and "/" not in w}
        if unknown:
            raise dali.UsageError(f"FORMAT={fmt!r}: unknown value(s) {', '.join(sorted(unknown))}")
        q.formats_ok = bool(wanted & OUR_FORMATS)
    for name, target in (("TARGETNAME", q.targetnames), ("COLLECTION", q.collections),
                         ("PUBDID", q.pubdids)):
        for value in p.getlist(name):
            target.extend(v.strip() for v in value.split(",") if v.strip())
    return q


# --------------------------------------------------------------------------
# The query


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def _overlaps(lo_col: sa.ColumnElement[Any], hi_col: sa.ColumnElement[Any],
              ranges: Sequence[tuple[float | None, float | None]]) -> sa.ColumnElement[bool]:
    ors = []
    for lo, hi in ranges:
        if lo == math.inf or hi == -math.inf:
            continue  # no finite value reaches them (and MySQL cannot bind infinities)
        conds = [lo_col.is_not(None), hi_col.is_not(None)]
        if hi is not None and math.isfinite(hi):
            conds.append(lo_col <= hi)
        if lo is not None and math.isfinite(lo):
            conds.append(hi_col >= lo)
        ors.append(sa.and_(*conds))
    return sa.or_(*ors) if ors else sa.false()


def uuid_of_did(did: str, authority: str) -> str | None:
    """The observation uuid of one of our publisher DIDs (None if it is not ours)."""
    prefix = catalog.did_prefix(authority)
    if did.lower().startswith(prefix.lower()):
        return did[len(prefix):]
    return None


def series_select(who: Principal, q: SsaQuery, dialect: str, authority: str,
                  compile_column: Callable[[sa.ColumnElement[Any]], str]
                  ) -> sa.CompoundSelect:
    """Light curves matching the query that the principal may see: the nights' curves
    (``kind`` night) and the stars' curves over all the nights they may fetch (star)."""
    o, p, t, b = _t("observation"), _t("photometry"), _t("target"), _t("bandpass")
    i, f, d = _t("instrument"), _t("facility"), _t("dataid")
    conds: list[sa.ColumnElement[bool]] = []
    if q.pos is not None:
        conds.append(sa.text(geometry.cone_sql(
            compile_column(t.c.right_ascension), compile_column(t.c.declination),
            q.pos[0], q.pos[1], q.size / 2.0, dialect)))
    band_conds = []
    if q.band_ranges:
        band_conds.append(_overlaps(b.c.wavelength_min, b.c.wavelength_max, q.band_ranges))
    if q.band_names:
        lowered = [n.lower() for n in q.band_names]
        band_conds.append(sa.or_(sa.func.lower(b.c.bandpass_uid).in_(lowered),
                                 b.c.bandpass.in_(q.band_names)))
    if band_conds:
        conds.append(sa.or_(*band_conds))
    if q.targetnames and q.target_ids is not None:
        named: list[sa.ColumnElement[bool]] = [t.c.target_id.in_(q.target_ids)]
        named.extend(sa.text(geometry.cone_sql(
            compile_column(t.c.right_ascension), compile_column(t.c.declination),
            ra, dec, q.cone_radius, dialect)) for ra, dec in q.target_cones)
        conds.append(sa.or_(*named))
    elif q.targetnames:
        conds.append(sa.func.lower(t.c.target).in_([n.lower() for n in q.targetnames]))
    if q.collections:
        conds.append(o.c.source.in_(q.collections))
    if not q.formats_ok:
        conds.append(sa.false())
    night_conds = [visible_clause(who, o.c.access, o.c.source), *conds]
    star_conds = [downloadable_clause(who, o.c.access, o.c.source), *conds]
    if q.time_ranges:
        night_conds.append(_overlaps(p.c.mjd_start, p.c.mjd_end, q.time_ranges))
    if q.pubdids:
        uuids = [u for u in (uuid_of_did(x, authority) for x in q.pubdids)
                 if u and not u.startswith(catalog.STAR_DID_MARK)]
        night_conds.append(o.c.observation_uuid.in_(uuids) if uuids else sa.false())
        keys = [k for k in (catalog.parse_star_did(authority, x) for x in q.pubdids) if k]
        star_conds.append(sa.or_(*(sa.and_(t.c.target_id == k[0], b.c.bandpass_uid == k[1])
                                   for k in keys)) if keys else sa.false())
    text = sa.String
    fn = sa.func

    def one(column: sa.ColumnElement[Any], otherwise: Any) -> sa.ColumnElement[Any]:
        return sa.case((fn.min(column) == fn.max(column), fn.min(column)), else_=otherwise)

    common = [t.c.target, t.c.target_class, t.c.right_ascension, t.c.declination,
              b.c.bandpass_uid, b.c.bandpass, b.c.wavelength_eff, b.c.wavelength_min,
              b.c.wavelength_max, b.c.mag_ucd]
    nights = (
        sa.select(
            sa.literal("night", text).label("kind"), t.c.target_id,
            o.c.observation_uuid, o.c.source, o.c.night, o.c.access,
            p.c.n_points, p.c.mjd_start, p.c.mjd_end, p.c.flux_calibration,
            p.c.time_refposition, *common,
            i.c.instrument, f.c.facility, d.c.title, d.c.publisher, d.c.publisher_did,
            sa.literal(0, sa.Integer).label("kind_order"), p.c.photometry_id.label("sort_key"),
        )
        .select_from(catalog.series_join())
        .where(*night_conds)
    )
    absolute = fn.sum(sa.case((p.c.flux_calibration.in_(("abs", "mixed")), 1), else_=0))
    null_text = sa.type_coerce(sa.null(), text)
    stars = (
        sa.select(
            sa.literal("star", text).label("kind"), t.c.target_id,
            null_text.label("observation_uuid"),
            one(o.c.source, sa.literal("skvo", text)).label("source"),
            null_text.label("night"), sa.literal("open", text).label("access"),
            fn.sum(p.c.n_points).label("n_points"), fn.min(p.c.mjd_start).label("mjd_start"),
            fn.max(p.c.mjd_end).label("mjd_end"),
            sa.case((absolute > 0, "abs"), else_="dif").label("flux_calibration"),
            one(p.c.time_refposition, sa.literal("mixed", text)).label("time_refposition"),
            *common,
            one(i.c.instrument, null_text).label("instrument"),
            one(f.c.facility, null_text).label("facility"),
            null_text.label("title"), one(d.c.publisher, null_text).label("publisher"),
            null_text.label("publisher_did"),
            sa.literal(1, sa.Integer).label("kind_order"), t.c.target_id.label("sort_key"),
        )
        .select_from(catalog.series_join())
        .where(*star_conds)
        .group_by(t.c.target_id, b.c.bandpass_id, *common)
    )
    if q.time_ranges:
        stars = stars.having(_overlaps(fn.min(p.c.mjd_start), fn.max(p.c.mjd_end),
                                       q.time_ranges))
    return (
        sa.union_all(nights, stars)
        .order_by(sa.literal_column("mjd_start"), sa.literal_column("kind_order"),
                  sa.literal_column("sort_key"))
        .limit(q.maxrec + 1)
    )


def estimated_size(n_points: int) -> int:
    """Estimated bytes of a light-curve VOTable (the estimate ivoa.obscore uses)."""
    return int(n_points) * 96 + 4096


def row_converter(base_url: str, authority: str, publisher: str, fields: Sequence[Field]
                  ) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Turn a :func:`series_select` row into the response row."""
    names = [f.name for f in fields]

    def convert(r: Any) -> tuple[Any, ...]:
        m = r._mapping
        pos = (m["right_ascension"], m["declination"])
        calib = (m["flux_calibration"] or "").lower()
        star = m["kind"] == "star"
        if star:
            accref = star_curve_url(base_url, m["target_id"], m["bandpass_uid"])
            did = catalog.star_did(authority, m["target_id"], m["bandpass_uid"])
            title = f"{m['target']} {m['bandpass']} light curve, all nights"
        else:
            accref = lightcurve_url(base_url, m["observation_uuid"], m["bandpass_uid"])
            did = catalog.publisher_did(authority, m["observation_uuid"])
            title = (f"{m['target']} {m['bandpass']} light curve of {m['night']}"
                     f" ({m['source']}, {m['facility']})")
        values = {
            "accref": accref,
            "mime": LIGHTCURVE_MIME,
            "accsize": estimated_size(m["n_points"]),
            "ssa_pubDID": did,
            "ssa_dstitle": title,
            "calib_level": catalog.STAR_CALIB_LEVEL if star else catalog.NIGHT_CALIB_LEVEL,
            "ssa_model": "Spectrum-1.0",
            "ssa_dstype": "timeseries",
            "ssa_length": m["n_points"],
            "ssa_creator": m["publisher"],
            "ssa_creatorDID": m["publisher_did"],
            "ssa_collection": m["source"],
            "ssa_instrument": m["instrument"],
            "ssa_facility": m["facility"],
            "ssa_bandpass": m["bandpass_uid"],
            "ssa_publisher": publisher,
            "ssa_targname": m["target"],
            "ssa_targclass": m["target_class"],
            "ssa_targetpos": pos,
            "ssa_location": pos,
            "ssa_csysName": "ICRS",
            "ssa_dateObs": (m["mjd_start"] + m["mjd_end"]) / 2.0,
            "ssa_timeExt": (m["mjd_end"] - m["mjd_start"]) * 86400.0,
            "t_min": m["mjd_start"],
            "t_max": m["mjd_end"],
            "ssa_specmid": m["wavelength_eff"],
            "ssa_specstart": m["wavelength_min"],
            "ssa_specend": m["wavelength_max"],
            "ssa_fluxucd": m["mag_ucd"] or "phot.mag",
            "ssa_fluxunit": "mag",
            "ssa_fluxcalib": "RELATIVE" if calib.startswith(("dif", "mixed")) else "ABSOLUTE",
            "time_refposition": m["time_refposition"],
            "access_rights": m["access"],
        }
        return tuple(values[n] for n in names)

    return convert


# --------------------------------------------------------------------------
# Documents

INPUT_PARAMS: tuple[tuple[str, str, str | None, str], ...] = (
    ("REQUEST", "char", None, "queryData (search) or getData (with PUBDID: the light curve)."),
    ("POS", "char", "deg", "ICRS position ra,dec[;ICRS] of the search centre."),
    ("SIZE", "double", "deg", f"Diameter of the search region (default {DEFAULT_SIZE})."),
    ("BAND", "char", "m", "Wavelength range list lo/hi in metres, or bandpass names "
     "(e.g. V, johnson.v)."),
    ("TIME", "char", None, "Time range t1/t2 (ISO 8601 UTC or MJD) the light curve must overlap."),
    ("FORMAT", "char", None, "all, compliant, native, votable, metadata or a MIME type."),
    ("TARGETNAME", "char", None, "Name of the target as astronomers write it (beta Lyr, "
     "HD 174638, an alias; case-insensitive; resolved by Sesame when configured)."),
    ("COLLECTION", "char", None, "Collection (SKVO source), e.g. upjs."),
    ("PUBDID", "char", None, "Publisher DID of a light curve."),
    ("TOP", "int", None, "Largest number of records."),
    ("MAXREC", "int", None, "Largest number of records (DALI)."),
    ("RESPONSEFORMAT", "char", None, "Output format (DALI): votable, csv, tsv, json, fits..."),
)


def _protocol_info() -> Info:
    return Info("SERVICE_PROTOCOL", "1.1", "SSAP")


def datalink_descriptor(base_url: str) -> Resource:
    """The DataLink service descriptor: ID from the ssa_pubDID column."""
    return Resource(
        type="meta",
        utype="adhoc:service",
        id="datalink",
        params=[
            Param("accessURL", "char", arraysize="*", ucd="meta.ref.url",
                  value=f"{base_url}/datalink"),
            Param("standardID", "char", arraysize="*", value=DATALINK_STANDARD_ID),
            Param("contentType", "char", arraysize="*", value=catalog.DATALINK_MIME),
        ],
        groups=[Group(name="inputParams", params=[
            Param("ID", "char", arraysize="*", ucd="meta.id;meta.main", ref="ssa_pubDID",
                  value="", description="Publisher DID of the light curve."),
        ])],
    )


def ssa_error(message: str) -> Response:
    """An SSA error: VOTable with QUERY_STATUS=ERROR (HTTP 200 as SSA clients expect)."""
    return Response(error_document(message, infos=[_protocol_info()]), status=200,
                    mimetype="application/x-votable+xml")


def metadata_response(fmt_name: str, mime: str) -> Response:
    """FORMAT=metadata: the input PARAMs and the (empty) result table."""
    params = [Param(f"INPUT:{name}", "char", arraysize="*", unit=unit, value="",
                    description=f"{description} ({datatype})")
              for name, datatype, unit, description in INPUT_PARAMS]
    body = write_table(service_columns("ssa"), iter(()), format=fmt_name,
                       infos=[_protocol_info(), Info("standardID", SSA_STANDARD_ID)],
                       params=params, table_name="results")
    return dali.stream(body, mime)


def get_data(p: MultiDict[str, str]) -> Response:
    """REQUEST=getData: redirect to the light curve of a visible PUBDID."""
    svc = services()
    did = dali.single(p, "PUBDID")
    if not did:
        return ssa_error("UsageFault: getData needs PUBDID")
    uuid = uuid_of_did(did, svc.authority)
    if uuid is None:
        return ssa_error(f"NotFoundFault: {did} is not a dataset of this service")
    q = SsaQuery(pubdids=[did], maxrec=1)
    select = series_select(principal(), q, svc.dialect, svc.authority,
                           column_compiler(svc.engine))
    with svc.engine.connect() as conn:
        row = conn.execute(select).first()
    if row is None:
        return ssa_error(f"NotFoundFault: no light curve {did}")
    if row.kind == "star":
        return redirect(star_curve_url(svc.base_url, row.target_id, row.bandpass_uid), 303)
    return redirect(lightcurve_url(svc.base_url, row.observation_uuid, row.bandpass_uid), 303)


def _resolve_targetnames(q: SsaQuery) -> None:
    """TARGETNAME through the archive's aliases (and Sesame when configured)."""
    svc = services()
    cfg = resolver.ResolverConfig.from_settings(svc.settings)
    q.target_ids, q.target_cones = resolver.resolve_many(
        svc.engine, principal(), q.targetnames, cfg, svc.writer())
    q.cone_radius = cfg.cone_radius


@bp.route("/ssa", methods=["GET", "POST"])
def ssa() -> Response:
    """SSA queryData and getData."""
    svc = services()
    p = dali.params()
    try:
        request_kind = (dali.single(p, "REQUEST") or "queryData").strip().lower()
        if request_kind == "getdata":
            return get_data(p)
        if request_kind != "querydata":
            raise dali.UsageError(
                f"REQUEST={dali.single(p, 'REQUEST')!r}: use queryData or getData")
        q = parse_query(p, svc.settings.get("vo", "maxrec_default"),
                        svc.settings.get("vo", "maxrec_hard"))
        if dali.single(p, "RESPONSEFORMAT"):
            fmt = dali.response_format(p)
            fmt_name, mime = fmt.name, fmt.mime
        else:
            fmt_name, mime = "votable/td", "application/x-votable+xml"
    except dali.UsageError as exc:
        return ssa_error(f"UsageFault: {exc}")
    if q.metadata:
        return metadata_response(fmt_name, mime)
    if q.targetnames:
        _resolve_targetnames(q)
    fields = service_columns("ssa")
    infos = [_protocol_info(), Info("standardID", SSA_STANDARD_ID)]
    trailer: Callable[[], list[Info]] | None = None
    if q.maxrec == 0:
        chunks: Any = iter(())

        def trailer() -> list[Info]:
            return [Info("QUERY_STATUS", "OVERFLOW", "MAXREC=0: metadata only")]
    else:
        select = series_select(principal(), q, svc.dialect, svc.authority,
                               column_compiler(svc.engine))
        try:
            result, close = run_select(svc.engine, select)
        except QueryFailed as exc:
            return ssa_error(str(exc))
        publisher = svc.settings.get("vo", "title")
        chunks, trailer = limited_rows(
            result, q.maxrec, row_converter(svc.base_url, svc.authority, publisher, fields), close)
    body = write_table(fields, chunks, format=fmt_name, infos=infos, trailer=trailer,
                       resources=[datalink_descriptor(svc.base_url)], table_name="results",
                       catch=(QueryFailed,), value_errors=True)
    return dali.stream(body, mime, safe=(QueryFailed, UnwritableValue),
                       error=lambda message, _status: ssa_error(message))


@bp.get("/ssa/capabilities")
def ssa_capabilities() -> Response:
    """VOSI capabilities of the SSA service (an ssa:SimpleSpectralAccess capability)."""
    svc = services()
    return vosi.capabilities_response(capabilities_element(svc.base_url, svc.settings))


def capabilities_element(base_url: str, settings: Settings) -> etree._Element:
    """The ``vosi:capabilities`` of the SSA service of SKVO at ``base_url``."""
    base = f"{base_url}/ssa"

    def build(root: etree._Element) -> None:
        cap = dal_capability(
            root, SSA_STANDARD_ID, f"{base}?", "1.1", "ssa:SimpleSpectralAccess",
            ("ssa", "http://www.ivoa.net/xml/SSA/v1.1"),
            [("POS", "string", "deg", "ICRS position ra,dec of the search centre."),
             ("SIZE", "real", "deg", "Diameter of the search region."),
             ("BAND", "string", "m", "Wavelength range lo/hi or bandpass name."),
             ("TIME", "string", None, "Time range (ISO 8601 or MJD)."),
             ("FORMAT", "string", None, "Requested format or metadata.")])
        vosi.sub(cap, "complianceLevel", "query")
        vosi.sub(cap, "dataSource", "pointed")
        vosi.sub(cap, "creationType", "archival")
        vosi.sub(cap, "supportedFrame", "ICRS")
        vosi.sub(cap, "maxSearchRadius", "180")
        vosi.sub(cap, "maxRecords", str(settings.get("vo", "maxrec_hard")))
        vosi.sub(cap, "defaultMaxRecords", str(settings.get("vo", "maxrec_default")))
        vosi.sub(cap, "maxAperture", "180")
        test = vosi.sub(cap, "testQuery")
        vosi.sub(test, "queryDataCmd", "REQUEST=queryData&POS=47.042215,40.955648&SIZE=0.1")

    return vosi.capabilities_element(base, build)


@bp.get("/ssa/availability")
def ssa_availability() -> Response:
    """VOSI availability of the SSA service."""
    return vosi.availability_response()


def register(app: Flask) -> None:
    """Add the SSA service to the application."""
    app.register_blueprint(bp)
    vosi.publish_capabilities(app, "ssa", capabilities_element)
