"""TAP 1.1: ``/tap`` with sync, async (UWS), VOSI and DALI examples.

The handlers parse parameters and hand them to :func:`voservice.query.run_tap_query`,
which translates the ADQL and streams the table; the async routes come from
:mod:`voservice.protocols.uws`.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, render_template, request
from lxml import etree

import adql
from voservice.config import Settings
from voservice.context import principal, services
from voservice.protocols import dali, uws, vosi
from voservice.protocols.vosi import XSI_TYPE, sub
from voservice.query import QueryError, TapResult, run_tap_query
from voservice.votable import UnwritableValue

bp = Blueprint("tap", __name__, url_prefix="/tap")

#: geometry functions the translator implements (advertised in capabilities)
_REGION_COLUMN = ("ivoa.obscore.s_region (the field-of-view square) works with a POINT, a "
                  "CIRCLE, and a POLYGON or BOX of constant vertices, exactly, also through "
                  "derived tables and WITH; not with another region column.")
GEOMETRY = ("POINT", "CIRCLE", "BOX", "POLYGON",
            ("CONTAINS", "Exact on the sphere. " + _REGION_COLUMN),
            ("INTERSECTS", "Exact on the sphere. " + _REGION_COLUMN),
            "DISTANCE", "COORD1", "COORD2", "COORDSYS",
            ("AREA", "Of points, circles, boxes, polygons (constant or column vertices) and "
             "ivoa.obscore.s_region; square degrees."),
            ("CENTROID", "Of points, circles, boxes, polygons (constant or column vertices) "
             "and ivoa.obscore.s_region."),
            ("REGION", "The STC-S of TAP 1.0 section 6, ICRS and degrees only: Position, "
             "Circle, Box (read as ADQL's BOX), Polygon, each where the ADQL constructor "
             "works; Union, Intersection and Not in CONTAINS and INTERSECTS with a POINT, "
             "INTERSECTS(shape, Union), CONTAINS(shape, Intersection)."))
#: optional ADQL 2.1 features, by TAPRegExt feature type
ADQL_FEATURES = {
    "features-adql-string": ("LOWER", "UPPER", "ILIKE"),
    "features-adql-offset": ("OFFSET",),
    "features-adql-type": ("CAST",),
    "features-adql-conditional": ("COALESCE", (
        "CASE", "SQL-92's CASE expression, simple (CASE x WHEN ...) and searched (CASE WHEN "
        "condition ...), with an optional ELSE; ADQL 2.1 reserves the word, TAPRegExt has "
        "no feature type of its own for it")),
    "features-adql-sets": ("UNION", "EXCEPT", "INTERSECT"),
    "features-adql-common-table": ("WITH",),
    "features-adql-unit": ("IN_UNIT",),
}
#: output formats: (mime, aliases, TAPRegExt ivo-id or None)
OUTPUT_FORMATS = (
    ("application/x-votable+xml", ("votable", "votable/b2"), "output-votable-binary2"),
    ("application/x-votable+xml;serialization=TABLEDATA", ("votable/td",), "output-votable-td"),
    ("application/x-votable+xml;serialization=BINARY", ("votable/b",), "output-votable-binary"),
    ("text/csv;header=present", ("csv",), None),
    ("text/tab-separated-values", ("tsv",), None),
    ("application/json", ("json",), None),
    ("application/fits", ("fits",), None),
)


def _base() -> str:
    return f"{services().base_url}/tap"


@bp.route("", methods=["GET"])
def home() -> Response:
    """A short page for people who open the base URL in a browser."""
    title = services().settings.get("vo", "title")
    return Response(render_template("tap_home.html", base=_base(), title=title),
                    mimetype="text/html")


@bp.route("/sync", methods=["GET", "POST"])
def sync() -> Response:
    """Run a query and stream its result."""
    svc = services()
    params = dali.params()
    files = {name: storage.read() for name, storage in request.files.items()}
    try:
        result: TapResult = run_tap_query(
            svc,
            principal(),
            {k: params.getlist(k) for k in params},
            files,
            timeout=svc.settings.get("vo", "sync_timeout"),
            maxrec_default=svc.settings.get("vo", "maxrec_default"),
            maxrec_hard=svc.settings.get("vo", "maxrec_hard"),
        )
    except dali.UsageError as exc:
        return dali.error_response(f"UsageFault: {exc}", exc.status)
    except QueryError as exc:
        return dali.error_response(f"Error: {exc}", 400)
    return dali.stream(result.chunks, result.mime, safe=(QueryError, UnwritableValue),
                       error=lambda message, status: dali.error_response(f"Error: {message}",
                                                                         status))


@bp.route("/capabilities", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def capabilities() -> Response:
    """VOSI capabilities with the TAPRegExt description of this service."""
    refused = vosi.get_only()
    if refused is not None:
        return refused
    svc = services()
    return vosi.capabilities_response(capabilities_element(svc.base_url, svc.settings))


def capabilities_element(base_url: str, settings: Settings) -> etree._Element:
    """The ``vosi:capabilities`` of the TAP service of SKVO at ``base_url``."""
    base = f"{base_url}/tap"
    root = vosi.capabilities_root()
    cap = sub(root, "capability", standardID="ivo://ivoa.net/std/TAP")
    cap.set(XSI_TYPE, "tr:TableAccess")
    vosi.interface(cap, base, std=True, use="base", version="1.1")
    sub(cap, "dataModel", "ObsCore-1.1", **{"ivo-id": "ivo://ivoa.net/std/ObsCore#core-1.1"})
    lang = sub(cap, "language")
    sub(lang, "name", "ADQL")
    sub(lang, "version", "2.0", **{"ivo-id": "ivo://ivoa.net/std/ADQL#v2.0"})
    sub(lang, "version", "2.1", **{"ivo-id": "ivo://ivoa.net/std/ADQL#v2.1"})
    sub(lang, "description", "ADQL 2.1 (and 2.0) translated to the metadata database; "
        "cone searches use the declination and right-ascension indexes. Accepted beyond "
        "the REC, as clients write it: one trailing ';' (never a second statement); "
        "reserved words as the schema and table parts of a table name (FROM "
        "public.hipparcos, ehst.position, FROM table, table.*), not as column names, "
        "aliases or WITH names (quote those); a keyword right after a number (ORDER BY "
        "1desc). A number directly followed by a name (SELECT 89x) is a syntax error. "
        "REGION() takes the STC-S of TAP 1.0 section 6 (ICRS, degrees; Box is ADQL's "
        "BOX).")
    lang.append(vosi.features("features-adqlgeo", GEOMETRY))
    lang.append(vosi.features("features-udf", [(u.form, u.description)
                                                for u in adql.IMPLEMENTED_UDFS]))
    for kind, forms in ADQL_FEATURES.items():
        lang.append(vosi.features(kind, forms))
    for mime, aliases, ivo_id in OUTPUT_FORMATS:
        attrs = {"ivo-id": f"ivo://ivoa.net/std/TAPRegExt#{ivo_id}"} if ivo_id else {}
        out = sub(cap, "outputFormat", **attrs)
        sub(out, "mime", mime)
        for alias in aliases:
            sub(out, "alias", alias)
    for method in ("upload-inline", "upload-http", "upload-https"):
        sub(cap, "uploadMethod", **{"ivo-id": f"ivo://ivoa.net/std/TAPRegExt#{method}"})
    retention = str(settings.get("vo", "destruction_days") * 86400)
    period = sub(cap, "retentionPeriod")
    sub(period, "default", retention)
    sub(period, "hard", retention)
    duration = str(settings.get("vo", "execution_duration"))
    execution = sub(cap, "executionDuration")
    sub(execution, "default", duration)
    sub(execution, "hard", duration)
    limit = sub(cap, "outputLimit")
    sub(limit, "default", str(settings.get("vo", "maxrec_default")), unit="row")
    sub(limit, "hard", str(settings.get("vo", "maxrec_hard")), unit="row")
    upload = sub(cap, "uploadLimit")
    sub(upload, "default", str(settings.get("vo", "upload_max_bytes")), unit="byte")
    sub(upload, "hard", str(settings.get("vo", "upload_max_bytes")), unit="byte")
    vosi.add_vosi_capabilities(root, base, tables_url=True)
    examples = sub(root, "capability", standardID="ivo://ivoa.net/std/DALI#examples")
    vosi.interface(examples, f"{base}/examples", kind="vr:WebBrowser")
    return root


@bp.route("/availability", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def availability() -> Response:
    """VOSI availability."""
    return vosi.get_only() or vosi.availability_response()


@bp.route("/tables", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def tableset() -> Response:
    """VOSI tableset (``detail=min`` or ``max``)."""
    refused = vosi.get_only()
    if refused is not None:
        return refused
    detail = next((v for k, v in request.args.items() if k.lower() == "detail"), None)
    return vosi.tableset_response(detail)


@bp.route("/tables/<path:name>", methods=["GET", "HEAD"])
def table(name: str) -> Response:
    """One table of the tableset, with its columns."""
    response = vosi.table_response(name)
    if response is None:
        return Response(f"no table {name!r} here; see {_base()}/tables\n", status=404,
                        mimetype="text/plain")
    return response


@bp.route("/examples", methods=["GET", "HEAD"])
def examples() -> Response:
    """DALI examples: queries that work on this service."""
    return Response(render_template("tap_examples.html", examples=EXAMPLES, base=_base()),
                    mimetype="text/html")


#: (id, name, query, tables, description) of the DALI examples
EXAMPLES = (
    ("cone", "Targets within 1 degree of beta Lyrae",
     "SELECT target, right_ascension, declination,\n"
     "       DISTANCE(POINT('ICRS', right_ascension, declination),\n"
     "                POINT('ICRS', 282.52, 33.363)) AS dist\n"
     "FROM skvo.target\n"
     "WHERE 1 = CONTAINS(POINT('ICRS', right_ascension, declination),\n"
     "                   CIRCLE('ICRS', 282.52, 33.363, 1))\n"
     "ORDER BY dist",
     ("skvo.target",), "A cone search on the indexed target positions."),
    ("named-star", "All light curves of a named star",
     "SELECT obs_publisher_did, bandpass_uid, t_min, t_max, t_xel, access_url\n"
     "FROM ivoa.obscore\nWHERE target_name = 'bet_Lyr'\nORDER BY t_min",
     ("ivoa.obscore",), "Every photometry series of beta Lyrae with its DataLink URL."),
    ("join", "Observations with target, bandpass and instrument",
     "SELECT t.target, o.night, b.bandpass_uid, i.instrument, p.n_points\n"
     "FROM skvo.observation AS o\n"
     "JOIN skvo.target AS t ON t.target_id = o.target_id\n"
     "JOIN skvo.photometry AS p ON p.observation_id = o.observation_id\n"
     "JOIN skvo.bandpass AS b ON b.bandpass_id = p.bandpass_id\n"
     "JOIN skvo.instrument AS i ON i.instrument_id = o.instrument_id\n"
     "ORDER BY night, target",
     ("skvo.observation", "skvo.target", "skvo.photometry", "skvo.bandpass",
      "skvo.instrument"), "The metadata tables joined on their foreign keys."),
    ("obscore-time-band", "V-band light curves of early 2018 in ObsCore",
     "SELECT target_name, obs_collection, t_min, t_max, em_min, em_max\n"
     "FROM ivoa.obscore\n"
     "WHERE t_min < 58300 AND t_max > 58100\n"
     "  AND em_min < 5.5e-7 AND em_max > 5.5e-7\n"
     "ORDER BY t_min",
     ("ivoa.obscore",), "Time-range and wavelength constraints on ObsCore."),
    ("upload-xmatch", "Crossmatch your own positions (TAP_UPLOAD)",
     "SELECT u.*, t.target, t.right_ascension, t.declination\n"
     "FROM TAP_UPLOAD.mine AS u\n"
     "JOIN skvo.target AS t\n"
     "  ON 1 = CONTAINS(POINT('ICRS', t.right_ascension, t.declination),\n"
     "                  CIRCLE('ICRS', u.ra, u.dec, 0.01))",
     ("skvo.target",),
     "Upload a VOTable with columns ra and dec as 'mine' (UPLOAD=mine,param:mine)."),
    ("per-source", "How many series and points each source delivered",
     "SELECT obs_collection, COUNT(*) AS n_series, SUM(t_xel) AS n_points\n"
     "FROM ivoa.obscore\nGROUP BY obs_collection\nORDER BY n_points DESC",
     ("ivoa.obscore",), "Aggregates over ObsCore."),
    ("south", "Southern targets with their number of observations",
     "SELECT t.target, t.declination, COUNT(o.observation_id) AS n_obs\n"
     "FROM skvo.target AS t\n"
     "LEFT OUTER JOIN skvo.observation AS o ON o.target_id = t.target_id\n"
     "WHERE t.declination < -30\n"
     "GROUP BY t.target, t.declination",
     ("skvo.target", "skvo.observation"), "An outer join with GROUP BY."),
    ("columns", "What the tables contain (TAP_SCHEMA)",
     "SELECT table_name, column_name, datatype, unit, ucd, description\n"
     "FROM TAP_SCHEMA.columns\nWHERE table_name = 'ivoa.obscore'\nORDER BY column_index",
     ("TAP_SCHEMA.columns",), "The columns of ObsCore with units and UCDs."),
    ("star-curves", "Each star's light curve per band over all its nights",
     "SELECT target_name, bandpass_uid, t_min, t_max, t_xel, obs_collection, access_url\n"
     "FROM ivoa.obscore\nWHERE calib_level = 3\nORDER BY target_name, bandpass_uid",
     ("ivoa.obscore",), "Star curves (calib_level 3) join the nights you may fetch; their "
     "access_url leads to DataLink (the curve, previews, its nights, the periodogram)."),
    ("star-points", "A star's V light curve over all nights, point by point",
     "SELECT p.mjd, p.magnitude, p.magnitude_error, p.flux_calibration,\n"
     "       o.source, o.observation_uuid, p.frame_url\n"
     "FROM skvo.\"point\" AS p\n"
     "JOIN skvo.target AS t ON t.target_id = p.target_id\n"
     "JOIN skvo.bandpass AS b ON b.bandpass_id = p.bandpass_id\n"
     "JOIN skvo.observation AS o ON o.observation_id = p.observation_id\n"
     "WHERE t.target = 'bet_Lyr' AND b.bandpass_uid = 'johnson.v'\n"
     "ORDER BY mjd",
     ("skvo.point", "skvo.target", "skvo.bandpass", "skvo.observation"),
     "Every point of beta Lyrae in V that you may fetch, with its night and frame. POINT "
     "is an ADQL reserved word: strict ADQL writes skvo.\"point\" (SKVO also takes "
     "skvo.point)."),
    ("ephemerides", "Stored periods and epochs",
     "SELECT t.target, e.period, e.epoch, e.epoch_timescale, e.epoch_refpos, e.var_type,\n"
     "       e.reference\nFROM skvo.ephemeris AS e\n"
     "JOIN skvo.target AS t ON t.target_id = e.target_id\nWHERE e.is_default = 1",
     ("skvo.ephemeris", "skvo.target"),
     "The default ephemeris of each target: what PERIOD=catalog folds on."),
    ("filters", "Filters with their wavelengths",
     "SELECT bandpass_uid, photometric_system, wavelength_eff, wavelength_min, "
     "wavelength_max\nFROM skvo.bandpass\nORDER BY wavelength_eff",
     ("skvo.bandpass",), "Effective wavelengths of the known standard filters."),
)


uws.register_routes(bp)


def register(app: Flask) -> None:
    """Add ``/tap`` (with the UWS routes) to the application."""
    app.register_blueprint(bp)
    vosi.publish_capabilities(app, "tap", capabilities_element)

