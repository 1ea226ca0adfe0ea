"""Simple Cone Search 1.03 (``/scs``): the targets within SR of RA, DEC.

One row per target the principal may see (a target is visible when one of
its observations is, see :mod:`voservice.access`); restricted-only targets
do not exist for anonymous users.  The cone predicate is
:func:`adql.geometry.cone_sql`, the one implementation the ADQL translator
uses too (an index-friendly bounding box AND an exact haversine test).
The rows come from :mod:`voservice.archive.targets`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response
from lxml import etree
from werkzeug.datastructures import MultiDict

from voservice.archive.describe import service_columns
from voservice.archive.rows import QueryFailed, column_compiler, limited_rows, run_select
from voservice.archive.targets import Cone, cone_select, target_row_converter
from voservice.config import Settings
from voservice.context import principal, services
from voservice.protocols import dali, vosi
from voservice.protocols.dali import parse_float
from voservice.protocols.vosi import dal_capability
from voservice.votable import Info, Param, UnwritableValue, write_table
from voservice.votable.document import info_xml, votable_close, votable_open

log = logging.getLogger(__name__)

bp = Blueprint("scs", __name__)

SCS_STANDARD_ID = "ivo://ivoa.net/std/ConeSearch"
#: SCS 1.03 asks for text/xml; this more specific form is allowed
SCS_MIME = "text/xml;content=x-votable"


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
        select = cone_select(principal(), cone, svc.dialect, column_compiler(svc.engine))
        try:
            result, close = run_select(svc.engine, select)
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
    return vosi.capabilities_response(capabilities_element(svc.base_url, svc.settings))


def capabilities_element(base_url: str, settings: Settings) -> etree._Element:
    """The ``vosi:capabilities`` of the cone search of SKVO at ``base_url``."""
    base = f"{base_url}/scs"

    def build(root: etree._Element) -> None:
        cap = dal_capability(
            root, SCS_STANDARD_ID, f"{base}?", "1.03", "cs:ConeSearch",
            ("cs", "http://www.ivoa.net/xml/ConeSearch/v1.0"),
            [("RA", "real", "deg", "Right ascension of the cone's centre (ICRS)."),
             ("DEC", "real", "deg", "Declination of the cone's centre (ICRS)."),
             ("SR", "real", "deg", "Radius of the cone."),
             ("VERB", "integer", None, "Verbosity of the response: 1, 2 (default) or 3.")],
            result_type="text/xml")
        vosi.sub(cap, "maxSR", str(settings.get("vo", "scs_max_sr")))
        vosi.sub(cap, "maxRecords", str(settings.get("vo", "maxrec_hard")))
        vosi.sub(cap, "verbosity", "true")
        test = vosi.sub(cap, "testQuery")
        vosi.sub(test, "ra", "47.04")
        vosi.sub(test, "dec", "40.96")
        vosi.sub(test, "sr", "1.0")

    return vosi.capabilities_element(base, build)


@bp.get("/scs/availability")
def scs_availability() -> Response:
    """VOSI availability of the cone search."""
    return vosi.availability_response()


def register(app: Flask) -> None:
    """Add the cone search to the application."""
    app.register_blueprint(bp)
    vosi.publish_capabilities(app, "scs", capabilities_element)
