"""Browser sessions: log in, log out, CSRF tokens."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("login", __name__)


def register(app: Flask) -> None:
    """Add the blueprint to the application."""
    app.register_blueprint(bp)
