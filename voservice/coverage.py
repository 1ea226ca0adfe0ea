"""MOC coverage of the published data: a space MOC and a time MOC (mocpy).

*Published* means what an anonymous client may find: the observations
:func:`voservice.access.visible_clause` lets ``ANONYMOUS`` see (open and
on_demand ones; restricted ones are left out, so a star with restricted
nights only is not in the MOC).  The space MOC is the union of one cone per
visible target, of the radius half the largest field of view of the
instruments that observed it (``DEFAULT_RADIUS`` when unknown); the time MOC
is the union of the time spans of the visible series (``photometry.mjd_start``
to ``mjd_end``, UTC).

Both are computed from the metadata database when first asked for and kept
until the archive changes: the cache key is the newest ``observation.ingested``
and the number of observations, one cheap query per request, so an ingest
(new, replaced or removed nights) refreshes the coverage at the next request.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
import sqlalchemy as sa
from astropy.coordinates import Latitude, Longitude
from astropy.time import Time, TimeDelta

from voservice import tables
from voservice.access import ANONYMOUS, visible_clause

#: HEALPix order of the space MOC (order 12: cells of about 52 arcsec)
SPACE_ORDER = 12
#: order of the ASCII MOC in registry records (order 6: cells of about 55 arcmin)
RECORD_ORDER = 6
#: cone radius of a target whose instruments have no field of view
DEFAULT_RADIUS = 0.1 * u.deg
#: time resolution of the time MOC
TIME_RESOLUTION = TimeDelta(60, format="sec")
#: at most this many intervals in a registry record's <temporal> elements
MAX_TEMPORAL = 20

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Coverage:
    """The coverage of the published data at one state of the archive."""

    key: tuple[str, int]
    space: Any  # mocpy.MOC
    time: Any  # mocpy.TimeMOC
    #: (mjd_start, mjd_end) of each visible series
    spans: tuple[tuple[float, float], ...]
    #: newest ingest time (UTC), None for an empty archive
    last_ingest: dt.datetime | None
    #: oldest ingest time (UTC), None for an empty archive
    first_ingest: dt.datetime | None

    def temporal(self, limit: int = MAX_TEMPORAL) -> list[tuple[float, float]]:
        """At most ``limit`` MJD intervals covering every span (the smallest gaps closed)."""
        merged: list[list[float]] = []
        for start, end in sorted(self.spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        while len(merged) > limit:
            gaps = [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]
            i = int(np.argmin(gaps))
            merged[i:i + 2] = [[merged[i][0], merged[i + 1][1]]]
        return [(a, b) for a, b in merged]


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def _utc(value: Any) -> dt.datetime | None:
    """A DB timestamp (datetime or ISO string) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def state(engine: sa.Engine) -> tuple[tuple[str, int], dt.datetime | None, dt.datetime | None]:
    """Cache key (newest ingest, observation count) and the first/last ingest times."""
    obs = _t("observation")
    with engine.connect() as conn:
        newest, oldest, count = conn.execute(sa.select(
            sa.func.max(obs.c.ingested), sa.func.min(obs.c.ingested),
            sa.func.count())).one()
    return (str(newest), int(count)), _utc(newest), _utc(oldest)


def compute(engine: sa.Engine) -> Coverage:
    """Compute the coverage of what anonymous clients may see now."""
    from mocpy import MOC, TimeMOC

    key, last, first = state(engine)
    obs, target, instrument, phot = (_t(n) for n in ("observation", "target", "instrument",
                                                     "photometry"))
    visible = visible_clause(ANONYMOUS, obs.c.access, obs.c.source)
    cones = (sa.select(target.c.right_ascension, target.c.declination,
                       sa.func.max(instrument.c.field_of_view))
             .select_from(obs.join(target, obs.c.target_id == target.c.target_id)
                          .join(instrument, obs.c.instrument_id == instrument.c.instrument_id))
             .where(visible)
             .group_by(target.c.target_id, target.c.right_ascension, target.c.declination))
    spans = (sa.select(phot.c.mjd_start, phot.c.mjd_end)
             .select_from(phot.join(obs, phot.c.observation_id == obs.c.observation_id))
             .where(visible))
    with engine.connect() as conn:
        rows = conn.execute(cones).all()
        span_rows = [(float(a), float(b)) for a, b in conn.execute(spans).all()]
    if rows:
        ra = np.array([r[0] for r in rows], dtype=float)
        dec = np.array([r[1] for r in rows], dtype=float)
        fov = np.array([r[2] if r[2] is not None and r[2] > 0 else np.nan for r in rows],
                       dtype=float)
        radius = np.where(np.isnan(fov), DEFAULT_RADIUS.to_value(u.deg), fov / 2.0)
        space = MOC.from_cones(lon=Longitude(ra * u.deg), lat=Latitude(dec * u.deg),
                               radius=radius * u.deg, max_depth=SPACE_ORDER,
                               union_strategy="small_cones")
    else:
        space = MOC.new_empty(SPACE_ORDER)
    if span_rows:
        start = np.array([a for a, _ in span_rows])
        end = np.array([max(a, b) for a, b in span_rows])
        with warnings.catch_warnings():  # ERFA "dubious year" for far future dates
            warnings.simplefilter("ignore")
            time = TimeMOC.from_time_ranges(Time(start, format="mjd", scale="utc"),
                                            Time(end, format="mjd", scale="utc"),
                                            delta_t=TIME_RESOLUTION)
    else:
        time = TimeMOC.new_empty(TimeMOC.MAX_ORDER)
    return Coverage(key=key, space=space, time=time, spans=tuple(span_rows),
                    last_ingest=last, first_ingest=first)


def current(engine: sa.Engine, cache: dict[str, Any]) -> Coverage:
    """The coverage, recomputed only when the archive changed since the cached one.

    ``cache``: a dict the caller keeps (the application's ``Services.extras``).
    """
    key, _, _ = state(engine)
    cached = cache.get("coverage")
    if cached is not None and cached.key == key:
        return cached
    with _LOCK:
        cached = cache.get("coverage")
        if cached is None or cached.key != key:
            cached = cache["coverage"] = compute(engine)
    return cached


def to_fits(moc: Any) -> bytes:
    """A MOC (space or time) as a MOC 2.0 FITS file."""
    buffer = io.BytesIO()
    moc.serialize(format="fits").writeto(buffer)
    return buffer.getvalue()


def to_ascii(moc: Any) -> str:
    """A MOC in the MOC 2.0 ASCII serialisation (``order/cells ...``)."""
    return moc.to_string(format="ascii").strip()


def record_ascii(space: Any) -> str:
    """The space MOC at ``RECORD_ORDER`` for a VOResource ``<spatial>`` element."""
    if space.empty():
        return f"{RECORD_ORDER}/"
    return to_ascii(space.degrade_to_order(RECORD_ORDER))
