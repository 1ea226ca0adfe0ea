"""Derived data an upgrade fills in with the current code, once the schema is current.

A revision whose new table or column takes its values from other data names
a task (:func:`voservice.migrations.ops.add_task`); :func:`run_pending` runs
each pending task and removes it when it is done, so an interrupted upgrade
is finished by running ``skvo upgrade`` again.  Every task may run twice.

- ``public-flags``: the ``public`` flag of every table whose rows follow
  access rights, from the observations (as the uploader keeps it).
- ``aliases``: the provider and catalogue names of targets without aliases.
- ``points``: the ``skvo.point`` rows of every series that has none, read
  from the time-series store (as the uploader writes them).
- ``minima``: the times of minimum of every series, timed on its points.

The last two read every point of the archive once (the store's speed: about
a million points in tens of seconds on the SQL store; OpenTSDB is slower).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TextIO

import sqlalchemy as sa

from voservice import tables
from voservice.model import upgrade_task

#: the order tasks run in (flags before the rows whose flags are written with them)
ORDER = ("public-flags", "aliases", "points", "minima")


def pending(engine: sa.Engine) -> list[str]:
    """The tasks still to run, in :data:`ORDER`."""
    with engine.connect() as conn:
        names = set(conn.execute(sa.select(upgrade_task.c.task)).scalars())
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def run_pending(engine: sa.Engine, timeseries: Any, stream: TextIO | None = None) -> list[str]:
    """Run the pending tasks (``timeseries``: the archive's time-series store); returns
    the tasks run."""
    done = []
    for name in pending(engine):
        count = TASKS[name](engine, timeseries)
        with engine.begin() as conn:
            conn.execute(upgrade_task.delete().where(upgrade_task.c.task == name))
        if stream is not None:
            print(f"upgrade task {name}: {count} rows", file=stream)
        done.append(name)
    return done


def public_flags(engine: sa.Engine, _timeseries: Any) -> int:
    """Recompute the flags of every table whose rows follow access rights."""
    from voservice.catalog import refresh_public_flags

    n = 0
    for desc in tables.all_tables():
        if desc.table_type == "table" and desc.visibility.startswith(("via:", "data:")):
            with engine.begin() as conn:
                refresh_public_flags(conn, desc.qualified_name)
            n += 1
    return n


def aliases(engine: sa.Engine, _timeseries: Any) -> int:
    """The ingest aliases of targets that have none."""
    from voservice import resolver

    return resolver.backfill_aliases(engine)


def _series(conn: sa.Connection, without: str) -> Iterator[sa.Row]:
    """Series with points and no row in table ``without`` (every series: ``""``)."""
    o, p, i, f = (tables.sa_table(f"skvo.{n}") for n in
                  ("observation", "photometry", "instrument", "facility"))
    select = (sa.select(p.c.photometry_id, p.c.observation_id, p.c.bandpass_id, p.c.start_date,
                        p.c.end_date, o.c.observation_uuid, o.c.target_id, o.c.target_folder,
                        o.c.bandpass_folder, o.c.source, o.c.access, i.c.instrument_hash,
                        f.c.longitude, f.c.latitude, f.c.height)
              .join(o, o.c.observation_id == p.c.observation_id)
              .join(i, i.c.instrument_id == o.c.instrument_id)
              .join(f, f.c.facility_id == o.c.facility_id)
              .where(p.c.n_points > 0).order_by(p.c.photometry_id))
    if without:
        other = tables.sa_table(f"skvo.{without}")
        select = select.where(~sa.exists().where(other.c.observation_id == p.c.observation_id))
    yield from conn.execute(select).all()


def _points(timeseries: Any, row: sa.Row) -> Any:
    """The points of a series, whole, from the time-series store."""
    from voservice.archive.lightcurves import _us
    from voservice.stores.timeseries.base import Points, SeriesRef

    ref = SeriesRef(series_id=int(row.photometry_id), observation_uuid=row.observation_uuid,
                    target=row.target_folder, bandpass_uid=row.bandpass_folder,
                    source=row.source, instrument_hash=row.instrument_hash,
                    start_us=_us(row.start_date), end_us=_us(row.end_date))
    parts = list(timeseries.read(ref))
    return Points.concat(parts) if parts else Points.empty()


def _per_series(engine: sa.Engine, without: str,
                write: Callable[[sa.Connection, sa.Row, Any], int], timeseries: Any) -> int:
    with engine.connect() as conn:
        series = list(_series(conn, without))
    n = 0
    for row in series:
        points = _points(timeseries, row)
        with engine.begin() as conn:
            n += write(conn, row, points)
    return n


def points(engine: sa.Engine, timeseries: Any) -> int:
    """``skvo.point`` rows of the series of observations that have none."""
    from voservice.ingest.points import insert_points

    def write(conn: sa.Connection, row: sa.Row, data: Any) -> int:
        return insert_points(conn, observation_id=row.observation_id, target_id=row.target_id,
                             bandpass_id=row.bandpass_id, photometry_id=row.photometry_id,
                             access=row.access, source=row.source, data=data)

    return _per_series(engine, "point", write, timeseries)


def minima(engine: sa.Engine, timeseries: Any) -> int:
    """Times of minimum of every series (those of its observation first removed)."""
    from voservice.ingest.minima import delete_minima, insert_minima

    cleared: set[int] = set()

    def write(conn: sa.Connection, row: sa.Row, data: Any) -> int:
        if row.observation_id not in cleared:
            delete_minima(conn, row.observation_id)
            cleared.add(row.observation_id)
        return insert_minima(conn, observation_id=row.observation_id,
                             photometry_id=row.photometry_id, target_id=row.target_id,
                             bandpass_id=row.bandpass_id, access=row.access,
                             source=row.source, data=data,
                             location={"longitude": row.longitude, "latitude": row.latitude,
                                       "height": row.height})

    return _per_series(engine, "", write, timeseries)


TASKS: dict[str, Callable[[sa.Engine, Any], int]] = {
    "public-flags": public_flags, "aliases": aliases, "points": points, "minima": minima,
}
