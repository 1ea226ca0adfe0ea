"""Light-curve points in the metadata database (the embedded default).

One table ``ts_chunk`` keyed by (series_id, start_us): each row holds up to
:data:`CHUNK_POINTS` consecutive points of a series as one little-endian
record array (time as int64 Unix microseconds, so pre-1970 times are fine;
magnitude, error and exposure as exact float64; the calibration level; the
two text columns as codes into the chunk's ``labels``), with the times of
its first and last point for time windows.  SQLite keeps the table
``WITHOUT ROWID``, so a series' chunks lie together in time order.

Why chunks and not a row per point: a light curve is always read whole or
by time window, never point by point, and a row per point costs the
database and the driver per point and per column.  MariaDB formats every
DOUBLE of a result as text (about 1 us each here), and PyMySQL decodes every
field in Python; SQLite's module builds a tuple per row.  100,000 points
were 7 rows x 100,000 through all of that; now they are 10 blobs.
This is how time-series databases store points (OpenTSDB: a row per hour).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from voservice.stores.timeseries.base import (
    Points,
    SeriesReader,
    SeriesRef,
    StoreError,
    TimeSeriesStore,
)

#: points per stored chunk (a chunk of 10,000 is a 400 kB blob)
CHUNK_POINTS = 10_000

#: one stored point; the two text columns are indexes into the chunk's labels
RECORD = np.dtype([
    ("time_us", "<i8"), ("magnitude", "<f8"), ("magnitude_error", "<f8"), ("exposure", "<f8"),
    ("flux_calibration_level", "<i8"), ("flux_calibration", "<u2"),
    ("timeframe_reference_position", "<u2"),
])
_TEXT = ("flux_calibration", "timeframe_reference_position")
_NUMBERS = ("time_us", "magnitude", "magnitude_error", "exposure", "flux_calibration_level")

POINT_METADATA = sa.MetaData()

ts_chunk = sa.Table(
    "ts_chunk",
    POINT_METADATA,
    sa.Column("series_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("start_us", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("end_us", sa.BigInteger, nullable=False),
    sa.Column("n_points", sa.Integer, nullable=False),
    # the distinct values of the text columns: {"flux_calibration": [...], ...}
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("points", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql"),
              nullable=False),
    sqlite_with_rowid=False,
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

#: the table of the first SKVO releases (a row per point)
_OLD_TABLE = "ts_point"


def encode(points: Points) -> list[tuple[int, int, int, str, bytes]]:
    """A series' points as stored chunks: (start_us, end_us, n, labels, points blob)."""
    out = []
    for start in range(0, len(points), CHUNK_POINTS):
        part = points[start : start + CHUNK_POINTS]
        records = np.empty(len(part), RECORD)
        for name in _NUMBERS:
            records[name] = getattr(part, name)
        labels: dict[str, list[str]] = {}
        for name in _TEXT:
            values, codes = np.unique(getattr(part, name).astype(str), return_inverse=True)
            labels[name] = values.tolist()
            records[name] = codes
        out.append((int(part.time_us[0]), int(part.time_us[-1]), len(part),
                    json.dumps(labels, ensure_ascii=False), records.tobytes()))
    return out


def decode(labels: str, blob: bytes) -> Points:
    """The points of one stored chunk."""
    records = np.frombuffer(blob, RECORD)
    names = json.loads(labels)
    text = {name: np.asarray(names[name], dtype=object)[records[name]] for name in _TEXT}
    return Points(**{name: records[name] for name in _NUMBERS}, **text)


class SqlTimeSeriesStore(TimeSeriesStore):
    """Points in a table of the metadata database."""

    time_resolution_us = 1
    label = "the SQL store"

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        """Create the chunk table if it is missing (refuse a database of the old layout)."""
        with self.engine.connect() as conn:
            if sa.inspect(conn).has_table(_OLD_TABLE) and conn.execute(
                    sa.text(f"SELECT COUNT(*) FROM {_OLD_TABLE}")).scalar():
                raise StoreError(
                    f"this database holds light-curve points in the table {_OLD_TABLE} of an "
                    "older SKVO; run `skvo upgrade` to move them to the current layout")
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
        for name in ("magnitude", "magnitude_error", "exposure"):
            if not np.all(np.isfinite(getattr(points, name))):
                what = "exposures" if name == "exposure" else "magnitudes"
                raise StoreError(f"series {ref.series_id}: {what} must be finite numbers")
        if len(points) and np.any(np.diff(points.time_us) <= 0):
            if len(np.unique(points.time_us)) != len(points):
                raise StoreError(f"series {ref.series_id}: two points share a timestamp")
            points = points[np.argsort(points.time_us, kind="stable")]
        rows = [{"series_id": ref.series_id, "start_us": start, "end_us": end, "n_points": n,
                 "labels": labels, "points": blob}
                for start, end, n, labels, blob in encode(points)]
        try:
            with self._transaction(conn) as c:
                c.execute(ts_chunk.delete().where(ts_chunk.c.series_id == ref.series_id))
                if rows:
                    c.execute(ts_chunk.insert(), rows)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"series {ref.series_id}: the points could not be stored") from exc

    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The points of a series in time order, ``chunk_size`` at a time."""
        query = (sa.select(ts_chunk.c.labels, ts_chunk.c.points)
                 .where(ts_chunk.c.series_id == ref.series_id).order_by(ts_chunk.c.start_us))
        if start_us is not None:
            query = query.where(ts_chunk.c.end_us >= int(start_us))
        if end_us is not None:
            query = query.where(ts_chunk.c.start_us <= int(end_us))
        with self.engine.connect() as conn:
            # MySQL drivers buffer a whole result unless asked to stream it; SQLAlchemy's
            # read-ahead would grow to 1,000 blobs (400 MB): hold 2 at most
            result = conn.execution_options(stream_results=True, max_row_buffer=2).execute(query)
            try:
                yield from _rechunk(result, start_us, end_us, chunk_size)
            except GeneratorExit:
                if result.cursor is not None and conn.dialect.name != "sqlite":
                    conn.invalidate()  # the reader left: drop the rest instead of reading it
                raise

    def reader(self, refs: Sequence[SeriesRef], sizes: Sequence[int]) -> SeriesReader:
        """Reads the series a batch at a time (up to BATCH_POINTS points per query)."""
        return _BatchReader(self, refs, sizes)

    def count(self, ref: SeriesRef) -> int:
        """Number of points of a series."""
        with self.engine.connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ts_chunk.c.n_points), 0))
                .where(ts_chunk.c.series_id == ref.series_id)
            ).scalar_one())

    def delete(self, ref: SeriesRef, conn: sa.Connection | None = None) -> None:
        """Remove the points of a series."""
        with self._transaction(conn) as c:
            c.execute(ts_chunk.delete().where(ts_chunk.c.series_id == ref.series_id))


#: points a batched read fetches per query (a star's short series)
BATCH_POINTS = 100_000


class _BatchReader(SeriesReader):
    """The chunks of many series, a batch of series per query.

    A star has hundreds of short series: one query (and connection) per series
    costs more than its points.  The chunks a series yields are those of
    :meth:`SqlTimeSeriesStore.read`, point for point and chunk for chunk.
    """

    def __init__(self, store: SqlTimeSeriesStore, refs: Sequence[SeriesRef],
                 sizes: Sequence[int]) -> None:
        super().__init__(store)
        self.engine = store.engine
        self.order = list(refs)
        self.sizes = list(sizes)
        self.index = {r.series_id: i for i, r in enumerate(self.order)}
        self.held: dict[int, list[Any]] = {}

    def _load(self, first: int) -> None:
        ids, points = [], 0
        for r, n in zip(self.order[first:], self.sizes[first:], strict=True):
            if ids and points + n > BATCH_POINTS:
                break
            ids.append(r.series_id)
            points += n
        c = ts_chunk
        query = (sa.select(c.c.series_id, c.c.start_us, c.c.end_us, c.c.labels, c.c.points)
                 .where(c.c.series_id.in_(ids)).order_by(c.c.series_id, c.c.start_us))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        self.held = {i: [] for i in ids}
        for row in rows:
            self.held[row.series_id].append(row)

    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The chunks of a series in the window (as the store reads them)."""
        if ref.series_id not in self.index:
            yield from self.store.read(ref, start_us, end_us, chunk_size)
            return
        if ref.series_id not in self.held:
            self._load(self.index[ref.series_id])
        rows = self.held.pop(ref.series_id)
        rows = [r for r in rows if not ((start_us is not None and r.end_us < start_us)
                                        or (end_us is not None and r.start_us > end_us))]
        yield from _rechunk(((r.labels, r.points) for r in rows), start_us, end_us, chunk_size)


def _rechunk(blobs: Any, start_us: int | None, end_us: int | None, size: int
             ) -> Iterator[Points]:
    """Decoded (labels, blob) rows cut to the window and regrouped ``size`` points a time."""
    pending: list[Points] = []
    held = 0
    for labels, blob in blobs:
        part = decode(labels, blob)
        if start_us is not None or end_us is not None:
            t = part.time_us
            keep = np.ones(len(t), bool)
            if start_us is not None:
                keep &= t >= int(start_us)
            if end_us is not None:
                keep &= t <= int(end_us)
            part = part[keep]
        pending.append(part)
        held += len(part)
        while held >= size:
            merged = Points.concat(pending)
            yield merged[:size]
            rest = merged[size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield Points.concat(pending)
