"""Light-curve points in the metadata database (the embedded default).

One table ``ts_point`` keyed by (series_id, time_us): SQLite ``WITHOUT ROWID``
so the points of a series lie together in time order; exact float64 values;
times as int64 Unix microseconds (pre-1970 times are negative, fine).  The
hot path uses the DBAPI's ``executemany`` directly, no ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import sqlalchemy as sa

from voservice.stores.metadata import streaming_cursor, string_literal
from voservice.stores.timeseries.base import Points, SeriesRef, StoreError, TimeSeriesStore

POINT_METADATA = sa.MetaData()

ts_point = sa.Table(
    "ts_point",
    POINT_METADATA,
    sa.Column("series_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("time_us", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("magnitude", sa.Double, nullable=False),
    sa.Column("magnitude_error", sa.Double, nullable=False),
    sa.Column("exposure", sa.Double, nullable=False),
    sa.Column("flux_calibration", sa.String(8), nullable=False),
    sa.Column("flux_calibration_level", sa.Integer, nullable=False),
    sa.Column("timeframe_reference_position", sa.String(16), nullable=False),
    sqlite_with_rowid=False,
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

_COLUMNS = [c.name for c in ts_point.columns]
_VALUE_COLUMNS = _COLUMNS[1:]
#: a fetched row as numpy sees it (one structured array per chunk: the fastest
#: way from DBAPI tuples to columns)
_ROW_DTYPE = np.dtype([
    ("time_us", "i8"), ("magnitude", "f8"), ("magnitude_error", "f8"), ("exposure", "f8"),
    ("flux_calibration", "O"), ("flux_calibration_level", "i8"),
    ("timeframe_reference_position", "O"),
])


class SqlTimeSeriesStore(TimeSeriesStore):
    """Points in a table of the metadata database."""

    def __init__(self, engine: sa.Engine, batch_size: int = 10_000) -> None:
        self.engine = engine
        self.batch_size = max(batch_size, 1000)
        self._mark = "?" if engine.dialect.name == "sqlite" else "%s"
        marks = ", ".join([self._mark] * len(_COLUMNS))
        self._insert = f"INSERT INTO ts_point ({', '.join(_COLUMNS)}) VALUES ({marks})"

    def create_schema(self) -> None:
        """Create the points table if it is missing."""
        POINT_METADATA.create_all(self.engine)

    @contextmanager
    def _transaction(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
            return
        with self.engine.begin() as own:
            yield own

    def put(self, ref: SeriesRef, points: Points, conn: sa.Connection | None = None) -> None:
        """Replace the points of a series in one transaction.

        With ``conn`` (a connection inside a transaction) the points become
        part of the caller's transaction: the uploader commits metadata and
        points together.
        """
        if not np.all(np.isfinite(points.magnitude)) or not np.all(
            np.isfinite(points.magnitude_error)
        ):
            raise StoreError(f"series {ref.series_id}: magnitudes must be finite numbers")
        if len(np.unique(points.time_us)) != len(points):
            raise StoreError(f"series {ref.series_id}: two points share a timestamp")
        if not np.all(np.isfinite(points.exposure)):
            raise StoreError(f"series {ref.series_id}: exposures must be finite numbers")
        columns = [getattr(points, name).tolist() for name in _VALUE_COLUMNS]
        series = [ref.series_id] * len(points)
        rows = list(zip(series, *columns, strict=True))
        try:
            with self._transaction(conn) as c:
                cursor = c.connection.cursor()
                try:
                    cursor.execute(f"DELETE FROM ts_point WHERE series_id = {self._mark}",
                                   (ref.series_id,))
                    for start in range(0, len(rows), self.batch_size):
                        batch = rows[start : start + self.batch_size]
                        if self._mark == "?":
                            cursor.executemany(self._insert, batch)
                        else:
                            cursor.execute(self._mysql_insert(c.connection, batch))
                finally:
                    cursor.close()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"series {ref.series_id}: the points could not be stored") from exc
        except Exception as exc:  # DBAPI errors raised on the raw cursor
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"series {ref.series_id}: the points could not be stored") from exc

    def _mysql_insert(self, dbapi_conn: Any, rows: list[tuple[Any, ...]]) -> str:
        """One multi-row INSERT with the values written out.

        The drivers' executemany escape every value one by one; here numbers are
        formatted directly (``repr`` of a float round-trips exactly) and the
        few distinct strings are escaped once each.
        """
        escaped: dict[str, str] = {}

        def text(value: str) -> str:
            if value not in escaped:
                escaped[value] = string_literal(dbapi_conn, str(value))
            return escaped[value]

        values = ",".join(
            f"({int(sid)},{int(t)},{m!r},{e!r},{x!r},{text(fc)},{int(lvl)},{text(rp)})"
            for sid, t, m, e, x, fc, lvl, rp in rows
        )
        return f"{self._insert.split(' VALUES ')[0]} VALUES {values}"

    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The points of a series in time order, ``chunk_size`` at a time."""
        where = [f"series_id = {self._mark}"]
        args: list[Any] = [ref.series_id]
        if start_us is not None:
            where.append(f"time_us >= {self._mark}")
            args.append(int(start_us))
        if end_us is not None:
            where.append(f"time_us <= {self._mark}")
            args.append(int(end_us))
        sql = (f"SELECT {', '.join(_VALUE_COLUMNS)} FROM ts_point "
               f"WHERE {' AND '.join(where)} ORDER BY time_us")
        with self.engine.connect() as conn:
            cursor = streaming_cursor(conn.connection)
            try:
                cursor.execute(sql, args)
                while True:
                    rows = cursor.fetchmany(chunk_size)
                    if not rows:
                        break
                    # a list: numpy would take a tuple of rows (mysqlclient) as one record
                    table = np.array(list(rows), dtype=_ROW_DTYPE)
                    yield Points(*(table[name] for name in _VALUE_COLUMNS))
            finally:
                cursor.close()

    def count(self, ref: SeriesRef) -> int:
        """Number of points of a series."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(ts_point)
                .where(ts_point.c.series_id == ref.series_id)
            ).scalar_one()

    def delete(self, ref: SeriesRef, conn: sa.Connection | None = None) -> None:
        """Remove the points of a series."""
        with self._transaction(conn) as c:
            c.execute(ts_point.delete().where(ts_point.c.series_id == ref.series_id))
