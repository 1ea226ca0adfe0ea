"""The rows of ``skvo.minimum``: times of minimum found when a series is loaded.

Filled at ingest, not on request: a series' points are fixed once loaded
(``--replace`` loads them anew, and its rows with them), so the minima are
timed once, in the transaction of the series' metadata
(:func:`insert_minima`, called from :meth:`voservice.ingest.load.Loader._insert`)
and removed with the observation (:func:`delete_minima`).  A TAP query then
costs no computing, and every client sees the same numbers.  What depends on
the ephemeris (E, O-C, primary/secondary) is not stored: the TAP select
computes it against the current default ephemeris
(:mod:`voservice.archive.minima`).

Per series (one night, one band): :func:`voservice.analysis.minima.find_minima`
on the points of the series' own reference position and flux calibration
(the most common ones when a file mixes them); nothing when the night covers
no minimum.  Times are converted with :func:`voservice.archive.stars.converted`
(the code star curves use), so a provider's heliocentric times are never
corrected twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from voservice import tables
from voservice.access import ANONYMOUS, can_download
from voservice.stores.timeseries.base import MJD_UNIX_EPOCH, US_PER_DAY

log = logging.getLogger(__name__)

#: skvo.minimum.method and check_method
METHOD = "kwee-van-woerden"
CHECK_METHOD = "polynomial"


@dataclass(frozen=True)
class Place:
    """What converting a series' times needs (the attributes
    :func:`voservice.archive.stars.converted` reads of a series)."""

    right_ascension: float
    declination: float
    time_refposition: str
    longitude: float | None
    latitude: float | None
    height: float | None


def minimum_table() -> sa.Table:
    """The SQLAlchemy table of ``skvo.minimum``."""
    return tables.sa_table("skvo.minimum")


def _majority(values: np.ndarray) -> np.ndarray:
    """The points whose value is the most common one."""
    common = Counter(str(v) for v in values).most_common(1)[0][0]
    return np.asarray(values).astype(str) == common


def find_series_minima(mjd: np.ndarray, magnitude: np.ndarray, error: np.ndarray,
                       place: Place) -> list[dict[str, Any]]:
    """The rows (without ids) of the minima of one series' points (MJD as given, at
    ``place.time_refposition``)."""
    from voservice.analysis.common import AnalysisError
    from voservice.analysis.minima import find_minima
    from voservice.archive.stars import converted

    found = find_minima(mjd, magnitude, error)
    rows = []
    for m in found:
        times = np.array([m.time] + ([m.check_time] if m.check_time is not None else []))
        try:
            bjd = converted(times, place, "BJD_TDB").mjd  # type: ignore[arg-type]
            hjd = converted(times[:1], place, "HJD_UTC").mjd  # type: ignore[arg-type]
            utc = converted(times[:1], place, "MJD_UTC").mjd  # type: ignore[arg-type]
        except AnalysisError as exc:  # e.g. no usable target position
            log.warning("time of minimum not converted: %s", exc)
            continue
        rows.append({
            "time_bjd": float(bjd[0]), "time_error": float(m.error),
            "time_hjd": float(hjd[0]), "time_utc": float(utc[0]),
            "time_refposition": place.time_refposition, "tt_utc": tt_minus_utc(float(utc[0])),
            "method": METHOD,
            "check_time": float(bjd[1]) if m.check_time is not None else None,
            "check_error": m.check_error, "check_method": CHECK_METHOD
            if m.check_time is not None else None,
            "n_points": int(m.n_points), "depth": float(m.depth),
        })
    return rows


def tt_minus_utc(mjd_utc: float) -> float:
    """TT - UTC in seconds at a UTC MJD (leap seconds: astropy/ERFA)."""
    from astropy.time import Time

    t = Time(mjd_utc, format="mjd", scale="utc")
    return float((t.tt.jd1 - t.utc.jd1 + t.tt.jd2 - t.utc.jd2) * 86400.0)


def insert_minima(conn: sa.Connection, *, observation_id: int, photometry_id: int,
                  target_id: int, bandpass_id: int, access: str, source: str, data: Any,
                  location: dict[str, float | None]) -> int:
    """Time the minima of one series (``data``: the parsed data file, time order) and
    write their rows inside the caller's transaction; returns how many.

    ``location``: the facility's longitude, latitude and height (None: unknown).
    A series whose minima cannot be timed (too few points, ...) gets none.
    """
    if len(data.time_us) == 0:
        return 0
    t = tables.sa_table("skvo.target")
    target = conn.execute(sa.select(t.c.right_ascension, t.c.declination)
                          .where(t.c.target_id == int(target_id))).one()
    keep = (_majority(data.timeframe_reference_position) & _majority(data.flux_calibration))
    refpos = str(np.asarray(data.timeframe_reference_position)[keep][0]).lower()
    place = Place(float(target.right_ascension), float(target.declination), refpos,
                  location.get("longitude"), location.get("latitude"), location.get("height"))
    mjd = MJD_UNIX_EPOCH + np.asarray(data.time_us, dtype=np.int64)[keep] / US_PER_DAY
    try:
        rows = find_series_minima(mjd, np.asarray(data.magnitude, float)[keep],
                                  np.asarray(data.magnitude_error, float)[keep], place)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        log.warning("no times of minimum for series %s: %s", photometry_id, exc)
        return 0
    if not rows:
        return 0
    public = int(can_download(ANONYMOUS, access, source))
    ids = {"observation_id": int(observation_id), "photometry_id": int(photometry_id),
           "target_id": int(target_id), "bandpass_id": int(bandpass_id), "public": public}
    conn.execute(minimum_table().insert(), [{**ids, **row} for row in rows])
    return len(rows)


def delete_minima(conn: sa.Connection, observation_id: int) -> None:
    """Remove the minima of an observation (inside the caller's transaction)."""
    table = minimum_table()
    conn.execute(table.delete().where(table.c.observation_id == int(observation_id)))
