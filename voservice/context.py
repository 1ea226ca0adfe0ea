"""What a request works with: the application's services and the principal.

The blueprints import these helpers from here, never from the factory
(:mod:`voservice.app`), which imports the blueprints.  Nothing is global:
the services hang off ``current_app.extensions["skvo"]`` and the principal
off ``flask.g``.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request

from voservice.access import ANONYMOUS, Principal
from voservice.config import Settings
from voservice.stores.metadata import DEFAULT_THREADS, dialect_name, make_engine, pool_options

_WRITER_LOCK = threading.Lock()


@dataclass
class Services:
    """Everything the endpoints share: settings, engines and stores."""

    settings: Settings
    engine: sa.Engine  # the metadata database, read by the VO endpoints
    timeseries: Any  # voservice.stores.timeseries.base.TimeSeriesStore
    media: Any  # voservice.stores.media.base.MediaStore
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        """ADQL dialect of the metadata database (``sqlite`` or ``mysql``)."""
        return dialect_name(self.engine)

    @property
    def base_url(self) -> str:
        """Public base URL (no trailing slash): ``public_url``, else the current request's
        (scheme, Host, mount point; see :mod:`voservice.proxy`)."""
        from voservice.proxy import request_base_url

        return request_base_url(self.settings, request.environ if has_request_context() else None)

    @property
    def authority(self) -> str:
        """IVOA authority of the publisher DIDs."""
        return self.settings.get("vo", "authority")

    def writer(self) -> sa.Engine:
        """The engine that may write the metadata database (failed-login counters, the
        Sesame cache): the metadata URL, when the endpoints query a SELECT-only one."""
        if self.settings.metadata_url == self.settings.query_url:
            return self.engine
        with _WRITER_LOCK:
            engine = self.extras.get("writer")
            if engine is None:
                engine = self.extras["writer"] = make_engine(self.settings.metadata_url)
        return engine


def open_services(settings: Settings) -> Services:
    """Open the engine and stores the settings name (pools sized for the request threads)."""
    from voservice.stores import open_data_stores

    engine = make_engine(settings.query_url, **_pool(settings))
    # serving only reads points: the sql backend reads them with the query account too
    # (a read replica's, not the primary's)
    timeseries, media = open_data_stores(settings, engine)
    return Services(settings=settings, engine=engine, timeseries=timeseries, media=media)


def _pool(settings: Settings) -> dict[str, Any]:
    try:
        threads = int(settings.get("server", "threads"))
    except KeyError:
        threads = DEFAULT_THREADS
    return pool_options(threads, float(settings.get("metadata", "pool_timeout")))


def services() -> Services:
    """The Services of the current application."""
    return current_app.extensions["skvo"]


def principal() -> Principal:
    """The user the current request acts for (authenticated once per request)."""
    return g.get("principal", ANONYMOUS)
