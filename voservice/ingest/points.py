"""The rows of ``skvo.point``: every light-curve point as a row for ADQL.

The time-series store (``ts_chunk`` blobs or OpenTSDB) serves the light
curves; ``skvo.point`` is a copy of the same points in the metadata
database, one row per point, so that TAP sees them whatever the store
backend is.  The uploader writes a series' rows in the transaction of its
metadata (:func:`insert_points`, called from
:meth:`voservice.ingest.load.Loader._insert`) and removes them with the
observation (:func:`delete_points`), so the table always holds exactly the
points of the loaded observations.

Each row carries the internal ``public`` flag (1: the observation is open,
its data everybody's; ``data:`` visibility in ``resources/tables/skvo.toml``),
so an anonymous query filters on the row itself, without a join.  A frame is
stored as its URL relative to the service's base URL
(``urls.frame_url("", frame_id)``); the TAP view prepends the base URL
(:func:`voservice.catalog.point_select`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from voservice import tables, urls
from voservice.access import ANONYMOUS, can_download
from voservice.stores.timeseries.base import MJD_UNIX_EPOCH, US_PER_DAY

#: the columns :func:`insert_points` writes, in this order
COLUMNS = ("observation_id", "target_id", "bandpass_id", "point_index", "mjd", "magnitude",
           "magnitude_error", "exposure", "flux_calibration", "flux_calibration_level",
           "time_refposition", "frame_url", "public")
#: rows per executemany call (bounds the parameter list a driver builds at once)
BATCH = 20_000


def point_table() -> sa.Table:
    """The SQLAlchemy table of ``skvo.point``."""
    return tables.sa_table("skvo.point")


def _insert_sql(conn: sa.Connection) -> str:
    """A positional INSERT in the driver's own parameter style (executemany of tuples)."""
    table = point_table()
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(COLUMNS))})")


def insert_points(conn: sa.Connection, *, observation_id: int, target_id: int,
                  bandpass_id: int, photometry_id: int, access: str, source: str,
                  data: Any) -> int:
    """Write the rows of one series' points (``data``: the parsed data file,
    time order) inside the caller's transaction; returns the number written.

    The frames of the series must already be in ``skvo.frame``: a point whose
    index has a frame gets that frame's URL.
    """
    n = len(data.time_us)
    if n == 0:
        return 0
    frame = tables.sa_table("skvo.frame")
    frame_urls: list[str | None] = [None] * n
    for frame_id, index in conn.execute(
            sa.select(frame.c.frame_id, frame.c.frame_index)
            .where(frame.c.photometry_id == photometry_id)):
        frame_urls[int(index)] = urls.frame_url("", frame_id)
    # the same float64 arithmetic as Points.mjd, so the rows equal the light curve's times
    mjd = MJD_UNIX_EPOCH + np.asarray(data.time_us, dtype=np.int64) / US_PER_DAY
    public = int(can_download(ANONYMOUS, access, source))
    columns = [
        [int(observation_id)] * n, [int(target_id)] * n, [int(bandpass_id)] * n,
        range(n), mjd.tolist(),
        np.asarray(data.magnitude, dtype=np.float64).tolist(),
        np.asarray(data.magnitude_error, dtype=np.float64).tolist(),
        np.asarray(data.exposure, dtype=np.float64).tolist(),
        [str(v) for v in data.flux_calibration],
        np.asarray(data.flux_calibration_level, dtype=np.int64).tolist(),
        [str(v) for v in data.timeframe_reference_position],
        frame_urls, [public] * n,
    ]
    rows = list(zip(*columns, strict=True))
    sql = _insert_sql(conn)
    for start in range(0, n, BATCH):
        conn.exec_driver_sql(sql, rows[start:start + BATCH])
    return n


def delete_points(conn: sa.Connection, observation_id: int) -> None:
    """Remove the rows of an observation's points (inside the caller's transaction)."""
    table = point_table()
    conn.execute(table.delete().where(table.c.observation_id == observation_id))
