"""The metadata database: SQLite (embedded default) or MySQL/MariaDB.

``make_engine`` opens it with the settings every part of SKVO relies on
(SQLite: WAL, foreign keys, the ADQL math functions; MySQL: utf8mb4, UTC);
``initdb`` creates the schema from the table descriptions and writes the
TAP_SCHEMA rows.

MySQL/MariaDB is reached through either DBAPI driver SQLAlchemy knows:
PyMySQL (``mysql+pymysql://``, pure Python) or mysqlclient
(``mysql+mysqldb://`` or ``mysql://``, C, several times faster at decoding
rows).  :func:`streaming_cursor`, :func:`string_literal` and
:func:`is_driver_error` are the only places that tell them apart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from voservice import tables
from voservice.model import AUTH_METADATA

#: pooled connections beyond one per request thread (a request rarely holds two)
POOL_OVERFLOW = 4
#: request threads per process when the settings do not say
DEFAULT_THREADS = 16
_POOL_KEYS = ("pool_size", "max_overflow", "pool_timeout")


def pool_options(threads: int, timeout: float) -> dict[str, Any]:
    """Engine pool settings for a process serving ``threads`` requests at once.

    One connection per thread plus :data:`POOL_OVERFLOW`; a checkout waits at
    most ``timeout`` seconds, then raises ``sqlalchemy.exc.TimeoutError``
    (the app answers 503 with Retry-After).
    """
    return {"pool_size": max(1, threads), "max_overflow": POOL_OVERFLOW,
            "pool_timeout": timeout}


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for the metadata database at ``url``.

    ``kwargs`` go to ``sqlalchemy.create_engine`` (e.g. :func:`pool_options`;
    an in-memory SQLite database, which has no queue pool, ignores those).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:
            for key in _POOL_KEYS:
                kwargs.pop(key, None)
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_setup(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            from adql import sqlite_functions

            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            sqlite_functions.register(dbapi_conn)

        return engine
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", 3600)
        engine = sa.create_engine(parsed, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _mysql_setup(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SET time_zone = '+00:00'")

        return engine
    raise ValueError(
        f"[metadata] url: unsupported database {parsed.get_backend_name()!r}; "
        "use sqlite:///path or mysql+pymysql://user:password@host/db"
    )


def _driver(dbapi_conn: Any) -> str:
    """``sqlite3``, ``pymysql`` or ``MySQLdb``: the module of a DBAPI connection."""
    conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)  # unwrap SQLAlchemy's proxy
    return type(conn).__module__.partition(".")[0]


def streaming_cursor(dbapi_conn: Any) -> Any:
    """A cursor that fetches rows as they are read (MySQL: unbuffered, server-side).

    ``dbapi_conn`` is a DBAPI connection or SQLAlchemy's pooled proxy of one.
    SQLite cursors always step through the result lazily.
    """
    driver = _driver(dbapi_conn)
    if driver == "pymysql":
        import pymysql.cursors

        return dbapi_conn.cursor(pymysql.cursors.SSCursor)
    if driver == "MySQLdb":
        import MySQLdb.cursors

        return dbapi_conn.cursor(MySQLdb.cursors.SSCursor)
    return dbapi_conn.cursor()


def string_literal(dbapi_conn: Any, value: str) -> str:
    """``value`` as a quoted SQL string literal, escaped by the MySQL driver."""
    conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)
    if _driver(conn) == "MySQLdb":
        return conn.literal(value).decode(getattr(conn, "encoding", "utf-8"))
    return conn.escape(value)


def is_driver_error(exc: BaseException) -> bool:
    """Was ``exc`` raised by the database driver (sqlite3, PyMySQL, mysqlclient)?"""
    return isinstance(exc, sqlite3.Error) or type(exc).__module__.partition(".")[0] in (
        "pymysql", "MySQLdb")


def dialect_name(engine: sa.Engine) -> str:
    """The ADQL translator's dialect for an engine: ``sqlite`` or ``mysql``."""
    return "sqlite" if engine.dialect.name == "sqlite" else "mysql"


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one the table descriptions make."""


def initdb(engine: sa.Engine, upgrade: bool = False) -> None:
    """Create a new archive, or check (``upgrade``: upgrade) an existing one, and
    rewrite TAP_SCHEMA.

    A database without SKVO tables gets every table and is stamped at the newest
    schema revision; an archive of an older schema is upgraded with its data kept
    when ``upgrade`` is set, else refused (:class:`voservice.migrations.SchemaBehind`,
    which says to run ``skvo upgrade``).  Safe to run again: TAP_SCHEMA is replaced in
    one transaction so that it always matches the table descriptions.
    """
    from voservice import migrations

    found = migrations.state(engine)
    if found == "empty":
        tables.METADATA.create_all(engine)
        AUTH_METADATA.create_all(engine)
        migrations.stamp_head(engine)
    elif found in ("behind", "unfinished") and upgrade:
        migrations.upgrade(engine)
    elif found != "current":
        migrations.require_current(engine)
    rows = tables.tap_schema_rows()
    order = list(rows)
    with engine.begin() as conn:
        for name in reversed(order):
            conn.execute(tables.sa_table(name).delete())
        for name in order:
            if rows[name]:
                conn.execute(tables.sa_table(name).insert(), rows[name])
