"""Who may see what: the one place access rights are decided.

Every observation carries an access right:

- ``open``: metadata and data are public;
- ``on_demand``: metadata are public, points and frames only for users
  granted the observation's source;
- ``restricted``: invisible, metadata too, to all but granted users.

Protocols call :func:`can_see` / :func:`can_download` for single rows and
:func:`visible_clause` for SQL; nothing else decides access.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from voservice.model import access_grant, skvo_user

ACCESS_RIGHTS = ("open", "on_demand", "restricted")
_PBKDF2_ROUNDS = 200_000


@dataclass(frozen=True)
class Principal:
    """The user a request acts for (anonymous when ``name`` is None)."""

    name: str | None = None
    sources: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    @property
    def anonymous(self) -> bool:
        """True for a request without valid credentials."""
        return self.name is None

    @property
    def cache_key(self) -> tuple[bool, frozenset[str]]:
        """What decides visibility: equal keys see the same rows."""
        return (self.admin, self.sources)


ANONYMOUS = Principal()


def can_see(principal: Principal, access: str, source: str) -> bool:
    """May the principal see the metadata of an observation?"""
    return access != "restricted" or principal.admin or source in principal.sources


def can_download(principal: Principal, access: str, source: str) -> bool:
    """May the principal fetch the points and frames of an observation?"""
    return access == "open" or principal.admin or source in principal.sources


def download_denial(principal: Principal) -> tuple[int, str]:
    """HTTP status and message for data the principal may not fetch."""
    if principal.anonymous:
        return 401, "AuthenticationFault: these data are available on demand; log in"
    return 403, f"AuthorizationFault: user {principal.name!r} has no grant for these data"


def visible_clause(principal: Principal, access: sa.ColumnElement, source: sa.ColumnElement
                   ) -> sa.ColumnElement[bool]:
    """SQL condition: the principal may see an observation row."""
    if principal.admin:
        return sa.true()
    visible = access != "restricted"
    if principal.sources:
        visible = sa.or_(visible, source.in_(sorted(principal.sources)))
    return visible


def downloadable_clause(principal: Principal, access: sa.ColumnElement,
                        source: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """SQL condition: the principal may fetch an observation's data."""
    if principal.admin:
        return sa.true()
    ok = access == "open"
    if principal.sources:
        ok = sa.or_(ok, source.in_(sorted(principal.sources)))
    return ok


# --------------------------------------------------------------------------
# Accounts


def hash_password(password: str) -> str:
    """PBKDF2-SHA256 hash in the form ``pbkdf2_sha256$rounds$salt$hash``."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """Compare a password with a stored hash in constant time."""
    if not stored:
        return False
    try:
        scheme, rounds, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(rounds))
    return hmac.compare_digest(candidate.hex(), digest)


def hash_token(token: str) -> str:
    """Tokens are random, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


def _principal_for(conn: sa.Connection, row: sa.Row) -> Principal:
    sources = conn.execute(
        sa.select(access_grant.c.source).where(access_grant.c.user_id == row.user_id)
    ).scalars()
    return Principal(name=row.name, sources=frozenset(sources), admin=bool(row.is_admin))


#: verified Basic credentials: sha256(header) -> (principal, expiry).  PBKDF2
#: costs ~0.1 s by design; clients such as pyvo send the header on every
#: request, so a verified header is trusted for a short while.
_BASIC_CACHE: dict[str, tuple[Principal, float]] = {}
BASIC_CACHE_SECONDS = 30.0


def authenticate(engine: sa.Engine, authorization: str | None) -> Principal | None:
    """The principal of an ``Authorization`` header.

    Returns ANONYMOUS without a header and None for credentials that do not
    check out (the caller answers 401).
    """
    if not authorization:
        return ANONYMOUS
    key = hashlib.sha256(f"{id(engine)}:{authorization}".encode()).hexdigest()
    cached = _BASIC_CACHE.get(key)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    who = _authenticate(engine, authorization)
    if who is not None and authorization.lower().startswith("basic "):
        if len(_BASIC_CACHE) > 1000:
            _BASIC_CACHE.clear()
        _BASIC_CACHE[key] = (who, now + BASIC_CACHE_SECONDS)
    return who


def _authenticate(engine: sa.Engine, authorization: str) -> Principal | None:
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    with engine.connect() as conn:
        if scheme == "basic":
            try:
                name, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            row = conn.execute(sa.select(skvo_user).where(skvo_user.c.name == name)).first()
            if row is None or not check_password(password, row.password_hash):
                return None
            return _principal_for(conn, row)
        if scheme == "bearer":
            row = conn.execute(
                sa.select(skvo_user).where(skvo_user.c.token_hash == hash_token(value))
            ).first()
            if row is None:
                return None
            return _principal_for(conn, row)
    return None


def principal_by_name(engine: sa.Engine, name: str | None) -> Principal:
    """The principal of an account by name (ANONYMOUS for None or a removed user).

    Async jobs run later than the request that made them: they act for their
    owner with the grants the owner has when the job runs.
    """
    if name is None:
        return ANONYMOUS
    with engine.connect() as conn:
        row = conn.execute(sa.select(skvo_user).where(skvo_user.c.name == name)).first()
        if row is None:
            return ANONYMOUS
        return _principal_for(conn, row)
