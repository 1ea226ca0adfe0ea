"""Run an ADQL query for TAP: parameters -> translated SQL -> streamed table.

Shared by ``/tap/sync`` and the async job runner.  Errors a user can fix
raise :class:`UsageError` (bad parameters) or :class:`QueryError` (bad ADQL,
a query that ran too long) with a message a person understands; database
messages, SQL and stack traces are logged, never shown.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adql
from adql import sqlite_functions
from adql.translate import ERROR_TAG
from voservice.access import Principal
from voservice.catalog import adql_schema
from voservice.errors import UsageError
from voservice.protocols import dali
from voservice.stores.metadata import is_driver_error, streaming_cursor
from voservice.streams import Guarded, overflow_trailer
from voservice.upload import UploadedTable, drop_uploads, load_uploads
from voservice.votable import Field, Info, resolve_format, write_table

log = logging.getLogger(__name__)

#: LANG values accepted, with the ADQL version each means
LANGUAGES = {"ADQL": "2.1", "ADQL-2.0": "2.0", "ADQL-2.1": "2.1"}
FETCH_ROWS = 10_000
TAP_STANDARD_ID = "ivo://ivoa.net/std/TAP"


class QueryError(Exception):
    """The query could not be run; the message says why (no database text)."""


@dataclass
class TapResult:
    """A result ready to stream: its MIME type and its bytes."""

    mime: str
    chunks: Iterator[bytes]


def field_of(column: adql.OutputColumn) -> Field:
    """The VOTable FIELD of a result column."""
    return Field(
        name=column.name,
        datatype=column.datatype,
        arraysize=column.arraysize,
        xtype=column.xtype,
        unit=column.unit,
        ucd=column.ucd,
        utype=column.utype,
        description=column.description,
    )


def run_tap_query(
    svc: Any,
    principal: Principal,
    params: Mapping[str, Sequence[str]],
    files: Mapping[str, bytes | Path] | None = None,
    *,
    timeout: float | None,
    maxrec_default: int,
    maxrec_hard: int,
) -> TapResult:
    """Check the parameters, translate the ADQL and return the streaming result.

    Everything that can be checked before the first byte is checked here
    (raising UsageError or QueryError); the database runs when the returned
    chunks are consumed.
    """
    request = dali.single(params, "REQUEST")
    if request is not None and request.lower() != "doquery":
        raise UsageError(f"REQUEST={request!r}: this service only knows REQUEST=doQuery")
    lang = dali.single(params, "LANG")
    if lang is None:
        raise UsageError("LANG is missing: use LANG=ADQL")
    version = LANGUAGES.get(lang.upper())
    if version is None:
        raise UsageError(f"LANG={lang!r}: supported are {', '.join(LANGUAGES)}")
    text = dali.single(params, "QUERY")
    if not text or not text.strip():
        raise UsageError("QUERY is missing: give an ADQL query")
    maxrec = dali.maxrec(params, maxrec_default, maxrec_hard)
    fmt_text = dali.single(params, "RESPONSEFORMAT") or dali.single(params, "FORMAT")
    try:
        fmt, mime = resolve_format(fmt_text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    runid = dali.single(params, "RUNID")
    if runid is not None and len(runid) > 64:
        raise UsageError("RUNID is longer than 64 characters")
    try:
        query = adql.parse(text, version=version)
    except adql.ADQLError as exc:
        raise QueryError(f"ADQL error: {exc}") from None

    settings = svc.settings
    uploads = load_uploads(
        params.get("UPLOAD", ()),
        files or {},
        max_rows=settings.get("vo", "upload_max_rows"),
        max_bytes=settings.get("vo", "upload_max_bytes"),
        max_columns=settings.get("vo", "upload_max_columns"),
        allow_hosts=settings.get("vo", "upload_allow_hosts"),
        fetch_timeout=settings.get("vo", "upload_fetch_timeout"),
    )
    schema = adql_schema(
        principal, svc.dialect, svc.base_url, svc.authority,
        tuple(u.adql_table(svc.dialect) for u in uploads),
    )
    try:
        translation = adql.translate(query, schema, svc.dialect, limit=maxrec + 1)
    except adql.ADQLError as exc:
        raise QueryError(f"ADQL error: {exc}") from None

    fields = [field_of(c) for c in translation.columns]
    infos = [
        Info("QUERY", text.strip()),
        Info("SERVICE_PROTOCOL", "1.1", "TAP"),
        Info("standardID", TAP_STANDARD_ID),
        Info("REQUEST_DATE", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        Info("LANG", lang),
        Info("MAXREC", str(maxrec)),
    ]
    if runid is not None:
        infos.append(Info("RUNID", runid))
    state = {"overflow": False}

    trailer = overflow_trailer(state, maxrec)
    rows = _rows(svc, translation, uploads, maxrec, timeout, state)
    # run the query now: errors at execution (timeouts, database errors) become
    # a proper error response instead of a late INFO in a streamed document
    first = next(rows, None)
    # closing the result (e.g. the client left) closes the rows: connection,
    # cursor and upload tables go back even if no byte was written
    source = Guarded(itertools.chain([first], rows) if first is not None else rows,
                          rows.close)
    try:
        chunks = write_table(fields, source, format=fmt, infos=infos, trailer=trailer,
                             catch=(QueryError,), value_errors=True)
    except BaseException:
        source.close()
        raise
    return TapResult(mime=mime, chunks=chunks)


def _widths(columns: Sequence[adql.OutputColumn]) -> list[int] | None:
    widths = [c.sql_width for c in columns]
    return widths if any(w != 1 for w in widths) else None


def _regroup(rows: list[tuple[Any, ...]], widths: list[int]) -> list[tuple[Any, ...]]:
    """Join the SQL columns of geometry values into DALI arrays."""
    out = []
    for row in rows:
        values: list[Any] = []
        i = 0
        for w in widths:
            if w == 1:
                values.append(row[i])
            else:
                part = row[i : i + w]
                values.append(None if any(v is None for v in part) else list(part))
            i += w
        out.append(tuple(values))
    return out


def _rows(
    svc: Any,
    translation: adql.Translation,
    uploads: list[UploadedTable],
    maxrec: int,
    timeout: float | None,
    state: dict[str, bool],
) -> Iterator[list[tuple[Any, ...]]]:
    """Execute the SQL and yield row chunks (at most MAXREC rows)."""
    widths = _widths(translation.columns)
    raw = svc.engine.raw_connection()
    sqlite = svc.engine.dialect.name == "sqlite"
    complete = False
    cursor = None
    running = False
    try:
        sql = translation.sql
        if sqlite:
            deadline = time.monotonic() + timeout if timeout else None
            if deadline is not None:
                raw.driver_connection.set_progress_handler(
                    lambda: int(time.monotonic() > deadline), 20_000
                )
        elif timeout:
            sql = f"SET STATEMENT max_statement_time={float(timeout):.3f} FOR {sql}"
        cursor = streaming_cursor(raw)
        try:
            drop_uploads(raw, uploads, svc.dialect)
            for upload in uploads:
                upload.create(raw, svc.dialect)
            running = True
            sqlite_functions.take_error()  # a stale message is not this query's
            cursor.execute(sql)
            sent = 0
            while True:
                rows = cursor.fetchmany(FETCH_ROWS)
                if not sqlite and len(rows) < FETCH_ROWS:  # the end: its warnings
                    running = False
                    _check_warnings(raw, cursor, translation)
                if not rows:
                    break
                if len(rows) > maxrec - sent:  # the LIMIT lets one row past MAXREC
                    state["overflow"] = True
                    rows = rows[: maxrec - sent]
                if rows:
                    sent += len(rows)
                    yield _regroup(list(rows), widths) if widths else rows
                if state["overflow"]:
                    break
            if maxrec == 0:
                state["overflow"] = True  # DALI: MAXREC=0 answers metadata, flagged
            complete = True
        except QueryError:
            raise
        except Exception as exc:
            running = False  # the database ended the statement itself
            raise _query_error(exc, timeout) from None
    finally:
        if running and not complete and not sqlite:
            kill_statement(svc.engine, raw)
        _close(raw, cursor, uploads, svc.dialect, sqlite, complete)


def kill_statement(engine: Any, raw: Any) -> None:
    """Stop the statement a MySQL connection is running (KILL QUERY).

    A statement left behind (the job was aborted, the client went away) would
    otherwise keep the database busy until its ``max_statement_time``: closing
    the socket does not stop it.  The KILL goes over a connection of its own,
    outside the pool (which may be exhausted); an account may kill its own
    threads without any privilege beyond SELECT.
    """
    try:
        thread_id = raw.driver_connection.thread_id()
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        cparams = {**cparams, "connect_timeout": 5}
        killer = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        try:
            with contextlib.closing(killer.cursor()) as cursor:
                cursor.execute(f"KILL QUERY {int(thread_id)}")
        finally:
            killer.close()
    except Exception:  # the statement ends at its max_statement_time anyway
        log.warning("could not stop an abandoned statement", exc_info=True)


def _warning_count(cursor: Any) -> int:
    """The warnings of the statement an unbuffered MySQL cursor has read to its end."""
    result = getattr(cursor, "_result", None)  # PyMySQL
    if result is not None and hasattr(result, "warning_count"):
        return int(result.warning_count or 0)
    count = getattr(getattr(cursor, "connection", None), "warning_count", None)  # mysqlclient
    return int(count()) if callable(count) else 0


def _check_warnings(raw: Any, cursor: Any, translation: adql.Translation) -> None:
    """MariaDB answers x / 0, SQRT(-1), CAST('abc' AS INTEGER) and the like with NULL
    (or 0) and a warning where SQL raises an error: raise it (a QueryError naming the
    problem; DALI's QUERY_STATUS=ERROR when rows went out already)."""
    if not _warning_count(cursor):
        return
    with contextlib.closing(raw.cursor()) as show:
        show.execute("SHOW WARNINGS")
        warnings = show.fetchall()
    message = warning_error(warnings, translation.domain, translation.casts)
    if message is not None:
        raise QueryError(f"query error: {message}")


_TRUNCATED = re.compile(r"Truncated incorrect (\w+) value: '(.*)'\Z", re.S)
_DATETIME = re.compile(r"Incorrect datetime value: '(.*)'\Z", re.S)
_CAST_NAMES = {"INTEGER": "INTEGER", "DOUBLE": "DOUBLE PRECISION", "DECIMAL": "a number"}


def warning_error(warnings: Sequence[tuple[Any, ...]], domain: Sequence[str],
                  casts: bool = True) -> str | None:
    """The error a MariaDB statement's warnings (level, code, text) stand for, in words
    (no database text but the offending value), or None if they are harmless.  Without
    ``casts`` (adql.Translation.casts) a truncation warning is MariaDB's own."""
    texts = [(str(level), int(code), str(text)) for level, code, text in warnings]
    for _level, _code, text in texts:
        if ERROR_TAG in text:  # adql.translate's own checks
            return text.split(ERROR_TAG, 1)[1].rstrip("'")
    for level, code, text in texts:
        if code == 1365:  # every domain error: "Division by 0"
            if len(domain) == 1:
                return domain[0]
            if not domain:
                return "a function argument outside its domain"
            return ("division by zero or a function argument outside its domain (one of: "
                    + "; ".join(domain) + ")")
        if code in (1292, 1366) and level == "Warning" and casts:
            m = _TRUNCATED.match(text)
            if m:
                target = _CAST_NAMES.get(m.group(1), m.group(1))
                return f"invalid input for CAST to {target}: '{m.group(2)[:40]}'"
            m = _DATETIME.match(text)
            if m:
                return f"invalid input for CAST to TIMESTAMP: '{m.group(1)[:40]}'"
        if code == 1916:
            return "value out of range for BIGINT"
        if code == 1264:
            return "numeric value out of range"
    return None


_RANGE_FUNCTIONS = {"pow": "POWER (zero raised to a negative power, a negative number raised "
                           "to a non-integer power, or an overflow)",
                    "exp": "EXP (an overflow)", "cot": "COT (of zero)"}


def _query_error(exc: Exception, timeout: float | None) -> QueryError:
    message = sqlite_functions.take_error()
    if message is not None and isinstance(exc, sqlite3.Error):
        return QueryError(f"query error: {message}")
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code == 1690 and is_driver_error(exc):  # MariaDB: "DOUBLE value is out of range"
        m = re.search(r"in '(\w+)\(", str(exc.args[1]) if len(exc.args) > 1 else "")
        where = _RANGE_FUNCTIONS.get(m.group(1).lower() if m else "")
        # an arithmetic overflow in the words SQLite's check uses
        return QueryError("query error: " + (f"numeric value out of range in {where}"
                                             if where else sqlite_functions.OVERFLOW))
    text = str(exc).lower()
    if "interrupted" in text or "max_statement_time" in text:
        return QueryError(
            f"the query ran longer than the allowed {timeout:g} s and was stopped; "
            "narrow it (e.g. a smaller cone or TOP) or run it as an async job"
        )
    log.warning("query failed in the database: %r", exc)
    if is_driver_error(exc):
        return QueryError(
            "the database could not run the query (the detail is logged); "
            "check the types of the operands and the functions used"
        )
    log.exception("unexpected error while running a query")
    return QueryError("the service failed while running the query (the error is logged)")


def _close(raw: Any, cursor: Any, uploads: list[UploadedTable], dialect: str,
           sqlite: bool, complete: bool) -> None:
    """Return the connection to the pool clean, or discard it."""
    try:
        if sqlite:
            raw.driver_connection.set_progress_handler(None, 0)
        if not complete and not sqlite:
            raw.invalidate()  # an unbuffered MySQL cursor may still hold rows
            return
        if cursor is not None:
            cursor.close()
        drop_uploads(raw, uploads, dialect)
        raw.rollback()
        raw.close()
    except Exception:  # the connection is broken: drop it
        log.debug("discarding a connection after a query", exc_info=True)
        with contextlib.suppress(Exception):
            raw.invalidate()
