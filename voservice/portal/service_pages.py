"""Browser views of the VO endpoints: info pages, readable VOSI, the ADQL form."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("service_pages", __name__)


def register(app: Flask) -> None:
    """Add the blueprint to the application."""
    app.register_blueprint(bp)
