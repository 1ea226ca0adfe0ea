"""What the archive holds, at a glance and per star curve, as a principal may see it.

The portal's home page (holdings, sky plot) and its search results (one row
per star x band curve) read these.  They are built from the same pieces as
the VO endpoints: :func:`voservice.access.visible_clause` for SQL,
:func:`voservice.archive.stars.find_star` and :func:`stars.parts` for the
curves (the nights and calibration ``/lightcurve/star`` joins), the default
ephemeris of :mod:`voservice.ephemeris`.  Pure of Flask.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from voservice import catalog, ephemeris, tables
from voservice.access import Principal, visible_clause
from voservice.archive import stars
from voservice.names import name_key
from voservice.resolver import angular_distance


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


@dataclass(frozen=True)
class Holdings:
    """Counts over the observations a principal may see."""

    stars: int
    nights: int
    series: int
    points: int
    sources: int
    mjd_min: float | None
    mjd_max: float | None


def holdings(engine: sa.Engine, who: Principal) -> Holdings:
    """Stars, nights, series, points, sources and time span the principal may see."""
    o, p = _t("observation"), _t("photometry")
    night = sa.func.count(sa.distinct(o.c.source + "|" + o.c.night + "|"
                                      + sa.cast(o.c.target_id, sa.String)))
    query = (sa.select(sa.func.count(sa.distinct(o.c.target_id)), night,
                       sa.func.count(p.c.photometry_id), sa.func.sum(p.c.n_points),
                       sa.func.count(sa.distinct(o.c.source)), sa.func.min(p.c.mjd_start),
                       sa.func.max(p.c.mjd_end))
             .select_from(p.join(o, o.c.observation_id == p.c.observation_id))
             .where(visible_clause(who, o.c.access, o.c.source)))
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return Holdings(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0),
                    int(row[4] or 0), row[5], row[6])


def sources(engine: sa.Engine, who: Principal) -> list[str]:
    """The sources with an observation the principal may see."""
    o = _t("observation")
    with engine.connect() as conn:
        return list(conn.execute(sa.select(o.c.source).distinct()
                                 .where(visible_clause(who, o.c.access, o.c.source))
                                 .order_by(o.c.source)).scalars())


def bands(engine: sa.Engine, who: Principal) -> list[str]:
    """The bandpasses of the series the principal may see, bluest first."""
    o, p, b = _t("observation"), _t("photometry"), _t("bandpass")
    query = (sa.select(b.c.bandpass_uid, sa.func.min(b.c.wavelength_eff))
             .select_from(p.join(o, o.c.observation_id == p.c.observation_id)
                          .join(b, b.c.bandpass_id == p.c.bandpass_id))
             .where(visible_clause(who, o.c.access, o.c.source))
             .group_by(b.c.bandpass_uid))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [r[0] for r in sorted(rows, key=lambda r: (r[1] or 0.0, r[0]))]


@dataclass(frozen=True)
class SkyTarget:
    """A target on the sky plot."""

    target_id: int
    target: str
    ra: float
    dec: float
    target_class: str | None
    nights: int


def sky(engine: sa.Engine, who: Principal, limit: int = 20000) -> list[SkyTarget]:
    """The targets the principal may see, with their visible nights."""
    t, o = _t("target"), _t("observation")
    nights = sa.func.count(sa.distinct(o.c.source + "|" + o.c.night))
    query = (sa.select(t.c.target_id, t.c.target, t.c.right_ascension, t.c.declination,
                       t.c.target_class, nights)
             .select_from(t.join(o, o.c.target_id == t.c.target_id))
             .where(visible_clause(who, o.c.access, o.c.source))
             .group_by(t.c.target_id, t.c.target, t.c.right_ascension, t.c.declination,
                       t.c.target_class)
             .order_by(t.c.target_id).limit(limit))
    with engine.connect() as conn:
        return [SkyTarget(int(r[0]), r[1], float(r[2]), float(r[3]), r[4], int(r[5]))
                for r in conn.execute(query)]


def suggestions(engine: sa.Engine, who: Principal, name: str, n: int = 5) -> list[str]:
    """Names of visible targets close to ``name`` ("did you mean"), best first."""
    rows = catalog.visible_select("skvo.target_alias", who)
    a = _t("target_alias")
    with engine.connect() as conn:
        aliases = conn.execute(rows.with_only_columns(a.c.alias, a.c.alias_key)).all()
    by_key: dict[str, str] = {}
    for alias, key in aliases:
        by_key.setdefault(key, alias)
    key = name_key(name)
    close = difflib.get_close_matches(key, list(by_key), n=n, cutoff=0.6)
    # a partial name ("lyr") is a hint too
    close += [k for k in by_key if key and key in k and k not in close]
    return [by_key[k] for k in close[:n]]


@dataclass
class CurveRow:
    """One star x band curve of the results: what /lightcurve/star serves of it."""

    target_id: int
    target: str
    band: str
    calibration: str
    nights: int
    points: int
    mjd_first: float | None
    mjd_last: float | None
    mag_min: float | None
    mag_max: float | None
    period: float | None
    distance: float | None  # degrees from the search centre
    sources: list[str] = field(default_factory=list)
    withheld: int = 0  # nights of the band the principal may see but not fetch


def _mag_ranges(engine: sa.Engine, ids: Sequence[int]) -> dict[int, tuple[float, float]]:
    p = _t("photometry")
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(p.c.photometry_id, p.c.mag_min, p.c.mag_max)
                            .where(p.c.photometry_id.in_(list(ids)))).all()
    return {int(r[0]): (r[1], r[2]) for r in rows if r[1] is not None}


def curve_rows(engine: sa.Engine, who: Principal, target_ids: Sequence[int], *,
               band: str | None = None, mjd_min: float | None = None,
               mjd_max: float | None = None, source: str | None = None,
               centre: tuple[float, float] | None = None) -> list[CurveRow]:
    """One row per star x band curve of the targets (in their order).

    A row is the star's curve as ``/lightcurve/star/<id>/<band>`` joins it
    (fetchable nights, the default calibration), narrowed to the nights that
    overlap ``mjd_min``/``mjd_max`` and come from ``source`` when given.
    A band whose nights are all withheld has a row with no points.
    """
    out: list[CurveRow] = []
    for target_id in target_ids:
        star = stars.find_star(engine, who, target_id, band)
        if star is None:
            continue
        with engine.connect() as conn:
            eph = ephemeris.default_ephemeris(conn, target_id, principal=who)
        distance = None
        if centre is not None:
            first = star.visible[0]
            distance = angular_distance(centre[0], centre[1], first.right_ascension,
                                        first.declination)

        def keep(s: stars.Series) -> bool:
            return ((source is None or s.source == source)
                    and (mjd_min is None or (s.mjd_end or 0.0) >= mjd_min)
                    and (mjd_max is None or (s.mjd_start or 0.0) <= mjd_max))

        seen = sorted({s.bandpass_uid for s in star.visible if keep(s)},
                      key=lambda b: next((s.wavelength_eff or 0.0) for s in star.visible
                                         if s.bandpass_uid == b))
        for b in seen:
            parts = stars.parts(star, [b], None, None)
            series = [s for p in parts for s in p.series if keep(s)]
            withheld = {s.observation_uuid for s in star.visible if s.bandpass_uid == b
                        and keep(s)} - {s.observation_uuid for s in star.fetchable
                                        if s.bandpass_uid == b}
            ranges = _mag_ranges(engine, [s.photometry_id for s in series])
            mags = [v for s in series if (v := ranges.get(s.photometry_id))]
            out.append(CurveRow(
                target_id=target_id, target=star.target, band=b,
                calibration=parts[0].calibration if parts else "",
                nights=len({s.observation_uuid for s in series}),
                points=sum(s.n_points for s in series),
                mjd_first=min((s.mjd_start for s in series), default=None),
                mjd_last=max((s.mjd_end for s in series), default=None),
                mag_min=min((m[0] for m in mags), default=None),
                mag_max=max((m[1] for m in mags), default=None),
                period=eph.period if eph else None, distance=distance,
                sources=sorted({s.source for s in series}),
                withheld=len(withheld)))
    return out
