"""Simple Cone Search 1.03 (``/scs``): the targets within SR of RA, DEC.

One row per target the principal may see (a target is visible when one of
its observations is, see :mod:`voservice.access`); restricted-only targets
do not exist for anonymous users.  The cone predicate is
:func:`adql.geometry.cone_sql`, the one implementation the ADQL translator
uses too (an index-friendly bounding box AND an exact haversine test).

The module also holds what the simple DAL services (SCS, SSA, SIA) share:
response-column descriptions from ``resources/services/*.toml``, VOSI
capabilities and availability documents, the MAXREC-limited row stream.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import Blueprint, Flask, Response
from lxml import etree
from werkzeug.datastructures import MultiDict

from adql import geometry
from voservice import tables
from voservice.access import Principal, visible_clause
from voservice.app import principal, services
from voservice.protocols import dali, vosi
from voservice.tables import RESOURCES
from voservice.votable import Field, Info, Param, UnwritableValue, write_table
from voservice.votable.document import info_xml, votable_close, votable_open

log = logging.getLogger(__name__)

bp = Blueprint("scs", __name__)

SERVICES_DIR = RESOURCES / "services"
SCS_STANDARD_ID = "ivo://ivoa.net/std/ConeSearch"
#: SCS 1.03 asks for text/xml; this more specific form is allowed
SCS_MIME = "text/xml;content=x-votable"
#: rows fetched from the database at a time
CHUNK = 2000


# --------------------------------------------------------------------------
# Shared by the simple DAL services


@dataclass(frozen=True)
class ServiceColumn:
    """A response column of a service and the lowest VERB that shows it."""

    field: Field
    verb: int = 1


def _field_from_desc(desc: tables.ColumnDesc) -> dict[str, Any]:
    return {
        "name": desc.name,
        "datatype": desc.datatype,
        "arraysize": desc.arraysize,
        "xtype": desc.xtype,
        "unit": desc.unit,
        "ucd": desc.ucd,
        "utype": desc.utype,
        "description": desc.description,
    }


def field_of(desc: tables.ColumnDesc, **overrides: Any) -> Field:
    """A VOTable FIELD for a described column (keys given override it)."""
    values = _field_from_desc(desc)
    values.update(overrides)
    if values["datatype"] in ("char", "unicodeChar") and values.get("arraysize"):
        # declared lengths bound the database column, not the values we compute
        values["arraysize"] = "*" if values["arraysize"].endswith("*") else values["arraysize"]
    return Field(**values)


@cache
def _service_columns(name: str) -> tuple[ServiceColumn, ...]:
    path = SERVICES_DIR / f"{name}.toml"
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    out = []
    for entry in doc.get("column", []):
        entry = dict(entry)
        verb = int(entry.pop("verb", 1))
        source = entry.pop("from", None)
        if source:
            schema, table, column = source.split(".")
            values = _field_from_desc(tables.table(f"{schema}.{table}").column(column))
            values.update(entry)
            field = field_of(tables.ColumnDesc(**values))
        else:
            field = Field(**entry)
        out.append(ServiceColumn(field, verb))
    return tuple(out)


def service_columns(name: str, verb: int = 3) -> list[Field]:
    """Response FIELDs of a service (``resources/services/<name>.toml``) up to a VERB."""
    return [replace(c.field) for c in _service_columns(name) if c.verb <= verb]


def limited_rows(
    result: sa.CursorResult[Any],
    maxrec: int,
    convert: Callable[[Sequence[Any]], tuple[Any, ...]],
    close: Callable[[], None],
) -> tuple[Iterator[list[tuple[Any, ...]]], Callable[[], list[Info]]]:
    """Chunks of at most ``maxrec`` converted rows and a trailer flagging overflow.

    ``result`` was executed with LIMIT maxrec+1; ``close`` releases its
    connection once the rows are written, fail, or the chunks are closed (the
    client went away; also before the first chunk was taken).  A failure
    while reading raises :class:`QueryFailed` (the detail is logged).
    """
    state = {"overflow": False}

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        left = maxrec
        try:
            while left > 0:
                rows = result.fetchmany(min(CHUNK, left + 1))
                if not rows:
                    return
                if len(rows) > left:
                    state["overflow"] = True
                    rows = rows[:left]
                left -= len(rows)
                yield [convert(r) for r in rows]
            if result.fetchone() is not None:
                state["overflow"] = True
                result.fetchall()  # nothing is left past LIMIT maxrec+1: the cursor ends cleanly
        except Exception as exc:
            raise read_failure(exc) from None
        finally:
            close()

    return dali.Guarded(chunks(), close), dali.overflow_trailer(state, maxrec)


def read_failure(exc: Exception) -> QueryFailed:
    """A failure while reading rows, for the client (the detail goes to the log)."""
    if isinstance(exc, QueryFailed):
        return exc
    log.error("reading the rows of a query failed", exc_info=exc)
    return QueryFailed("FatalFault: the database query failed while the rows were read; "
                       "the error is logged")


def run_select(select: sa.Select) -> tuple[sa.CursorResult[Any], Callable[[], None]]:
    """Execute a SELECT on the query engine; returns the result and its closer.

    The rows are fetched as they are read (MySQL: a server-side cursor), so
    the closer must run: it is idempotent and gives the connection back to
    the pool (MySQL: a result left unread drops the connection rather than
    reading the rest).  Database errors become a :class:`QueryFailed`
    without the database's message (it is logged); a pool timeout
    (``sqlalchemy.exc.TimeoutError``) propagates, answered 503 by the app.
    """
    conn = services().engine.connect()
    try:
        result = conn.execution_options(stream_results=True).execute(select)
    except sa.exc.SQLAlchemyError:
        conn.close()
        log.exception("query failed")
        raise QueryFailed("FatalFault: the database query failed; the error is logged") from None
    done = False

    def close() -> None:
        nonlocal done
        if done:
            return
        done = True
        try:
            if result.cursor is not None and conn.dialect.name != "sqlite":
                conn.invalidate()  # an unread server-side result: do not drain it
            result.close()
        except Exception:
            log.debug("discarding a connection after a query", exc_info=True)
        finally:
            conn.close()

    return result, close


class QueryFailed(RuntimeError):
    """The database failed to answer (message safe to show clients)."""


def column_sql(column: sa.ColumnElement[Any]) -> str:
    """SQL text of a column for the query engine's dialect (for adql.geometry)."""
    return str(column.compile(dialect=services().engine.dialect))


def parse_float(text: str | None, name: str) -> float:
    """A finite float parameter (UsageError when missing or bad)."""
    if text is None or not text.strip():
        raise dali.UsageError(f"parameter {name} is missing")
    try:
        value = float(text)
    except ValueError:
        raise dali.UsageError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise dali.UsageError(f"{name}={text!r} is not a finite number")
    return value


def dal_capability(root: etree._Element, standard_id: str, url: str, version: str,
                   xsi_type: str | None = None, namespace: tuple[str, str] | None = None,
                   params: Sequence[tuple[str, str, str | None, str]] = (),
                   result_type: str = "application/x-votable+xml") -> etree._Element:
    """Append a DAL ``<capability>`` with its std ParamHTTP interface to a VOSI root.

    ``namespace`` (prefix, URI) is declared on the capability for ``xsi_type``;
    ``params`` are (name, dataType, unit, description) of the interface, dataType
    a VODataService simple type (integer, real, char, string, boolean).
    """
    nsmap = {namespace[0]: namespace[1]} if namespace else None
    cap = etree.SubElement(root, "capability", nsmap=nsmap)
    cap.set("standardID", standard_id)
    if xsi_type:
        cap.set(vosi.XSI_TYPE, xsi_type)
    iface = vosi.interface(cap, url, std=True, use="base", version=version)
    vosi.sub(iface, "queryType", "GET")
    vosi.sub(iface, "resultType", result_type)
    for name, datatype, unit, description in params:
        param = vosi.sub(iface, "param", std="true")
        vosi.sub(param, "name", name)
        vosi.sub(param, "description", description)
        if unit:
            vosi.sub(param, "unit", unit)
        vosi.sub(param, "dataType", datatype)
    return cap


def capabilities_document(base: str, build: Callable[[etree._Element], None]) -> Response:
    """VOSI capabilities of a service at ``base``: ``build`` adds its own capability."""
    root = vosi.capabilities_root()
    build(root)
    vosi.add_vosi_capabilities(root, base)
    return vosi.capabilities_response(root)


# --------------------------------------------------------------------------
# The cone search


@dataclass(frozen=True)
class Cone:
    """A parsed cone search request."""

    ra: float
    dec: float
    sr: float
    verb: int
    maxrec: int


def parse_cone(p: MultiDict[str, str], max_sr: float, maxrec_default: int,
               maxrec_hard: int) -> Cone:
    """RA, DEC, SR, VERB and MAXREC of a request (UsageError if wrong)."""
    ra = parse_float(dali.single(p, "RA"), "RA")
    dec = parse_float(dali.single(p, "DEC"), "DEC")
    sr = parse_float(dali.single(p, "SR"), "SR")
    if not 0.0 <= ra <= 360.0:
        raise dali.UsageError(f"RA={ra} is outside [0, 360] degrees")
    if not -90.0 <= dec <= 90.0:
        raise dali.UsageError(f"DEC={dec} is outside [-90, 90] degrees")
    if sr < 0:
        raise dali.UsageError(f"SR={sr} is negative")
    if sr > max_sr:
        raise dali.UsageError(f"SR={sr} is larger than this service's maximum of {max_sr} degrees")
    verb_text = dali.single(p, "VERB")
    verb = 2
    if verb_text is not None and verb_text.strip():
        if verb_text.strip() not in ("1", "2", "3"):
            raise dali.UsageError(f"VERB={verb_text!r}: must be 1, 2 or 3")
        verb = int(verb_text)
    return Cone(ra % 360.0, dec, sr, verb, dali.maxrec(p, maxrec_default, maxrec_hard))


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def cone_select(who: Principal, cone: Cone, dialect: str,
                compile_column: Callable[[sa.ColumnElement[Any]], str]) -> sa.Select:
    """Targets within the cone that the principal may see, nearest first.

    Aggregates (series, bandpasses, time span) count only the observations
    the principal may see.  LIMIT is MAXREC+1 so that overflow shows.
    """
    t, o, p, b = _t("target"), _t("observation"), _t("photometry"), _t("bandpass")
    ra_sql, dec_sql = compile_column(t.c.right_ascension), compile_column(t.c.declination)
    cone_pred = geometry.cone_sql(ra_sql, dec_sql, cone.ra, cone.dec, cone.sr, dialect)
    distance = sa.literal_column(
        geometry.distance_sql(ra_sql, dec_sql, geometry.num(cone.ra), geometry.num(cone.dec),
                              dialect), sa.Double)
    target_cols = [t.c.target_id, t.c.catalogue, t.c.catalogue_value, t.c.target,
                   t.c.right_ascension, t.c.declination, t.c.target_class, t.c.equinox,
                   t.c.description]
    return (
        sa.select(
            *target_cols,
            distance.label("distance"),
            sa.func.count(p.c.photometry_id).label("n_series"),
            sa.func.count(sa.distinct(o.c.observation_id)).label("n_observations"),
            sa.func.sum(p.c.n_points).label("n_points"),
            sa.func.min(p.c.mjd_start).label("mjd_min"),
            sa.func.max(p.c.mjd_end).label("mjd_max"),
            sa.func.group_concat(sa.distinct(b.c.bandpass_uid)).label("bandpasses"),
            sa.func.group_concat(sa.distinct(o.c.source)).label("collections"),
        )
        .select_from(
            t.join(o, o.c.target_id == t.c.target_id)
            .outerjoin(p, p.c.observation_id == o.c.observation_id)
            .outerjoin(b, b.c.bandpass_id == p.c.bandpass_id)
        )
        .where(sa.text(cone_pred), visible_clause(who, o.c.access, o.c.source))
        .group_by(*target_cols)
        .order_by(sa.literal_column("distance"), t.c.target_id)
        .limit(cone.maxrec + 1)
    )


def _words(text: str | None) -> str:
    return " ".join(sorted({w for w in (text or "").split(",") if w}))


def _adql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def target_row_converter(base_url: str, fields: Sequence[Field]
                         ) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Turn a :func:`cone_select` row into the response row for ``fields``."""
    names = [f.name for f in fields]

    def convert(r: Any) -> tuple[Any, ...]:
        m = r._mapping
        query = f"SELECT * FROM ivoa.obscore WHERE target_name = {_adql_string(m['target'])}"
        values = {
            "id": f"{m['catalogue']} {m['catalogue_value']}",
            "ra": m["right_ascension"],
            "dec": m["declination"],
            "target_name": m["target"],
            "distance": m["distance"],
            "catalogue": m["catalogue"],
            "catalogue_value": m["catalogue_value"],
            "target_class": m["target_class"],
            "n_series": m["n_series"],
            "bandpasses": _words(m["bandpasses"]),
            "mjd_min": m["mjd_min"],
            "mjd_max": m["mjd_max"],
            "observations_url": f"{base_url}/tap/sync?"
            + urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}, quote_via=quote),
            "ssa_url": f"{base_url}/ssa?"
            + urlencode({"REQUEST": "queryData", "TARGETNAME": m["target"]}, quote_via=quote),
            "n_observations": m["n_observations"],
            "n_points": m["n_points"],
            "collections": _words(m["collections"]),
            "equinox": m["equinox"],
            "description": m["description"],
        }
        return tuple(values[n] for n in names)

    return convert


def scs_error(message: str) -> Response:
    """An SCS 1.03 error: ``<INFO name="Error">`` under VOTABLE (and a DALI status)."""
    body = (
        votable_open("1.4")
        + info_xml(Info("Error", message))
        + '<RESOURCE type="results">\n'
        + info_xml(Info("QUERY_STATUS", "ERROR", message))
        + "</RESOURCE>\n"
        + votable_close()
    )
    return Response(body.encode("utf-8", "replace"), status=200, content_type=SCS_MIME)


@bp.route("/scs", methods=["GET", "POST"])
def scs() -> Response:
    """The cone search itself."""
    svc = services()
    p = dali.params()
    try:
        cone = parse_cone(p, svc.settings.get("vo", "scs_max_sr"),
                          svc.settings.get("vo", "maxrec_default"),
                          svc.settings.get("vo", "maxrec_hard"))
        if dali.single(p, "RESPONSEFORMAT"):
            fmt = dali.response_format(p)
            fmt_name, mime = fmt.name, fmt.mime
        else:
            fmt_name, mime = "votable/td", SCS_MIME
    except dali.UsageError as exc:
        return scs_error(str(exc))
    fields = service_columns("scs", cone.verb)
    infos = [
        Info("standardID", SCS_STANDARD_ID),
        Info("request", "cone", f"RA={cone.ra} DEC={cone.dec} SR={cone.sr} VERB={cone.verb}"),
    ]
    params = [
        Param("RA", "double", unit="deg", ucd="pos.eq.ra", value=cone.ra,
              description="Right ascension of the cone's centre (ICRS)."),
        Param("DEC", "double", unit="deg", ucd="pos.eq.dec", value=cone.dec,
              description="Declination of the cone's centre (ICRS)."),
        Param("SR", "double", unit="deg", ucd="phys.angSize", value=cone.sr,
              description="Radius of the cone."),
    ]
    if cone.sr == 0 or cone.maxrec == 0:
        chunks: Any = iter(())
        trailer = None
        if cone.maxrec == 0 and cone.sr > 0:
            def trailer() -> list[Info]:
                return [Info("QUERY_STATUS", "OVERFLOW", "MAXREC=0: metadata only")]
    else:
        select = cone_select(principal(), cone, svc.dialect, column_sql)
        try:
            result, close = run_select(select)
        except QueryFailed as exc:
            return scs_error(str(exc))
        chunks, trailer = limited_rows(result, cone.maxrec,
                                       target_row_converter(svc.base_url, fields), close)
    body = write_table(fields, chunks, format=fmt_name, infos=infos, params=params,
                       trailer=trailer, table_name="targets",
                       table_description="SKVO targets within the cone, nearest first.",
                       catch=(QueryFailed,), value_errors=True)
    return dali.stream(body, mime, safe=(QueryFailed, UnwritableValue),
                       error=lambda message, _status: scs_error(message))


@bp.get("/scs/capabilities")
def scs_capabilities() -> Response:
    """VOSI capabilities of the cone search (a cs:ConeSearch capability)."""
    svc = services()
    base = f"{svc.base_url}/scs"

    def build(root: etree._Element) -> None:
        cap = dal_capability(
            root, SCS_STANDARD_ID, f"{base}?", "1.03", "cs:ConeSearch",
            ("cs", "http://www.ivoa.net/xml/ConeSearch/v1.0"),
            [("RA", "real", "deg", "Right ascension of the cone's centre (ICRS)."),
             ("DEC", "real", "deg", "Declination of the cone's centre (ICRS)."),
             ("SR", "real", "deg", "Radius of the cone."),
             ("VERB", "integer", None, "Verbosity of the response: 1, 2 (default) or 3.")],
            result_type="text/xml")
        vosi.sub(cap, "maxSR", str(svc.settings.get("vo", "scs_max_sr")))
        vosi.sub(cap, "maxRecords", str(svc.settings.get("vo", "maxrec_hard")))
        vosi.sub(cap, "verbosity", "true")
        test = vosi.sub(cap, "testQuery")
        vosi.sub(test, "ra", "47.04")
        vosi.sub(test, "dec", "40.96")
        vosi.sub(test, "sr", "1.0")

    return capabilities_document(base, build)


@bp.get("/scs/availability")
def scs_availability() -> Response:
    """VOSI availability of the cone search."""
    return vosi.availability_response()


def register(app: Flask) -> None:
    """Add the cone search to the application."""
    app.register_blueprint(bp)


__all__ = [
    "Cone",
    "QueryFailed",
    "ServiceColumn",
    "capabilities_document",
    "column_sql",
    "dal_capability",
    "cone_select",
    "field_of",
    "limited_rows",
    "parse_cone",
    "parse_float",
    "read_failure",
    "register",
    "run_select",
    "scs_error",
    "service_columns",
]
