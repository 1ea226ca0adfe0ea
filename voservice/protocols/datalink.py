"""DataLink 1.1 ``{links}``: what belongs to a light curve's publisher DID.

For each ID: ``#this`` (the light curve as VOTable and as CSV, and all
bandpasses of the night), ``#preview`` (a PNG plot) and ``#auxiliary`` (each
image frame).  Unknown IDs, and restricted ones for users without a grant,
get a ``NotFoundFault`` row; on_demand data without a grant get
``AuthenticationFault``/``AuthorizationFault`` rows instead of links.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response

from voservice import lightcurves, tables, urls
from voservice.access import can_download, can_see, download_denial
from voservice.app import principal, services
from voservice.catalog import did_prefix
from voservice.protocols import dali, vosi
from voservice.votable import Field, Info, write_table

bp = Blueprint("datalink", __name__, url_prefix="/datalink")

STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
MIME = "application/x-votable+xml;content=datalink"
#: bytes per light-curve point in a BINARY2 VOTable, for content_length estimates
BYTES_PER_POINT = 64

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


def links(did: str) -> list[tuple[Any, ...]]:
    """The rows of one ID (always at least one)."""
    svc = services()
    who = principal()
    prefix = did_prefix(svc.authority)
    uuid = did[len(prefix):] if did.lower().startswith(prefix.lower()) else None
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
    rows = [row for did in ids for row in links(did)]
    chunks = write_table(FIELDS, [rows] if rows else [], format="votable/td",
                         infos=[Info("standardID", STANDARD_ID)])
    return dali.stream(chunks, MIME)


@bp.route("/capabilities", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def capabilities() -> Response:
    """VOSI capabilities of the DataLink service."""
    refused = vosi.get_only()
    if refused is not None:
        return refused
    base = f"{services().base_url}/datalink"
    root = vosi.capabilities_root()
    cap = vosi.sub(root, "capability", standardID=STANDARD_ID)
    vosi.interface(cap, base, std=True, use="full", version="1.1")
    vosi.add_vosi_capabilities(root, base)
    return vosi.capabilities_response(root)


@bp.route("/availability", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
def availability() -> Response:
    """VOSI availability."""
    return vosi.get_only() or vosi.availability_response()


def register(app: Flask) -> None:
    """Add ``/datalink``."""
    app.register_blueprint(bp)
