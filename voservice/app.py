"""The Flask application factory.

``create_app(settings)`` opens the stores named in the settings, registers one
blueprint per protocol and installs the error handlers that keep stack traces
and database messages away from clients.  Nothing is global: everything a
request needs hangs off ``current_app.extensions["skvo"]``; the blueprints
reach it through :mod:`voservice.context`, never through this module.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from voservice import limits
from voservice.access import (
    Throttled,
    authenticate,
    login_policy,
    prepare_authentication,
)
from voservice.config import Settings, load_config
from voservice.context import Services, open_services, services
from voservice.migrations import require_current
from voservice.portal.login import session_principal
from voservice.proxy import ProxyHeaders

log = logging.getLogger(__name__)


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
    require_current(app.extensions["skvo"].engine)  # an older schema: run `skvo upgrade`
    limits.install(app, settings)  # request-body limit, strict multipart
    app.wsgi_app = ProxyHeaders(app.wsgi_app, settings)  # type: ignore[method-assign]

    policy = login_policy(settings)
    counters = app.extensions["skvo"].writer()  # failed logins, shared by all workers
    prepare_authentication(counters)

    @app.before_request
    def _authenticate() -> Response | None:
        header = request.headers.get("Authorization")
        try:
            who = authenticate(services().engine, header, request.remote_addr,
                               write_engine=counters, policy=policy
                               ) if header else session_principal()  # a browser's login
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


def _auth_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """A 401/429: a DALI error VOTable on VO paths, plain text elsewhere."""
    mime, body = limits.error_body(request.path, status, message)
    return Response(body, status=status, headers={"Content-Type": mime, **headers})


def _resources() -> Any:
    from voservice.tables import RESOURCES

    return RESOURCES


def _register_blueprints(app: Flask) -> None:
    """Register one blueprint per protocol."""
    from voservice import portal
    from voservice.protocols import (
        analysis,
        datalink,
        lightcurve,
        registry,
        resolve,
        scs,
        seedapi,
        sia,
        ssa,
        tap,
    )

    for module in (portal, tap, scs, ssa, sia, datalink, lightcurve, resolve, analysis,
                   registry, seedapi):
        module.register(app)
