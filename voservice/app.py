"""The Flask application factory.

``create_app(settings)`` opens the stores named in the settings, registers one
blueprint per protocol and installs the error handlers that keep stack traces
and database messages away from clients.  Nothing is global: everything a
request needs hangs off ``current_app.extensions["skvo"]`` (see
:func:`services`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from voservice import limits
from voservice.access import (
    ANONYMOUS,
    Principal,
    Throttled,
    authenticate,
    login_policy,
    prepare_authentication,
)
from voservice.config import Settings, load_config
from voservice.stores.metadata import DEFAULT_THREADS, dialect_name, make_engine, pool_options

log = logging.getLogger(__name__)


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
        """Public base URL of the service (no trailing slash)."""
        return self.settings.public_url

    @property
    def authority(self) -> str:
        """IVOA authority of the publisher DIDs."""
        return self.settings.get("vo", "authority")


def open_services(settings: Settings) -> Services:
    """Open the engine and stores the settings name (pools sized for the request threads)."""
    from voservice.stores import open_data_stores

    pool = _pool(settings)
    engine = make_engine(settings.query_url, **pool)
    write_engine = engine if settings.query_url == settings.metadata_url else make_engine(
        settings.metadata_url, **pool
    )
    timeseries, media = open_data_stores(settings, write_engine)
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


def create_app(settings: Settings | None = None, svc: Services | None = None) -> Flask:
    """Build the SKVO Flask application."""
    settings = settings or (svc.settings if svc else load_config())
    app = Flask(
        __name__,
        static_folder=str(_resources() / "static"),
        template_folder=str(_resources() / "templates"),
    )
    app.config["SKVO_SETTINGS"] = settings
    app.extensions["skvo"] = svc or open_services(settings)
    limits.install(app, settings)  # request-body limit, strict multipart

    policy = login_policy(settings)
    counters = _login_engine(app.extensions["skvo"])  # failed logins, shared by all workers
    prepare_authentication(counters)

    @app.before_request
    def _authenticate() -> Response | None:
        header = request.headers.get("Authorization")
        try:
            who = authenticate(services().engine, header, request.remote_addr,
                               write_engine=counters, policy=policy) if header else ANONYMOUS
        except Throttled as exc:
            return _auth_error(429, f"RateLimited: too many failed logins for this account "
                               f"or address; retry after {exc.retry_after} s",
                               {"Retry-After": str(exc.retry_after)})
        if who is None:
            return _auth_error(401, "AuthenticationFault: unknown user, wrong password or "
                               "token", {"WWW-Authenticate": 'Basic realm="SKVO"'})
        g.principal = who
        return None

    _register_blueprints(app)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, sa.exc.TimeoutError):  # every pooled connection is in use
            from voservice.protocols.dali import busy_response

            log.warning("no database connection free within the pool timeout on %s",
                        request.path)
            return busy_response()
        if isinstance(exc, HTTPException):
            return Response(
                f"{exc.code} {exc.name}: {exc.description}\n",
                status=exc.code or 500,
                mimetype="text/plain",
            )
        log.exception("unhandled error on %s", request.path)
        return Response(
            "500 Internal Server Error: the service failed; the error is logged.\n",
            status=500,
            mimetype="text/plain",
        )

    return app


def _login_engine(svc: Services) -> sa.Engine:
    """The engine of the failed-login counters: the metadata DB (not a SELECT-only account)."""
    if svc.settings.metadata_url == svc.settings.query_url:
        return svc.engine
    return make_engine(svc.settings.metadata_url)


def _auth_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """A 401/429: a DALI error VOTable on VO paths, plain text elsewhere."""
    mime, body = limits.error_body(request.path, status, message)
    return Response(body, status=status, headers={"Content-Type": mime, **headers})


def _resources() -> Any:
    from voservice.tables import RESOURCES

    return RESOURCES


def _register_blueprints(app: Flask) -> None:
    """Register one blueprint per protocol."""
    from voservice.protocols import datalink, lightcurve, portal, resolve, scs, sia, ssa, tap

    for module in (portal, tap, scs, ssa, sia, datalink, lightcurve, resolve):
        module.register(app)
