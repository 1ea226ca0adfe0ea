"""SELECTs streamed to clients as MAXREC-limited chunks of rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from voservice.streams import Guarded, overflow_trailer
from voservice.votable import Info

log = logging.getLogger(__name__)

#: rows fetched from the database at a time
CHUNK = 2000


def limited_rows(
    result: sa.CursorResult[Any],
    maxrec: int,
    convert: Callable[[Sequence[Any]], tuple[Any, ...]],
    close: Callable[[], None],
) -> tuple[Iterator[list[tuple[Any, ...]]], Callable[[], list[Info]]]:
    """Chunks of at most ``maxrec`` converted rows and a trailer flagging overflow.

    ``result`` was executed with LIMIT maxrec+1; ``close`` releases its
    connection once the rows are written, fail, or the chunks are closed (the
    client went away; also before the first chunk was taken).  A failure
    while reading raises :class:`QueryFailed` (the detail is logged).
    """
    state = {"overflow": False}

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        left = maxrec
        try:
            while left > 0:
                rows = result.fetchmany(min(CHUNK, left + 1))
                if not rows:
                    return
                if len(rows) > left:
                    state["overflow"] = True
                    rows = rows[:left]
                left -= len(rows)
                yield [convert(r) for r in rows]
            if result.fetchone() is not None:
                state["overflow"] = True
                result.fetchall()  # nothing is left past LIMIT maxrec+1: the cursor ends cleanly
        except Exception as exc:
            raise read_failure(exc) from None
        finally:
            close()

    return Guarded(chunks(), close), overflow_trailer(state, maxrec)


def read_failure(exc: Exception) -> QueryFailed:
    """A failure while reading rows, for the client (the detail goes to the log)."""
    if isinstance(exc, QueryFailed):
        return exc
    log.error("reading the rows of a query failed", exc_info=exc)
    return QueryFailed("FatalFault: the database query failed while the rows were read; "
                       "the error is logged")


def run_select(engine: sa.Engine, select: sa.Select
               ) -> tuple[sa.CursorResult[Any], Callable[[], None]]:
    """Execute a SELECT on ``engine`` (the query engine); returns the result and its closer.

    The rows are fetched as they are read (MySQL: a server-side cursor), so
    the closer must run: it is idempotent and gives the connection back to
    the pool (MySQL: a result left unread drops the connection rather than
    reading the rest).  Database errors become a :class:`QueryFailed`
    without the database's message (it is logged); a pool timeout
    (``sqlalchemy.exc.TimeoutError``) propagates, answered 503 by the app.
    """
    conn = engine.connect()
    try:
        result = conn.execution_options(stream_results=True).execute(select)
    except sa.exc.SQLAlchemyError:
        conn.close()
        log.exception("query failed")
        raise QueryFailed("FatalFault: the database query failed; the error is logged") from None
    done = False

    def close() -> None:
        nonlocal done
        if done:
            return
        done = True
        try:
            if result.cursor is not None and conn.dialect.name != "sqlite":
                conn.invalidate()  # an unread server-side result: do not drain it
            result.close()
        except Exception:
            log.debug("discarding a connection after a query", exc_info=True)
        finally:
            conn.close()

    return result, close


class QueryFailed(RuntimeError):
    """The database failed to answer (message safe to show clients)."""


def column_compiler(engine: sa.Engine) -> Callable[[sa.ColumnElement[Any]], str]:
    """SQL text of a column in ``engine``'s dialect (for :mod:`adql.geometry`)."""

    def compile_column(column: sa.ColumnElement[Any]) -> str:
        return str(column.compile(dialect=engine.dialect))

    return compile_column


def _nothing() -> None:
    pass


def filtered_rows(
    engine: sa.Engine,
    select: sa.Select,
    keep: Callable[[Any], bool],
    maxrec: int,
    convert: Callable[[Sequence[Any]], tuple[Any, ...]],
) -> tuple[Iterator[list[tuple[Any, ...]]], Callable[[], list[Info]]]:
    """Like :func:`limited_rows`, for rows that must also pass
    ``keep``: the ordered ``select`` is read in pages (LIMIT/OFFSET: maxrec+1 rows,
    then twice as many as before each time) until maxrec+1 rows passed or the rows
    ran out; the first page runs now (QueryFailed before any byte is sent), the
    others as the document is written (a failure then ends it with an ERROR
    status).  The trailer flags OVERFLOW iff more than maxrec rows pass.
    """
    state = {"overflow": False}
    first = run_select(engine, select.limit(maxrec + 1))

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        offset, size, passed = 0, maxrec + 1, 0
        result, close = first
        try:
            while True:
                seen = 0
                while rows := result.fetchmany(CHUNK):
                    seen += len(rows)
                    out = []
                    for r in rows:
                        if not keep(r):
                            continue
                        if passed == maxrec:
                            state["overflow"] = True
                            if out:
                                yield out
                            return
                        passed += 1
                        out.append(convert(r))
                    if out:
                        yield out
                if seen < size:
                    return  # no more candidates
                close()
                close = _nothing
                offset, size = offset + size, 2 * size
                result, close = run_select(engine, select.limit(size).offset(offset))
        except Exception as exc:
            raise read_failure(exc) from None
        finally:
            close()

    return Guarded(chunks(), first[1]), overflow_trailer(state, maxrec)
