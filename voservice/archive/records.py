"""Series records with their dimension rows, and the series in an RA/Dec box.

The original SKVO's JSON API (:mod:`voservice.protocols.seedapi`) describes a
series by its observation, target, instrument, facility, dataset identity,
organisation and bandpass rows.  This module reads them for a principal from
the same join the light-curve queries use (:func:`voservice.catalog.series_join`)
under the same access rules (:mod:`voservice.access`), and finds the series
whose target lies in a box of right ascension and declination:

- candidates are the targets of the box's enclosing cone, found by the cone
  search SCS uses (:func:`voservice.archive.targets.cone_select`, visible
  targets only);
- a target is in the box when :class:`adql.shapes.Range` (SIA's POS RANGE)
  says so: right ascension wraps at 0h/24h, declinations are clipped to the
  poles.

Pure of Flask: callers pass the engine and the principal.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from adql import shapes
from voservice import catalog, tables
from voservice.access import Principal, downloadable_clause, visible_clause
from voservice.archive import targets
from voservice.archive.rows import column_compiler
from voservice.resolver import angular_distance
from voservice.stores.metadata import dialect_name

#: targets whose series are read with one query
TARGET_BATCH = 500


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


@dataclass(frozen=True)
class Box:
    """Right ascension ``ra`` +- ``half_ra`` and declination ``dec`` +- ``half_dec`` (degrees).

    As in the original SKVO, the sizes are half-widths along the coordinates
    (not great-circle distances): ``half_ra`` 5 means 5 degrees of right
    ascension either side, whatever the declination.
    """

    ra: float
    dec: float
    half_ra: float
    half_dec: float

    @property
    def shape(self) -> shapes.Range:
        """The box as a RANGE (longitudes wrap at 0/360, latitudes clipped to +-90)."""
        if self.half_ra >= 180.0:
            return shapes.Range(-math.inf, math.inf, self.dec - self.half_dec,
                                self.dec + self.half_dec)
        return shapes.Range(self.ra - self.half_ra, self.ra + self.half_ra,
                            self.dec - self.half_dec, self.dec + self.half_dec)

    def contains(self, ra: float, dec: float) -> bool:
        """Does the position lie in the box (boundary included)?"""
        return shapes.intersects(shapes.Point(ra, dec), self.shape)

    @property
    def cone_radius(self) -> float:
        """Radius (degrees) of a cone around the centre that holds the whole box.

        For ``half_ra`` below 90 degrees the farthest points of the box are
        its corners (at a fixed declination the distance grows with the RA
        offset; along the box's east and west edges it is largest at an end);
        wider boxes get the whole sky.
        """
        if self.half_ra >= 90.0:
            return 180.0
        lo = max(-90.0, self.dec - self.half_dec)
        hi = min(90.0, self.dec + self.half_dec)
        far = max(angular_distance(self.ra, self.dec, self.ra + self.half_ra, d) for d in (lo, hi))
        return min(180.0, far * (1 + 1e-9) + 1e-9)


def targets_in_box(engine: sa.Engine, who: Principal, box: Box, limit: int
                   ) -> tuple[dict[int, float], bool]:
    """Target id -> separation (degrees) from the box centre, of the targets in the box
    that the principal may see; and whether more than ``limit`` candidate targets
    stood in the enclosing cone (then the box may hold more than those returned)."""
    cone = targets.Cone(box.ra % 360.0, box.dec, box.cone_radius, verb=1, maxrec=limit)
    select = targets.cone_select(who, cone, dialect_name(engine), column_compiler(engine))
    with engine.connect() as conn:
        rows = conn.execute(select).all()
    overflow = len(rows) > limit
    found = {}
    for r in rows[:limit]:
        ra, dec = float(r.right_ascension), float(r.declination)
        if box.contains(ra, dec):
            found[int(r.target_id)] = angular_distance(box.ra, box.dec, ra, dec)
    return found, overflow


def _columns() -> list[sa.ColumnElement[Any]]:
    """Every column a record describes, labelled ``<table>__<column>``."""
    names = {
        "photometry": ("photometry_id", "start_date", "end_date", "media", "n_points",
                       "mjd_start"),
        "observation": ("observation_id", "observation_uuid", "observation_hash", "access",
                        "source", "night"),
        "target": ("target_id", "target", "catalogue", "catalogue_value", "description",
                   "right_ascension", "declination", "equinox", "target_class"),
        "instrument": ("instrument_id", "instrument", "instrument_uid", "instrument_hash",
                       "telescope", "camera", "spectroscope", "field_of_view", "description"),
        "facility": ("facility_id", "facility", "facility_uid", "description"),
        "dataid": ("dataid_id", "title", "publisher", "publisher_did"),
        "organisation": ("organisation_id", "organisation", "organisation_did", "email"),
        "bandpass": ("bandpass_id", "bandpass", "bandpass_uid", "spectral_band_type",
                     "photometric_system"),
    }
    return [_t(table).c[col].label(f"{table}__{col}") for table, cols in names.items()
            for col in cols]


def _select(who: Principal, fetchable: bool) -> sa.Select:
    """Series with their dimension rows that the principal may see (or fetch)."""
    o, d, g = _t("observation"), _t("dataid"), _t("organisation")
    rule = downloadable_clause if fetchable else visible_clause
    return (sa.select(*_columns())
            .select_from(catalog.series_join().join(g, g.c.organisation_id == d.c.organisation_id))
            .where(rule(who, o.c.access, o.c.source)))


def _record(row: sa.Row) -> dict[str, dict[str, Any]]:
    """A row as {table: {column: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in row._mapping.items():
        table, _, col = key.partition("__")
        out.setdefault(table, {})[col] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """Database values as JSON-able Python values (times as datetime, UTC)."""
    if isinstance(value, str) or value is None or isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value
    try:
        return float(value)  # Decimal
    except (TypeError, ValueError):
        return str(value)


def series_records(engine: sa.Engine, who: Principal, *, fetchable: bool,
                   target_ids: list[int] | None = None, source: str | None = None,
                   observation_id: int | None = None, limit: int, offset: int = 0
                   ) -> list[dict[str, dict[str, Any]]]:
    """Records of the series the principal may see (``fetchable``: may fetch), by
    photometry id, at most ``limit`` (+1 to tell overflow: callers ask for limit + 1)."""
    p, o = _t("photometry"), _t("observation")
    query = _select(who, fetchable)
    if target_ids is not None:
        if not target_ids:
            return []
        query = query.where(o.c.target_id.in_(sorted(target_ids)))
    if source is not None:
        query = query.where(o.c.source == source)
    if observation_id is not None:
        query = query.where(o.c.observation_id == observation_id)
    query = query.order_by(p.c.photometry_id).limit(limit).offset(offset)
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def series_in_box(engine: sa.Engine, who: Principal, box: Box, *, source: str | None,
                  limit: int, target_limit: int
                  ) -> tuple[list[tuple[dict[str, dict[str, Any]], float]], bool]:
    """(record, separation) of the series the principal may fetch whose target lies in
    the box (of ``source`` when given), nearest first, at most ``limit``; and whether
    there were more (or more than ``target_limit`` candidate targets).  Targets are read
    nearest first, a batch at a time, until more than ``limit`` series are found."""
    found, overflow = targets_in_box(engine, who, box, target_limit)
    order = sorted(found, key=lambda t: (found[t], t))
    pairs: list[tuple[dict[str, dict[str, Any]], float]] = []
    for i in range(0, len(order), TARGET_BATCH):
        batch = series_records(engine, who, fetchable=True, target_ids=order[i:i + TARGET_BATCH],
                               source=source, limit=limit + 1 - len(pairs))
        batch.sort(key=lambda r: (found[int(r["target"]["target_id"])],
                                  r["photometry"]["mjd_start"], r["photometry"]["photometry_id"]))
        pairs += [(r, found[int(r["target"]["target_id"])]) for r in batch]
        if len(pairs) > limit:
            return pairs[:limit], True
    return pairs, overflow
