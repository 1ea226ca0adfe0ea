"""WSGI entry point: ``gunicorn wsgi:app`` (settings from $SKVO_CONFIG or ./skvo.ini)."""

from voservice.app import create_app
from voservice.config import load_config

app = create_app(load_config())
