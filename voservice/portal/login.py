"""Browser sessions: log in, log out, CSRF tokens.

Clients keep HTTP Basic and bearer tokens; a browser logs in once through ``/login``
with the same accounts, checks and throttling (:func:`voservice.access.authenticate`)
and then carries a session cookie:

- the cookie is Flask's session, signed (HMAC) with a key generated once and kept in
  the metadata database (``skvo_web_secret``), so every worker process, every host of
  one archive and every restart share it;
- it holds a random session id and the CSRF token; the server keeps only the id's
  SHA-256 (``skvo_web_session``) with the account and the expiry, so logging out (or
  the 12 h expiry, or ``skvo user passwd``/``remove``) ends the session also for a
  copy of the cookie;
- HttpOnly, SameSite=Lax, Secure when the request came over HTTPS or ``public_url``
  is ``https://``;
- a request that changes state with a session (any method but GET/HEAD/OPTIONS) must
  carry the session's CSRF token (form field ``_csrf_token`` or header
  ``X-CSRF-Token``); without it the session is ignored (``/login`` and ``/logout``
  refuse with 400).

The principal of a session comes from :func:`session_principal`, which the
application's ``before_request`` calls when no ``Authorization`` header is sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    g,
    redirect,
    render_template,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface

from voservice import tables
from voservice.access import (
    ANONYMOUS,
    Principal,
    Throttled,
    authenticate,
    login_policy,
    principal_by_id,
)
from voservice.context import principal, services
from voservice.model import skvo_user

bp = Blueprint("login", __name__)

COOKIE = "skvo_session"
#: a session ends this long after the login
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "_csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

WEB_METADATA = sa.MetaData()

#: browser sessions: SHA-256 of the random id in the cookie -> account and expiry
web_session = sa.Table(
    "skvo_web_session",
    WEB_METADATA,
    sa.Column("sid_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    sa.Column("password_hash", sa.String(255), nullable=True),  # a new password ends it
    sa.Column("created", sa.Double, nullable=False),  # Unix time, seconds
    sa.Column("expires", sa.Double, nullable=False),
    **tables.MYSQL_TABLE_OPTIONS,
)

#: the key that signs session cookies, generated once for all workers and hosts
web_secret = sa.Table(
    "skvo_web_secret",
    WEB_METADATA,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
    **tables.MYSQL_TABLE_OPTIONS,
)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure when the request is HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure over HTTPS, or when the public URL is https (a TLS proxy in front)."""
        return request.is_secure or services().base_url.startswith("https://")


def secret_key(engine: sa.Engine) -> str:
    """The signing key stored in the database (created by the first process to ask)."""
    for _attempt in range(3):
        with engine.connect() as conn:
            value = conn.execute(sa.select(web_secret.c.value).where(
                web_secret.c.name == "session")).scalar()
        if value:
            return str(value)
        try:
            with engine.begin() as conn:
                conn.execute(web_secret.insert().values(name="session",
                                                        value=secrets.token_hex(32)))
        except sa.exc.IntegrityError:  # another worker stored one at the same moment
            continue
    raise RuntimeError("no session key could be stored in the metadata database")


def _create_tables(engine: sa.Engine) -> None:
    for table in (web_session, web_secret):
        try:
            table.create(engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another worker created it at the same moment
            if not sa.inspect(engine).has_table(table.name):
                raise


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _has_cookie() -> bool:
    """Whether the request carries a session cookie (only then is ``session`` read, so
    answers to clients get no ``Vary: Cookie``)."""
    return COOKIE in request.cookies


def csrf_token() -> str:
    """The session's CSRF token (made, and the cookie set, on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok() -> bool:
    """Does the request carry the session's CSRF token?"""
    if not _has_cookie():
        return False
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER) or (
        request.form.get(CSRF_FIELD) if request.method == "POST" else None)
    return bool(expected and sent) and hmac.compare_digest(str(expected).encode(),
                                                           str(sent).encode())


def session_principal() -> Principal:
    """The principal of the request's session cookie (ANONYMOUS without a valid one)."""
    if not _has_cookie() or request.endpoint == "static":  # no query per stylesheet
        return ANONYMOUS
    sid = session.get("sid")
    if not sid:
        return ANONYMOUS
    if request.method not in SAFE_METHODS and not csrf_ok():
        return ANONYMOUS  # a cross-site form must not act for the logged-in user
    engine = services().writer()
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(web_session.c.user_id, web_session.c.password_hash,
                      skvo_user.c.password_hash.label("current"))
            .select_from(web_session.join(skvo_user,
                                          skvo_user.c.user_id == web_session.c.user_id))
            .where(web_session.c.sid_hash == _sid_hash(str(sid)),
                   web_session.c.expires > time.time())).first()
    if row is None or row.password_hash != row.current:
        return ANONYMOUS
    who = principal_by_id(services().engine, int(row.user_id))
    if who is None:
        return ANONYMOUS
    g.session_login = True
    return who


def _start_session(who: Principal) -> None:
    """Store a new session for the account and put its id into the cookie."""
    engine = services().writer()
    sid = secrets.token_urlsafe(32)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(web_session.delete().where(web_session.c.expires < now))
        current = conn.execute(sa.select(skvo_user.c.password_hash).where(
            skvo_user.c.user_id == who.user_id)).scalar()
        conn.execute(web_session.insert().values(
            sid_hash=_sid_hash(sid), user_id=who.user_id, password_hash=current,
            created=now, expires=now + SESSION_SECONDS))
    session.clear()
    session.permanent = True
    session["sid"] = sid
    session["csrf"] = secrets.token_urlsafe(32)


def _end_session() -> None:
    sid = session.get("sid") if _has_cookie() else None
    if sid:
        with services().writer().begin() as conn:
            conn.execute(web_session.delete().where(
                web_session.c.sid_hash == _sid_hash(str(sid))))
    session.clear()


def _next_url(value: str | None) -> str:
    """Where to go after logging in or out: a local path only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def _page(status: int = 200, **values: Any) -> Response:
    values.setdefault("next", _next_url(request.values.get("next")))
    body = render_template("login.html", site_title=services().settings.get("vo", "title"),
                           **values)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login")
def login_form() -> Response:
    """The login form (or who is logged in)."""
    return _page()


@bp.post("/login")
def login() -> Response:
    """Check the name and password as HTTP Basic does, then start a session."""
    if not csrf_ok():
        return _page(400, error="The form has expired or did not come from this site "
                     "(missing CSRF token). Please try again.")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    if not name or not password or ":" in name:
        return _page(400, error="Give your account name and password.", name=name)
    header = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
    svc = services()
    try:
        who = authenticate(svc.engine, header, request.remote_addr, write_engine=svc.writer(),
                           policy=login_policy(svc.settings))
    except Throttled as exc:
        response = _page(429, error=f"Too many failed logins for this account or address; "
                         f"try again in {exc.retry_after} s.", name=name)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if who is None or who.anonymous:
        return _page(401, error="Unknown account or wrong password.", name=name)
    _start_session(who)
    return redirect(_next_url(request.form.get("next")), 303)


@bp.get("/logout")
def logout_form() -> Response:
    """A page with the logout button (GET never changes state)."""
    return _page(logout=True)


@bp.post("/logout")
def logout() -> Response:
    """End the session (in the database too, so a copy of the cookie stops working)."""
    if not csrf_ok():
        return _page(400, logout=True, error="The form has expired or did not come from "
                     "this site (missing CSRF token). Please try again.")
    _end_session()
    return redirect(_next_url(request.form.get("next")), 303)


def _template_values() -> dict[str, Any]:
    """What every template may use: the visitor and the CSRF token."""
    who = principal()
    here = (request.full_path.rstrip("?") if request.method == "GET"
            and not request.path.startswith(("/login", "/logout")) else "/")
    return {"visitor": None if who.anonymous else who, "here": here,
            "session_login": bool(g.get("session_login")),
            "csrf_token": csrf_token, "csrf_field": CSRF_FIELD}


def register(app: Flask) -> None:
    """Add the blueprint, the signed session cookie and its tables."""
    engine = app.extensions["skvo"].writer()
    _create_tables(engine)
    app.secret_key = secret_key(engine)
    app.session_interface = _SessionInterface()
    app.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_REFRESH_EACH_REQUEST=False,
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=SESSION_SECONDS))
    app.context_processor(_template_values)
    app.register_blueprint(bp)

