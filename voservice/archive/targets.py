"""Targets in a cone, with what the principal may see of them.

One row per target the principal may see (a target is visible when one of
its observations is, see :mod:`voservice.access`); restricted-only targets
do not exist for anonymous users.  The cone predicate is
:func:`adql.geometry.cone_sql`, the one implementation the ADQL translator
uses too (an index-friendly bounding box AND an exact haversine test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa

from adql import geometry
from voservice import tables
from voservice.access import Principal, visible_clause
from voservice.votable import Field


@dataclass(frozen=True)
class Cone:
    """A parsed cone search request."""

    ra: float
    dec: float
    sr: float
    verb: int
    maxrec: int


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def cone_select(who: Principal, cone: Cone, dialect: str,
                compile_column: Callable[[sa.ColumnElement[Any]], str]) -> sa.Select:
    """Targets within the cone that the principal may see, nearest first.

    Aggregates (series, bandpasses, time span) count only the observations
    the principal may see.  LIMIT is MAXREC+1 so that overflow shows.
    """
    t, o, p, b = _t("target"), _t("observation"), _t("photometry"), _t("bandpass")
    ra_sql, dec_sql = compile_column(t.c.right_ascension), compile_column(t.c.declination)
    cone_pred = geometry.cone_sql(ra_sql, dec_sql, cone.ra, cone.dec, cone.sr, dialect)
    distance = sa.literal_column(
        geometry.distance_sql(ra_sql, dec_sql, geometry.num(cone.ra), geometry.num(cone.dec),
                              dialect), sa.Double)
    target_cols = [t.c.target_id, t.c.catalogue, t.c.catalogue_value, t.c.target,
                   t.c.right_ascension, t.c.declination, t.c.target_class, t.c.equinox,
                   t.c.description]
    return (
        sa.select(
            *target_cols,
            distance.label("distance"),
            sa.func.count(p.c.photometry_id).label("n_series"),
            sa.func.count(sa.distinct(o.c.observation_id)).label("n_observations"),
            sa.func.sum(p.c.n_points).label("n_points"),
            sa.func.min(p.c.mjd_start).label("mjd_min"),
            sa.func.max(p.c.mjd_end).label("mjd_max"),
            sa.func.group_concat(sa.distinct(b.c.bandpass_uid)).label("bandpasses"),
            sa.func.group_concat(sa.distinct(o.c.source)).label("collections"),
        )
        .select_from(
            t.join(o, o.c.target_id == t.c.target_id)
            .outerjoin(p, p.c.observation_id == o.c.observation_id)
            .outerjoin(b, b.c.bandpass_id == p.c.bandpass_id)
        )
        .where(sa.text(cone_pred), visible_clause(who, o.c.access, o.c.source))
        .group_by(*target_cols)
        .order_by(sa.literal_column("distance"), t.c.target_id)
        .limit(cone.maxrec + 1)
    )


def _words(text: str | None) -> str:
    return " ".join(sorted({w for w in (text or "").split(",") if w}))


def _adql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def target_row_converter(base_url: str, fields: Sequence[Field]
                         ) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Turn a :func:`cone_select` row into the response row for ``fields``."""
    names = [f.name for f in fields]

    def convert(r: Any) -> tuple[Any, ...]:
        m = r._mapping
        query = f"SELECT * FROM ivoa.obscore WHERE target_name = {_adql_string(m['target'])}"
        values = {
            "id": f"{m['catalogue']} {m['catalogue_value']}",
            "ra": m["right_ascension"],
            "dec": m["declination"],
            "target_name": m["target"],
            "distance": m["distance"],
            "catalogue": m["catalogue"],
            "catalogue_value": m["catalogue_value"],
            "target_class": m["target_class"],
            "n_series": m["n_series"],
            "bandpasses": _words(m["bandpasses"]),
            "mjd_min": m["mjd_min"],
            "mjd_max": m["mjd_max"],
            "observations_url": f"{base_url}/tap/sync?"
            + urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}, quote_via=quote),
            "ssa_url": f"{base_url}/ssa?"
            + urlencode({"REQUEST": "queryData", "TARGETNAME": m["target"]}, quote_via=quote),
            "n_observations": m["n_observations"],
            "n_points": m["n_points"],
            "collections": _words(m["collections"]),
            "equinox": m["equinox"],
            "description": m["description"],
        }
        return tuple(values[n] for n in names)

    return convert
