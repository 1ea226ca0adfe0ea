"""Browser views of the VO endpoints: info pages, readable VOSI, the ADQL form.

Nothing here answers a VO client differently: the views apply only to a browser's
navigation (:func:`voservice.portal.negotiation.is_browser`), and every number they
show comes from the VO endpoints themselves (the pages' scripts call ``/tap/sync``,
``/scs``, ... with ``RESPONSEFORMAT=json``; the DataLink view calls
:func:`voservice.protocols.datalink.links`).

- ``/tap``, ``/scs``, ``/ssa``, ``/sia``, ``/datalink`` without parameters: an info
  page (what the service is, its links, a query form showing the first rows);
- VOSI capabilities, tables and availability: the XML through ``vosi.xsl`` (the
  stylesheet the documents name in their ``<?xml-stylesheet?>``), applied here;
- ``/adql``: the ADQL form (``?example=<id>`` fills in a DALI example and runs it);
- light curves without ``RESPONSEFORMAT``: a page with the plot, the first points and
  the downloads; DataLink with ``ID``: the links as a table of clickable links;
- downloads a browser asks for (light curves, TAP sync, SCS/SSA/SIA results,
  DataLink) get a ``Content-Disposition`` file name with the right extension.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, render_template, request
from lxml import etree

from voservice import tables, urls
from voservice.access import can_download, can_see, download_denial
from voservice.archive import lightcurves, stars
from voservice.context import principal, services
from voservice.portal.negotiation import attachment, filename, has_params, is_browser, param

bp = Blueprint("service_pages", __name__)

#: beta Lyrae, the demo data's best-observed star: the example position of the forms
EXAMPLE_RA, EXAMPLE_DEC = 282.52, 33.363

#: endpoint -> file name stem of what it returns to a browser
DOWNLOAD_STEMS = {"tap.sync": "tap-result", "scs.scs": "scs-result", "ssa.ssa": "ssa-result",
                  "sia.sia_query": "sia-result", "datalink.datalink": "datalink"}
LIGHTCURVE_ENDPOINTS = ("lightcurve.lightcurve", "lightcurve.multiband",
                        "lightcurve.star_curve", "lightcurve.star_bands")
PREVIEW_SUFFIXES = ("/preview.png", "/preview-folded.png")


def _title() -> str:
    return str(services().settings.get("vo", "title"))


def _html(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.vary.add("Accept")
    return response


def _render(template: str, status: int = 200, **values: Any) -> Response:
    return _html(render_template(template, site_title=_title(), **values), status)


# --------------------------------------------------------------------------
# Info pages


def _example_did() -> str | None:
    """The publisher DID of an open light curve, for the DataLink example."""
    o = tables.sa_table("skvo.observation")
    with services().engine.connect() as conn:
        uuid = conn.execute(sa.select(o.c.observation_uuid).where(o.c.access == "open")
                            .order_by(o.c.observation_id).limit(1)).scalar()
    return None if uuid is None else f"ivo://{services().authority}/skvo?{uuid}"


def _service(name: str) -> dict[str, Any]:
    """What the info page of a service shows: links, parameters, the query form."""
    base = services().base_url
    ra, dec = EXAMPLE_RA, EXAMPLE_DEC
    vosi = [("Capabilities (VOSI)", f"{base}/{name}/capabilities"),
            ("Availability (VOSI)", f"{base}/{name}/availability")]
    if name == "tap":
        return {
            "name": "tap", "title": "Table Access Protocol (TAP 1.1, ADQL 2.1)",
            "url": f"{base}/tap", "lead": "Query every table of the archive in ADQL: "
            "targets, observations, ObsCore, the points of every light curve.",
            "links": [("ADQL query form", "/adql"), ("Example queries", f"{base}/tap/examples"),
                      ("Tables and columns (VOSI)", f"{base}/tap/tables"), *vosi],
            "clients": "In TOPCAT: VO → Table Access Protocol (TAP) Query, paste the URL "
            "above. In Python: pyvo.dal.TAPService(url).search(query).",
            "form": None,
        }
    if name == "scs":
        return {
            "name": "scs", "title": "Simple Cone Search 1.03", "url": f"{base}/scs",
            "lead": "Targets within a radius of a position, nearest first.",
            "links": vosi, "clients": "TOPCAT: VO → Cone Search; pyvo.dal.SCSService(url).",
            "form": {"action": f"{base}/scs", "fields": [
                ("RA", "Right ascension (deg, ICRS)", str(ra)),
                ("DEC", "Declination (deg, ICRS)", str(dec)),
                ("SR", "Radius (deg)", "1")]},
            "examples": [("Targets within 1° of beta Lyrae",
                          f"{base}/scs?RA={ra}&DEC={dec}&SR=1")],
        }
    if name == "ssa":
        return {
            "name": "ssa", "title": "Simple Spectral Access 1.1 (light curves)",
            "url": f"{base}/ssa", "lead": "Light curves by position, name, band and time: "
            "one record per night and band, one per star and band over all its nights.",
            "links": vosi, "clients": "TOPCAT: VO → SSA Query; pyvo.dal.SSAService(url).",
            "form": {"action": f"{base}/ssa", "fields": [
                ("POS", "Position ra,dec (deg, ICRS)", f"{ra},{dec}"),
                ("SIZE", "Diameter (deg)", "0.1"),
                ("TARGETNAME", "or a star name", ""),
                ("BAND", "Band (e.g. johnson.v)", ""),
                ("TIME", "Time range (MJD/MJD or ISO/ISO)", "")]},
            "examples": [("Light curves of beta Lyrae", f"{base}/ssa?REQUEST=queryData&"
                          f"POS={ra},{dec}&SIZE=0.1"),
                         ("Service metadata", f"{base}/ssa?REQUEST=queryData&FORMAT=METADATA")],
        }
    if name == "sia":
        return {
            "name": "sia", "title": "Simple Image Access 2.0 (frames)",
            "url": f"{base}/sia/query", "lead": "The image frame behind each light-curve "
            "point, by position, time and band.",
            "links": vosi, "clients": "TOPCAT: VO → SIA Query (version 2); "
            "pyvo.dal.SIA2Service(url).",
            "form": {"action": f"{base}/sia/query", "fields": [
                ("POS", "Region (CIRCLE ra dec radius, deg)", f"CIRCLE {ra} {dec} 0.1"),
                ("TIME", "Time range (MJD MJD)", ""),
                ("BAND", "Wavelength range (m m)", "")]},
            "examples": [("Frames of beta Lyrae", f"{base}/sia/query?POS="
                          + quote(f"CIRCLE {ra} {dec} 0.1"))],
        }
    did = _example_did()
    return {
        "name": "datalink", "title": "DataLink 1.1", "url": f"{base}/datalink",
        "lead": "Everything that belongs to a light curve's publisher DID: the curve as "
        "VOTable and CSV, its plot, its frames, its nights, the periodogram.",
        "links": vosi, "clients": "TOPCAT and pyvo follow the access_url of SSA and "
        "ObsCore results here (pyvo: DatalinkResults.from_result_url(url)).",
        "form": {"action": f"{base}/datalink", "plain": True,
                 "fields": [("ID", "Publisher DID", did or "")]},
        "examples": [("Links of one night's light curve", urls.datalink_url(base, did))]
        if did else [],
    }


INFO_PAGES = {"tap.home": "tap", "scs.scs": "scs", "ssa.ssa": "ssa", "sia.sia_query": "sia",
              "datalink.datalink": "datalink"}


# --------------------------------------------------------------------------
# VOSI through the stylesheet


@functools.cache
def _stylesheet() -> etree.XSLT:
    from voservice.tables import RESOURCES

    return etree.XSLT(etree.parse(str(RESOURCES / "static" / "xsl" / "vosi.xsl")))


def vosi_html(xml: bytes) -> str:
    """The page content (inside ``<main>``) of a VOSI document, through vosi.xsl."""
    static = urlsplit(services().base_url).path.rstrip("/") + "/static"
    page = _stylesheet()(etree.fromstring(xml), static=etree.XSLT.strparam(static))
    main = page.getroot().find(".//main")
    return "".join(etree.tostring(child, method="html", encoding="unicode")
                   for child in main) if main is not None else ""


def _vosi_page(response: Response) -> Response:
    """A browser's view of a VOSI document (the same XML, through the stylesheet)."""
    service = request.path.strip("/").split("/")[0]
    content = vosi_html(response.get_data())
    page = _render("vosi_page.html", content=content, service=service,
                   service_url=f"{services().base_url}/{service}",
                   title=etree.fromstring(response.get_data()).tag.split("}")[1])
    page.last_modified = response.last_modified
    return page


# --------------------------------------------------------------------------
# Light curves and DataLink


def _night_curve(uuid: str, band: str | None) -> tuple[list[lightcurves.Series], Response | None]:
    """The series of a night (one band or all) and the refusal, as the VO route decides."""
    who = principal()
    found = lightcurves.find_series(services().engine, uuid, band)
    if not any(can_see(who, s.access, s.source) for s in found) or (
            band is not None and not all(can_see(who, s.access, s.source) for s in found)):
        return [], _render("lightcurve_page.html", 404, missing=True)
    if band is None:  # a restricted uuid is unknown, even when its night has other series
        found = [s for s in lightcurves.night_series(services().engine, found[0])
                 if can_see(who, s.access, s.source)]
    return found, None


def _lightcurve_page(endpoint: str, args: dict[str, Any]) -> Response:
    """The HTML view of a light curve: what it is, its plot, first points, downloads."""
    who = principal()
    base = services().base_url
    if endpoint in ("lightcurve.star_curve", "lightcurve.star_bands"):
        band = args.get("bandpass_uid")
        star = stars.find_star(services().engine, who, int(args["target_id"]), band)
        if star is None:
            return _render("lightcurve_page.html", 404, missing=True)
        shown = star.visible
        allowed = bool(star.fetchable)
        url = (urls.star_curve_url(base, star.target_id, band) if band
               else urls.star_url(base, star.target_id))
        title = f"{star.target}" + (f" in {band}" if band else "") + ", all nights"
        preview = urls.star_preview_url(base, star.target_id, band) if band else None
        nights = sorted({(s.night, s.source) for s in (star.fetchable or star.visible)})
        did = (f"ivo://{services().authority}/skvo?star/{star.target_id}/{band}"
               if band else None)
    else:
        band = args.get("bandpass_uid")
        shown, refused = _night_curve(args["uuid"], band)
        if refused is not None:
            return refused
        allowed = all(can_download(who, s.access, s.source) for s in shown)
        first = shown[0]
        url = (urls.lightcurve_url(base, first.observation_uuid, band) if band
               else urls.multiband_url(base, first.observation_uuid))
        title = f"{first.target} on {first.night}" + (f" in {band}" if band else "")
        preview = urls.preview_url(base, first.observation_uuid, band) if band else None
        nights = [(first.night, first.source)]
        did = f"ivo://{services().authority}/skvo?{first.observation_uuid}"
    joiner = "&" if "?" in url else "?"
    downloads = [(label, f"{url}{joiner}{urlencode({'RESPONSEFORMAT': fmt})}")
                 for label, fmt in (("VOTable", "votable"), ("CSV", "csv"), ("TSV", "tsv"),
                                    ("JSON", "json"), ("FITS", "fits"))]
    denial = None if allowed else download_denial(who)[1]
    # 200 also when locked: the page (metadata and a login link) is what was asked for;
    # the data URLs themselves answer 401/403
    return _render("lightcurve_page.html", missing=False,
                   title=title, url=url, preview=preview if allowed else None,
                   series=shown, nights=nights, downloads=downloads, denial=denial,
                   datalink=urls.datalink_url(base, did) if did else None,
                   json_url=f"{url}{joiner}RESPONSEFORMAT=json&MAXREC=20")


def _datalink_page() -> Response:
    """The links of the IDs as a page: the rows the DataLink VOTable holds."""
    from voservice.protocols import datalink

    ids = [v for k, vs in request.args.lists() if k.upper() == "ID" for v in vs]
    rows = [dict(zip(("ID", "access_url", "service_def", "error_message", "description",
                      "semantics", "content_type", "content_length", "content_qualifier",
                      "local_semantics", "link_auth", "link_authorized"), row, strict=True))
            for did in ids for row in datalink.links(did, [])]
    votable = f"{services().base_url}/datalink?" + urlencode(
        [("ID", i) for i in ids] + [("RESPONSEFORMAT", "votable")])
    return _render("datalink_page.html", rows=rows, ids=ids, votable=votable)


def _download_name(endpoint: str, args: dict[str, Any], mime: str) -> str | None:
    """The file name a browser saves a VO answer as."""
    if endpoint in DOWNLOAD_STEMS:
        return filename(DOWNLOAD_STEMS[endpoint], mime=mime)
    if endpoint not in LIGHTCURVE_ENDPOINTS:
        return None
    band = args.get("bandpass_uid")
    if band and band.endswith(PREVIEW_SUFFIXES):
        return None
    engine = services().engine
    if "target_id" in args:
        star = stars.find_star(engine, principal(), int(args["target_id"]), band)
        return filename(star.target if star else "star", band, mime=mime)
    found = lightcurves.find_series(engine, args["uuid"], band)
    if not found:
        return None
    return filename(found[0].target, band, str(found[0].night), mime=mime)


# --------------------------------------------------------------------------
# The hooks: browsers get pages, clients what they always got


def _browser_views() -> Response | None:
    """Before the VO view: a page instead, for a browser's navigation."""
    if request.method != "GET" or not is_browser(request):
        return None
    endpoint = request.endpoint or ""
    args = request.view_args or {}
    if endpoint in INFO_PAGES and not has_params(request):
        info = _service(INFO_PAGES[endpoint])
        return _render("service_info.html", service=info)
    if (endpoint in LIGHTCURVE_ENDPOINTS and param(request, "RESPONSEFORMAT") is None
            and not str(args.get("bandpass_uid", "")).endswith(PREVIEW_SUFFIXES)):
        return _lightcurve_page(endpoint, args)
    if endpoint == "datalink.datalink" and param(request, "RESPONSEFORMAT") is None:
        return _datalink_page()
    return None


def _browser_downloads(response: Response) -> Response:
    """After the VO view: VOSI as a page, downloads with a file name (browsers only)."""
    if (request.method != "GET" and request.endpoint != "tap.sync") or response.status_code != 200:
        return response
    if not is_browser(request) or response.mimetype == "text/html":
        return response
    if response.mimetype == "text/xml" and not response.is_streamed:
        head = response.get_data()[:300]
        if b"vosi.xsl" in head:
            return _vosi_page(response)
    name = _download_name(request.endpoint or "", request.view_args or {},
                          response.headers.get("Content-Type", ""))
    if name:
        response.headers["Content-Disposition"] = attachment(name)
        response.vary.add("Accept")
    return response


# --------------------------------------------------------------------------
# The ADQL form


@bp.get("/adql")
def adql_form() -> Response:
    """The ADQL form: query box, MAXREC, format; the first rows show in the page."""
    from voservice.protocols.tap import EXAMPLES, OUTPUT_FORMATS

    examples = {e[0]: e for e in EXAMPLES}
    chosen = examples.get(request.args.get("example", ""))
    query = request.args.get("query") or (chosen[2] if chosen else EXAMPLES[0][2])
    formats = [(aliases[0], mime) for mime, aliases, _ in OUTPUT_FORMATS]
    return _render("adql_form.html", query=query, example=chosen, examples=EXAMPLES,
                   formats=formats, sync_url=f"{services().base_url}/tap/sync",
                   tap_url=f"{services().base_url}/tap",
                   maxrec_hard=services().settings.get("vo", "maxrec_hard"),
                   autorun=bool(chosen) or request.args.get("run") == "1")


def register(app: Flask) -> None:
    """Add the blueprint and the hooks that serve browsers."""
    app.before_request(_browser_views)
    app.after_request(_browser_downloads)
    app.register_blueprint(bp)
