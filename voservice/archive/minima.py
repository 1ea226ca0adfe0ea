"""``skvo.minimum`` as TAP and the O-C service read it.

The uploader stores each time of minimum once (:mod:`voservice.ingest.minima`):
as BJD_TDB, HJD_UTC and the UTC time as observed, with TT - UTC at that
time.  What depends on the target's default ephemeris -- which one it is,
primary or secondary, the cycle number E, the observed time in the
ephemeris' own time system, C and O-C -- is computed by the SELECT below
whenever it is read, so no stored value goes stale when ``skvo target
ephemeris`` adds, removes or re-defaults an ephemeris.

The observed time is taken in the ephemeris' time system: its reference
position picks the stored time (barycenter: BJD, heliocenter: HJD, else the
time as observed) and its time scale the offset (UTC: none, TT and TDB:
TT - UTC, TAI: TT - UTC - 32.184 s; TDB - TT, below 2 ms, is neglected;
TCB and TCG give null).  Only ephemerides of eclipsing binaries (var_type
null or starting with E) are used: a pulsator's epoch is a maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from voservice import tables
from voservice.access import Principal
from voservice.catalog import did_prefix, visible_select

#: phase tolerance of a primary (about 0) and a secondary (about 0.5) minimum
TOLERANCE = 0.1
SECONDS_PER_DAY = 86400.0
#: TT - TAI, seconds
TT_TAI = 32.184
#: var_type of the ephemerides minima are phased on (GCVS eclipsing types: E, EA, EB,
#: EW, ...; a null var_type counts too); a pulsator's epoch is a maximum
ECLIPSING_PREFIX = "E"


def eclipsing(eph: Any) -> bool:
    """Is ``eph`` (an Ephemeris or None) one minima are phased on?"""
    return eph is not None and (eph.var_type is None
                                or eph.var_type.upper().startswith(ECLIPSING_PREFIX))


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def minimum_select(principal: Principal, authority: str) -> sa.Select:
    """The rows of ``skvo.minimum`` the principal may see (the night's data may be
    fetched), with the columns computed against each target's default ephemeris."""
    m, o, b, e = _t("minimum"), _t("observation"), _t("bandpass"), _t("ephemeris")
    desc = tables.table("skvo.minimum")
    phased = sa.and_(e.c.ephemeris_id.is_not(None),
                     sa.or_(e.c.var_type.is_(None),
                            sa.func.upper(e.c.var_type).like(f"{ECLIPSING_PREFIX}%")))
    day = sa.literal(SECONDS_PER_DAY, sa.Double)
    in_utc = sa.case(
        (e.c.epoch_refpos == "barycenter", m.c.time_bjd - m.c.tt_utc / day),
        (e.c.epoch_refpos == "heliocenter", m.c.time_hjd),
        else_=m.c.time_utc)
    shift = sa.case(
        (e.c.epoch_timescale == "UTC", sa.literal(0.0, sa.Double)),
        (e.c.epoch_timescale.in_(("TT", "TDB")), m.c.tt_utc / day),
        (e.c.epoch_timescale == "TAI", (m.c.tt_utc - TT_TAI) / day),
        else_=sa.null())
    observed = sa.case((phased, in_utc + shift), else_=sa.null())
    x = (observed - e.c.epoch) / e.c.period
    e_primary = sa.func.round(x)
    e_secondary = sa.func.round(x - 0.5) + 0.5
    primary = sa.func.abs(x - e_primary) <= TOLERANCE
    secondary = sa.func.abs(x - e_secondary) <= TOLERANCE
    cycle = sa.case((primary, e_primary), (secondary, e_secondary), else_=sa.null())
    calculated = e.c.epoch + e.c.period * cycle
    computed = {
        "bandpass_uid": b.c.bandpass_uid,
        "night": o.c.night,
        "obs_publisher_did": sa.literal(did_prefix(authority), sa.String) + o.c.observation_uuid,
        "ephemeris_id": sa.case((phased, e.c.ephemeris_id), else_=sa.null()),
        "min_type": sa.case((primary, sa.literal("primary", sa.String)),
                            (secondary, sa.literal("secondary", sa.String)), else_=sa.null()),
        "cycle": sa.type_coerce(cycle, sa.Double),
        "time_ephem": sa.type_coerce(observed, sa.Double),
        "calculated": sa.type_coerce(calculated, sa.Double),
        "o_c": sa.type_coerce(observed - calculated, sa.Double),
    }
    columns = [computed[c.name].label(c.name) if c.computed else m.c[c.name]
               for c in desc.published_columns]
    join = (m.join(o, o.c.observation_id == m.c.observation_id)
            .join(b, b.c.bandpass_id == m.c.bandpass_id)
            .outerjoin(e, sa.and_(e.c.target_id == m.c.target_id, e.c.is_default == 1)))
    where = visible_select("skvo.minimum", principal).whereclause
    select = sa.select(*columns).select_from(join)
    return select if where is None else select.where(where)


@dataclass(frozen=True)
class MinimumRow:
    """One row of ``skvo.minimum`` as the O-C service uses it."""

    minimum_id: int
    night: str
    bandpass_uid: str
    obs_publisher_did: str
    time_bjd: float
    time_error: float
    method: str
    check_time: float | None
    min_type: str | None
    cycle: float | None
    time_ephem: float | None
    calculated: float | None
    o_c: float | None
    ephemeris_id: int | None


def star_minima(engine: sa.Engine, principal: Principal, authority: str, target_id: int,
                bands: Sequence[str] | None = None) -> list[MinimumRow]:
    """The times of minimum of a target (in some bands) the principal may see, in time
    order."""
    sub = minimum_select(principal, authority).where(
        _t("minimum").c.target_id == int(target_id)).subquery()
    query = sa.select(*(sub.c[f] for f in MinimumRow.__dataclass_fields__))
    if bands is not None:
        query = query.where(sub.c.bandpass_uid.in_(list(bands)))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(sub.c.time_bjd, sub.c.minimum_id)).all()
    return [MinimumRow(**row._mapping) for row in rows]
