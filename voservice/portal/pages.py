"""The landing page: what this service is and where its endpoints are."""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, render_template, url_for
from werkzeug.wrappers import Response

from voservice.context import services

bp = Blueprint("portal", __name__)

#: (path, standard, what it serves) — the endpoint map shown on the page
ENDPOINTS = (
    ("/tap", "TAP 1.1 (ADQL 2.1)", "queries over targets, observations, ivoa.obscore"),
    ("/scs", "Simple Cone Search 1.03", "targets within SR of RA, DEC"),
    ("/ssa", "SSA 1.1", "light curves, one record per photometry series"),
    ("/sia", "SIA 2.0", "image frames"),
    ("/datalink", "DataLink 1.1", "links of an observation: light curve, preview, frames"),
    ("/lightcurve/<uuid>/<bandpass>", "VOTable 1.4 with TIMESYS", "one light curve"),
)


@bp.get("/")
def index() -> str:
    """The landing page."""
    svc = services()
    return render_template(
        "index.html",
        title=svc.settings.get("vo", "title"),
        base_url=svc.base_url,
        endpoints=ENDPOINTS,
    )


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on every page without an icon link."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


def register(app: Flask) -> None:
    """Add the portal to the application."""
    app.register_blueprint(bp)
