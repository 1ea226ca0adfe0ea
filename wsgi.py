"""WSGI entry point: ``waitress-serve wsgi:app`` (settings from $SKVO_CONFIG or ./skvo.ini).

``skvo serve`` is the production server (workers, the job runner, the request limits).
"""

from voservice.app import create_app
from voservice.config import load_config

app = create_app(load_config())
