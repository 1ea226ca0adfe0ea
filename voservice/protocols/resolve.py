"""``/resolve?name=``: which target of the archive a star name means.

Answers the targets the name reaches for the requesting principal (see
:mod:`voservice.resolver`), their position, aliases and per-night light
curves, as JSON (the default) or as a table in any RESPONSEFORMAT
(VOTable, CSV, ...).  A name that reaches nothing is answered 404; a target
the principal may not see is not there.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response

from voservice import resolver
from voservice.access import can_download
from voservice.context import Services, principal, services
from voservice.protocols import dali
from voservice.urls import lightcurve_url, star_curve_url
from voservice.votable import Field, Info, write_table

bp = Blueprint("resolve", __name__)

#: largest accepted name (SIMBAD identifiers are far shorter)
MAX_NAME = 255

FIELDS = [
    Field("target", "char", arraysize="*", ucd="meta.id;src;meta.main",
          description="Name of the target as published (skvo.target.target)."),
    Field("target_id", "long", ucd="meta.id", description="skvo.target.target_id."),
    Field("catalogue", "char", arraysize="*", ucd="meta.ref", description="Catalogue."),
    Field("catalogue_value", "char", arraysize="*", ucd="meta.id.cross",
          description="Identifier of the target in the catalogue."),
    Field("ra", "double", unit="deg", ucd="pos.eq.ra;meta.main", description="RA (ICRS)."),
    Field("dec", "double", unit="deg", ucd="pos.eq.dec;meta.main", description="Dec (ICRS)."),
    Field("target_class", "char", arraysize="*", ucd="src.class", description="Class."),
    Field("aliases", "char", arraysize="*", ucd="meta.id",
          description="Other names of the target, separated by ' | '."),
    Field("resolver", "char", arraysize="*", ucd="meta.code",
          description="archive (an alias matched) or sesame (through Sesame's answer)."),
    Field("n_curves", "long", ucd="meta.number",
          description="Number of per-night light curves the requester may see."),
    Field("lightcurves", "char", arraysize="*", ucd="meta.ref.url",
          description="SSA query listing the target's light curves."),
    Field("star_curves", "char", arraysize="*", ucd="meta.ref.url",
          description="The target's light curve per band over all the nights the requester "
                      "may fetch (/lightcurve/star/...), separated by blanks."),
]


def ssa_url(base_url: str, target: str) -> str:
    """The SSA query listing a target's light curves."""
    return f"{base_url}/ssa?" + urlencode({"REQUEST": "queryData", "TARGETNAME": target})


def _document(res: resolver.Resolution, svc: Services) -> dict[str, Any]:
    who = principal()
    ids = [m.target_id for m in res.targets]
    with svc.engine.connect() as conn:
        aliases = resolver.aliases_of(conn, ids)
        curves = resolver.curves(conn, who, ids)
    targets = []
    for m in res.targets:
        mine = [c for c in curves if c["target_id"] == m.target_id]
        targets.append({
            "target": m.target, "target_id": m.target_id, "catalogue": m.catalogue,
            "catalogue_value": m.catalogue_value, "ra": m.ra, "dec": m.dec,
            "target_class": m.target_class,
            "aliases": [{"alias": a, "origin": o} for a, o in aliases[m.target_id]],
            "lightcurves": ssa_url(svc.base_url, m.target),
            "star_curves": _star_curves(svc, who, m.target_id, mine),
            "curves": [{"night": c["night"], "source": c["source"],
                        "bandpass": c["bandpass_uid"], "access": c["access"],
                        "url": lightcurve_url(svc.base_url, c["observation_uuid"],
                                              c["bandpass_uid"])} for c in mine],
        })
    position = None
    if res.position is not None:
        position = {"ra": res.position[0], "dec": res.position[1], "frame": "ICRS"}
    return {"name": res.name, "found": res.found, "resolver": res.resolver,
            "sesame_name": res.sesame_name, "position": position, "targets": targets,
            "note": res.note}


def _star_curves(svc: Services, who: Any, target_id: int, curves: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """The target's curve per band over the nights ``who`` may fetch."""
    nights: dict[str, int] = {}
    for c in curves:
        if can_download(who, c["access"], c["source"]):
            nights[c["bandpass_uid"]] = nights.get(c["bandpass_uid"], 0) + 1
    return [{"bandpass": band, "nights": n,
             "url": star_curve_url(svc.base_url, target_id, band)}
            for band, n in sorted(nights.items())]


def _json(doc: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(doc, indent=1) + "\n", status=status,
                    mimetype="application/json")


def _rows(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(t["target"], t["target_id"], t["catalogue"], t["catalogue_value"], t["ra"],
             t["dec"], t["target_class"], " | ".join(a["alias"] for a in t["aliases"]),
             doc["resolver"], len(t["curves"]), t["lightcurves"],
             " ".join(c["url"] for c in t["star_curves"])) for t in doc["targets"]]


@bp.route("/resolve", methods=["GET", "POST"])
def resolve() -> Response:
    """Resolve ``name`` to the archive's targets (JSON, or a table by RESPONSEFORMAT)."""
    svc = services()
    p = dali.params()
    try:
        name = (dali.single(p, "NAME") or "").strip()
        if not name:
            raise dali.UsageError("resolve needs name=, e.g. name=beta Lyr")
        if len(name) > MAX_NAME:
            raise dali.UsageError(f"name: at most {MAX_NAME} characters")
        text = dali.single(p, "RESPONSEFORMAT")
        fmt = None if not text or text.strip().lower() in ("json", "application/json") \
            else dali.response_format(p)
    except dali.UsageError as exc:
        return dali.error_response(f"UsageFault: {exc}", exc.status)
    res = resolver.resolve(svc.engine, principal(), name,
                           resolver.ResolverConfig.from_settings(svc.settings), svc.writer())
    doc = _document(res, svc)
    if fmt is None:
        return _json(doc, 200 if res.found else 404)
    if not res.found:
        return dali.error_response(f"NotFoundFault: {name!r}: {res.note}", 404)
    infos = [Info("QUERY_STATUS", "OK"), Info("resolver", res.resolver or "")]
    if res.position is not None:
        infos.append(Info("position", f"{res.position[0]:.7f} {res.position[1]:.7f}"))
    if res.note:
        infos.append(Info("note", res.note))
    body = write_table(FIELDS, [_rows(doc)], format=fmt.name, infos=infos,
                       table_name="targets")
    return dali.stream(body, fmt.mime)


def register(app: Flask) -> None:
    """Add ``/resolve`` to the application."""
    app.register_blueprint(bp)
