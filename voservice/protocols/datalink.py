"""DataLink 1.1 ``{links}``: what belongs to a light curve's publisher DID.

For each ID: ``#this`` (the light curve as VOTable and as CSV, and all
bandpasses of the night), ``#preview`` (a PNG plot) and ``#auxiliary`` (each
image frame).  A star's curve (``ivo://<authority>/skvo?star/<target_id>/<band>``)
has ``#this`` (VOTable, CSV), ``#preview``, ``#preview-plot`` (folded on the
star's default ephemeris; NotFoundFault without one), ``#derivation`` (the
periodogram's service descriptor; for an eclipsing binary also its O-C, VOTable
and plot) and ``#progenitor`` (the curve of each of its nights).  An
observation's uuid (``obs_id``, the ``obs_id`` column of a star's curve) is
taken for its DID.  Unknown IDs,
and restricted ones for users without a grant, get a ``NotFoundFault`` row;
on_demand data without a grant get ``AuthenticationFault``/``AuthorizationFault``
rows instead of links.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, Flask, Response
from lxml import etree

from voservice import ephemeris, tables, urls
from voservice.access import can_download, can_see, download_denial
from voservice.archive import lightcurves, stars
from voservice.catalog import did_prefix, parse_star_did, publisher_did
from voservice.config import Settings
from voservice.context import principal, services
from voservice.protocols import analysis, dali, vosi
from voservice.votable import Field, Info, Resource, write_table

bp = Blueprint("datalink", __name__, url_prefix="/datalink")

STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
MIME = "application/x-votable+xml;content=datalink"
#: bytes per light-curve point in a BINARY2 VOTable, for content_length estimates
BYTES_PER_POINT = 64
#: an observation uuid (an obs_id)
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

FIELDS = [
    Field("ID", "char", "*", ucd="meta.id;meta.main",
          description="Identifier of the dataset the link belongs to."),
    Field("access_url", "char", "*", ucd="meta.ref.url", description="URL of the linked resource."),
    Field("service_def", "char", "*", ucd="meta.ref",
          description="Reference to a service descriptor resource."),
    Field("error_message", "char", "*", ucd="meta.code.error",
          description="Why this link could not be made."),
    Field("description", "char", "*", ucd="meta.note", description="What the link is."),
    Field("semantics", "char", "*", ucd="meta.code",
          description="What the linked resource is to the dataset (DataLink vocabulary)."),
    Field("content_type", "char", "*", ucd="meta.code.mime",
          description="MIME type of the linked resource."),
    Field("content_length", "long", unit="byte", ucd="phys.size;meta.file",
          description="Size of the linked resource (estimated for light curves)."),
    Field("content_qualifier", "char", "*", ucd="meta.code.class",
          description="Kind of data product the link leads to."),
    Field("local_semantics", "char", "*", ucd="meta.id.assoc",
          description="Local meaning of the link."),
    Field("link_auth", "char", "*", ucd="meta.code",
          description="Authentication the link needs: false, optional or true."),
    Field("link_authorized", "boolean", ucd="meta.code",
          description="Whether the current user may follow the link."),
]


def _row(did: str, *, url: str | None = None, error: str | None = None, semantics: str,
         description: str | None = None, content_type: str | None = None,
         length: int | None = None, qualifier: str | None = None, local: str | None = None,
         auth: str = "false", authorized: bool | None = True) -> tuple[Any, ...]:
    return (did, url, None, error, description, semantics, content_type, length, qualifier,
            local, auth, authorized)


def _frames(engine: sa.Engine, photometry_ids: list[int]) -> dict[int, list[sa.Row]]:
    fr = tables.sa_table("skvo.frame")
    out: dict[int, list[sa.Row]] = {i: [] for i in photometry_ids}
    if not photometry_ids:
        return out
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(fr.c.frame_id, fr.c.photometry_id, fr.c.frame_index, fr.c.content_type,
                      fr.c.file_size)
            .where(fr.c.photometry_id.in_(photometry_ids))
            .order_by(fr.c.photometry_id, fr.c.frame_index))
        for row in rows:
            out[row.photometry_id].append(row)
    return out


def links(did: str, descriptors: list[Resource] | None = None) -> list[tuple[Any, ...]]:
    """The rows of one ID (always at least one); service descriptors the rows name
    are appended to ``descriptors``."""
    svc = services()
    star = parse_star_did(svc.authority, did)
    if star is not None:
        return star_links(did, *star, descriptors=[] if descriptors is None else descriptors)
    if UUID.fullmatch(did):  # an obs_id: the observation's uuid
        return links_of(did, publisher_did(svc.authority, did.lower()))
    return links_of(did, did)


def links_of(did: str, canonical: str) -> list[tuple[Any, ...]]:
    """The rows of a night's DID (``did`` as asked, ``canonical`` its publisher DID)."""
    svc = services()
    who = principal()
    prefix = did_prefix(svc.authority)
    uuid = (canonical[len(prefix):] if canonical.lower().startswith(prefix.lower())
            else None)
    series = lightcurves.find_series(svc.engine, uuid) if uuid else []
    visible = [s for s in series if can_see(who, s.access, s.source)]
    if not visible:
        return [_row(did, error=f"NotFoundFault: {did} is not known to this service",
                     semantics="#this")]
    base = svc.base_url
    rows: list[tuple[Any, ...]] = []
    frames = _frames(svc.engine, [s.photometry_id for s in visible])
    for s in visible:
        protected = s.access != "open"
        auth = "true" if protected else "false"
        if not can_download(who, s.access, s.source):
            _status, message = download_denial(who)
            for semantics, what in (("#this", "light curve"), ("#preview", "preview plot")):
                rows.append(_row(did, error=f"{message} ({what} of {s.bandpass_uid})",
                                 semantics=semantics, auth=auth, authorized=False))
            continue
        estimate = 4096 + s.n_points * BYTES_PER_POINT
        lc = urls.lightcurve_url(base, s.observation_uuid, s.bandpass_uid)
        rows += [
            _row(did, url=lc, semantics="#this", content_type="application/x-votable+xml",
                 length=estimate, qualifier="#timeseries", auth=auth,
                 description=f"Light curve of {s.target} in {s.bandpass_uid} "
                             "(VOTable with TIMESYS)"),
            _row(did, url=urls.lightcurve_url(base, s.observation_uuid, s.bandpass_uid, "csv"),
                 semantics="#this", content_type="text/csv", qualifier="#timeseries",
                 auth=auth, local="csv",
                 description=f"Light curve of {s.target} in {s.bandpass_uid} (CSV)"),
            _row(did, url=urls.preview_url(base, s.observation_uuid, s.bandpass_uid),
                 semantics="#preview", content_type="image/png", auth=auth,
                 description=f"Plot of the light curve of {s.target} in {s.bandpass_uid}"),
            _row(did, url=urls.multiband_url(base, s.observation_uuid), semantics="#auxiliary",
                 content_type="application/x-votable+xml", qualifier="#timeseries", auth=auth,
                 local="multiband",
                 description=f"All bandpasses of {s.target} observed on {s.night} in one table"),
        ]
        for frame in frames[s.photometry_id]:
            rows.append(_row(
                did, url=urls.frame_url(base, frame.frame_id), semantics="#auxiliary",
                content_type=frame.content_type, length=frame.file_size, auth=auth,
                qualifier="#image", local="frame",
                description=f"Image frame of point {frame.frame_index}"))
    return rows


def star_links(did: str, target_id: int, bandpass_uid: str, descriptors: list[Resource]
               ) -> list[tuple[Any, ...]]:
    """The rows of a star's curve in one band (its periodogram service descriptor is
    appended to ``descriptors``)."""
    svc = services()
    who = principal()
    star = stars.find_star(svc.engine, who, target_id, bandpass_uid)
    if star is None:
        return [_row(did, error=f"NotFoundFault: {did} is not known to this service",
                     semantics="#this")]
    if not star.fetchable:
        _status, message = download_denial(who)
        return [_row(did, error=f"{message} (the light curve of {star.target} in "
                     f"{bandpass_uid})", semantics="#this", auth="true", authorized=False)]
    base = svc.base_url
    points = sum(s.n_points for s in star.fetchable)
    nights = len({s.observation_uuid for s in star.fetchable})
    what = f"{star.target} in {bandpass_uid} over {nights} night{'s' * (nights != 1)}"
    rows = [
        _row(did, url=urls.star_curve_url(base, target_id, bandpass_uid), semantics="#this",
             content_type="application/x-votable+xml", length=4096 + points * BYTES_PER_POINT,
             qualifier="#timeseries", description=f"Light curve of {what} (VOTable)"),
        _row(did, url=urls.star_curve_url(base, target_id, bandpass_uid, "csv"),
             semantics="#this", content_type="text/csv", qualifier="#timeseries", local="csv",
             description=f"Light curve of {what} (CSV)"),
        _row(did, url=urls.star_preview_url(base, target_id, bandpass_uid), semantics="#preview",
             content_type="image/png", description=f"Plot of the light curve of {what}"),
    ]
    with svc.engine.connect() as conn:
        eph = ephemeris.default_ephemeris(conn, target_id, principal=who)
    if eph is None:
        rows.append(_row(did, error=f"NotFoundFault: {star.target} has no stored ephemeris "
                         "to fold the curve on", semantics="#preview-plot"))
    else:
        rows.append(_row(did, url=urls.star_preview_url(base, target_id, bandpass_uid, True),
                         semantics="#preview-plot", content_type="image/png",
                         local="folded", description=f"The light curve of {what} folded "
                         f"on P = {eph.period!r} d, epoch MJD {eph.epoch!r}"))
    service = f"periodogram_{len(descriptors)}"
    descriptors.append(analysis.service_descriptor(len(descriptors), did, star))
    rows.append((did, None, service, None, f"Periodogram of the light curve of {what} "
                 "(Lomb-Scargle, BLS or PDM; best peaks, fold links, plot)", "#derivation",
                 "application/x-votable+xml", None, None, "periodogram", "false", True))
    if analysis.eclipsing(eph):
        oc_url = f"{base}/analysis/oc?ID={quote(did, safe='')}"
        rows += [_row(did, url=oc_url, semantics="#derivation", local="oc",
                      content_type="application/x-votable+xml",
                      description=f"O-C of the times of minimum of {what} against the default "
                      "ephemeris, with linear and quadratic ephemeris fits"),
                 _row(did, url=f"{oc_url}&RESPONSEFORMAT=image/png", semantics="#derivation",
                      local="oc-plot", content_type="image/png",
                      description=f"O-C diagram of {what}")]
    for s in star.fetchable:
        rows.append(_row(did, url=urls.lightcurve_url(base, s.observation_uuid, s.bandpass_uid),
                         semantics="#progenitor", content_type="application/x-votable+xml",
                         qualifier="#timeseries", auth="false" if s.access == "open" else "true",
                         length=4096 + s.n_points * BYTES_PER_POINT,
                         description=f"Light curve of the night {s.night} ({s.source}, "
                         f"{s.instrument}): {publisher_did(svc.authority, s.observation_uuid)}"))
    return rows


@bp.route("", methods=["GET", "POST"])
def datalink() -> Response:
    """The {links} table of the IDs asked for (TABLEDATA VOTable)."""
    p = dali.params()
    ids = p.getlist("ID")
    try:
        fmt = dali.single(p, "RESPONSEFORMAT")
    except dali.UsageError as exc:
        return dali.error_response(f"UsageFault: {exc}")
    if fmt and fmt.split(";")[0].strip().lower() not in (
            "votable", "application/x-votable+xml", "text/xml"):
        return dali.error_response(f"UsageFault: RESPONSEFORMAT={fmt!r}: DataLink answers "
                                   "VOTables only")
    descriptors: list[Resource] = []
    rows = [row for did in ids for row in links(did, descriptors)]
    chunks = write_table(FIELDS, [rows] if rows else [], format="votable/td",
                         infos=[Info("standardID", STANDARD_ID)],
                         resources=descriptors)
    return dali.stream(chunks, MIME)


@bp.route("/capabilities", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def capabilities() -> Response:
    """VOSI capabilities of the DataLink service."""
    refused = vosi.get_only()
    if refused is not None:
        return refused
    svc = services()
    return vosi.capabilities_response(capabilities_element(svc.base_url, svc.settings))


def capabilities_element(base_url: str, settings: Settings) -> etree._Element:
    """The ``vosi:capabilities`` of the DataLink service of SKVO at ``base_url``."""
    base = f"{base_url}/datalink"
    root = vosi.capabilities_root()
    cap = vosi.sub(root, "capability", standardID=STANDARD_ID)
    vosi.interface(cap, base, std=True, use="full", version="1.1")
    vosi.add_vosi_capabilities(root, base)
    return root


@bp.route("/availability", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def availability() -> Response:
    """VOSI availability."""
    return vosi.get_only() or vosi.availability_response()


def register(app: Flask) -> None:
    """Add ``/datalink``."""
    app.register_blueprint(bp)
    vosi.publish_capabilities(app, "datalink", capabilities_element)
