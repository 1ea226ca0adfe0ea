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
import ipaddress
import math
import secrets
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from voservice.config import Settings
from voservice.model import access_grant, login_failure, skvo_user

ACCESS_RIGHTS = ("open", "on_demand", "restricted")
_PBKDF2_ROUNDS = 200_000


@dataclass(frozen=True)
class Principal:
    """The user a request acts for (anonymous when ``name`` is None)."""

    name: str | None = None
    sources: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    #: the account's id (``skvo_user.user_id``); a new account that reuses a
    #: removed account's name gets another id, so it owns none of its jobs
    user_id: int | None = None

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


def _pbkdf2(password: str, salt: str, rounds: int) -> bytes:
    """The one place passwords are hashed (tests count its calls)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)


def hash_password(password: str) -> str:
    """PBKDF2-SHA256 hash in the form ``pbkdf2_sha256$rounds$salt$hash``."""
    salt = secrets.token_hex(16)
    digest = _pbkdf2(password, salt, _PBKDF2_ROUNDS)
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
    try:
        count = int(rounds)
    except ValueError:
        return False
    return hmac.compare_digest(_pbkdf2(password, salt, count).hex(), digest)


def hash_token(token: str) -> str:
    """Tokens are random, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


def _principal_for(conn: sa.Connection, row: sa.Row) -> Principal:
    sources = conn.execute(
        sa.select(access_grant.c.source).where(access_grant.c.user_id == row.user_id)
    ).scalars()
    return Principal(name=row.name, sources=frozenset(sources), admin=bool(row.is_admin),
                     user_id=int(row.user_id))


# --------------------------------------------------------------------------
# Authentication
#
# Basic passwords are PBKDF2 hashes (~0.1 s each, by design).  Clients such as
# pyvo send the header on every request, so a verified header is remembered
# per process -- but only the hashing is skipped: every request re-reads the
# account's row and grants (one indexed query), so ``skvo user revoke``,
# ``remove`` and ``passwd`` take effect on the next request in every worker
# and on every host.  Failed logins are counted in ``skvo_login_failure``
# (shared by all workers and hosts) per account name and per client address;
# past a threshold the key is refused with 429 for a doubling backoff, before
# the cache and any hashing.  An unknown name costs the same PBKDF2 as a known
# one.


@dataclass(frozen=True)
class LoginPolicy:
    """Throttling of failed logins (``[server] login_*``; 0 failures = off)."""

    #: failed logins of one account name before the backoff starts
    name_failures: int = 5
    #: failed logins from one client address before the backoff starts
    address_failures: int = 50
    #: longest backoff, seconds (it doubles from 1 s with every further failure)
    backoff_max: float = 300.0
    #: failures are forgotten when a key had none for this many seconds
    window: float = 900.0

    def backoff(self, failures: int, threshold: int) -> float:
        """Seconds a key is refused after its ``failures``-th failure (0: not refused)."""
        if threshold <= 0 or failures < threshold:
            return 0.0
        return float(min(self.backoff_max, 2.0 ** min(failures - threshold, 30)))


LOGIN_POLICY = LoginPolicy()


def login_policy(settings: Settings) -> LoginPolicy:
    """The throttling policy of ``[server] login_failures_per_*`` and ``login_backoff_max``."""
    return LoginPolicy(
        name_failures=int(settings.get("server", "login_failures_per_name")),
        address_failures=int(settings.get("server", "login_failures_per_address")),
        backoff_max=float(settings.get("server", "login_backoff_max")),
    )


class Throttled(Exception):
    """Too many failed logins for the name or address: answer 429 + Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s")
        self.retry_after = retry_after


#: verified Basic credentials: sha256(engine, header) -> (user_id, password_hash, expiry)
_VERIFIED: dict[str, tuple[int, str, float]] = {}
VERIFIED_CACHE_SECONDS = 600.0
_VERIFIED_MAX = 1000
_DUMMY_HASH: list[str] = []
_FAILURES_SEEN = [0]


def _dummy_hash() -> str:
    """A hash of the same cost as real ones, checked for unknown names."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_hex(16)))
    return _DUMMY_HASH[0]


def _account(conn: sa.Connection, where: sa.ColumnElement[bool]
             ) -> tuple[sa.Row, Principal] | None:
    """An account's row and principal in one query (the row and its grants)."""
    rows = conn.execute(
        sa.select(skvo_user.c.user_id, skvo_user.c.name, skvo_user.c.password_hash,
                  skvo_user.c.is_admin, access_grant.c.source)
        .select_from(skvo_user.outerjoin(access_grant,
                                         access_grant.c.user_id == skvo_user.c.user_id))
        .where(where)
    ).all()
    if not rows:
        return None
    first = rows[0]
    sources = frozenset(r.source for r in rows if r.source is not None)
    return first, Principal(name=first.name, sources=sources, admin=bool(first.is_admin),
                            user_id=int(first.user_id))


def _name_key(name: str) -> str:
    return "name:" + hashlib.sha256(name.encode()).hexdigest()


def _throttle_keys(policy: LoginPolicy, name: str | None, address: str | None
                   ) -> dict[str, int]:
    """Throttle key -> threshold of a login attempt."""
    keys: dict[str, int] = {}
    if name is not None and policy.name_failures > 0:
        keys[_name_key(name)] = policy.name_failures
    if address and policy.address_failures > 0:
        keys["addr:" + _client_net(address)] = policy.address_failures
    return keys


def _client_net(address: str) -> str:
    """An IPv4 address, or the /64 of an IPv6 one (a host usually has a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:70]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _check_throttle(engine: sa.Engine, keys: dict[str, int], now: float) -> set[str]:
    """Raise :class:`Throttled` when a key is blocked; return the keys with failures."""
    if not keys:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(login_failure.c.throttle_key, login_failure.c.blocked_until)
            .where(login_failure.c.throttle_key.in_(sorted(keys)))
        ).all()
    blocked = max((r.blocked_until for r in rows), default=0.0)
    if blocked > now:
        raise Throttled(max(1, math.ceil(blocked - now)))
    return {r.throttle_key for r in rows}


def _record_failure(engine: sa.Engine, keys: dict[str, int], policy: LoginPolicy,
                    now: float) -> None:
    """Count one failed login for each key, atomically, and set its backoff."""
    table = login_failure
    for key, threshold in sorted(keys.items()):
        for _attempt in range(3):
            try:
                with engine.begin() as conn:
                    bumped = conn.execute(
                        table.update().where(table.c.throttle_key == key).values(
                            failures=sa.case(
                                (table.c.last_failure < now - policy.window, 1),
                                else_=table.c.failures + 1),
                            last_failure=now)
                    ).rowcount
                    if not bumped:
                        conn.execute(table.insert().values(
                            throttle_key=key, failures=1, last_failure=now, blocked_until=0.0))
                    failures = conn.execute(
                        sa.select(table.c.failures).where(table.c.throttle_key == key)
                    ).scalar_one()
                    wait = policy.backoff(int(failures), threshold)
                    if wait:
                        conn.execute(table.update().where(
                            table.c.throttle_key == key, table.c.blocked_until < now + wait
                        ).values(blocked_until=now + wait))
                break
            except sa.exc.IntegrityError:  # a parallel first failure inserted the row
                continue
    _FAILURES_SEEN[0] += 1
    if _FAILURES_SEEN[0] % 64 == 1:  # now and then forget keys neither blocked nor recent
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.last_failure < now - policy.window,
                                              table.c.blocked_until < now))


def _forget_failures(engine: sa.Engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(login_failure.delete().where(login_failure.c.throttle_key == key))


def prepare_authentication(engine: sa.Engine) -> None:
    """Make the dummy hash and create ``skvo_login_failure`` if an older SKVO made the DB."""
    _dummy_hash()
    try:
        login_failure.create(engine, checkfirst=True)
    except sa.exc.DBAPIError:  # another worker created it at the same moment
        if not sa.inspect(engine).has_table(login_failure.name):
            raise


def authenticate(engine: sa.Engine, authorization: str | None, address: str | None = None,
                 *, write_engine: sa.Engine | None = None,
                 policy: LoginPolicy = LOGIN_POLICY) -> Principal | None:
    """The principal of an ``Authorization`` header sent from ``address``.

    Returns ANONYMOUS without a header and None for credentials that do not
    check out (the caller answers 401); raises :class:`Throttled` when the
    account name or the address has failed too often (the caller answers
    429).  ``write_engine`` (default ``engine``) holds the failure counters.
    """
    if not authorization:
        return ANONYMOUS
    counters = write_engine or engine
    scheme, _, value = authorization.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    now = time.time()
    if scheme == "bearer":
        keys = _throttle_keys(policy, None, address)
        _check_throttle(counters, keys, now)
        with engine.connect() as conn:
            found = _account(conn, skvo_user.c.token_hash == hash_token(value))
        if found is None:
            _record_failure(counters, keys, policy, now)
            return None
        return found[1]
    if scheme != "basic":
        return None
    try:
        name, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # throttled before the cache too, else a blocked guesser would still learn
    # whether a guess equals the verified header of a logged-in user
    keys = _throttle_keys(policy, name, address)
    seen = _check_throttle(counters, keys, now)
    cache_key = hashlib.sha256(f"{id(engine)}:{authorization}".encode()).hexdigest()
    cached = _VERIFIED.get(cache_key)
    if cached is not None and cached[2] > time.monotonic():
        with engine.connect() as conn:
            found = _account(conn, skvo_user.c.user_id == cached[0])
        if found is not None and found[0].password_hash == cached[1] and found[0].name == name:
            return found[1]
        _VERIFIED.pop(cache_key, None)  # removed, renamed or a new password
    with engine.connect() as conn:
        found = _account(conn, skvo_user.c.name == name)
    stored = found[0].password_hash if found is not None else None
    matches = check_password(password, stored or _dummy_hash())
    if found is None or not stored or not matches:
        _record_failure(counters, keys, policy, now)
        return None
    name_key = _name_key(name)
    if name_key in seen:
        _forget_failures(counters, name_key)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[cache_key] = (found[1].user_id or 0, stored,
                            time.monotonic() + VERIFIED_CACHE_SECONDS)
    return found[1]


def principal_by_id(engine: sa.Engine, user_id: int) -> Principal | None:
    """The principal of an account by id, None when that account is gone.

    An async job acts for the account that created it (by id, so a new
    account that reuses a removed account's name is somebody else).
    """
    with engine.connect() as conn:
        row = conn.execute(sa.select(skvo_user).where(skvo_user.c.user_id == user_id)).first()
        if row is None:
            return None
        return _principal_for(conn, row)
