"""Ephemerides of targets: period, epoch, variability type and their reference.

A target has any number of ephemerides (``skvo.ephemeris``), exactly one of
them the default (``is_default = 1``) as long as it has any.  They come from
the optional ``ephemeris.*`` columns of the meta CSV (origin ``provider``) and
from ``skvo target ephemeris`` (origin ``operator``); the first one a target
gets is its default until the operator picks another.

The epoch is stored as an MJD in its own time scale (``epoch_timescale``) at
its own reference position (``epoch_refpos``); input may be a full Julian
Date (``2458100.81``, also written ``JD``/``HJD``/``BJD 2458100.81``), an MJD
(``MJD 58100.31``) or a reduced JD (``RJD 58100.81`` = JD - 2400000).

Readers: :func:`default_ephemeris` and :func:`ephemerides` return frozen
:class:`Ephemeris` records; with ``principal=`` they return nothing for a
target the principal may not see (its ephemerides are hidden with it, in TAP
as well: the table's visibility is ``via:observation.target_id``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from voservice import tables
from voservice.access import Principal, visible_clause
from voservice.catalog import refresh_public_flags

#: time scales an epoch may be given in (VOTable TIMESYS names)
TIMESCALES = ("UTC", "TT", "TDB", "TAI", "TCB", "TCG")
#: reference positions of an epoch (as ``ts.timeframe_reference_position``)
REFPOSITIONS = ("topocenter", "geocenter", "heliocenter", "barycenter")
#: where an ephemeris comes from (``skvo.ephemeris.origin``)
ORIGINS = ("provider", "operator")
DEFAULT_TIMESCALE = "UTC"
DEFAULT_REFPOS = "heliocenter"
#: MJD = JD - this
MJD_OFFSET = 2_400_000.5
#: plausible Julian Dates of an epoch (763 AD to 3501 AD) and the MJDs they make
JD_RANGE = (2_000_000.0, 3_000_000.0)
#: longest period accepted, days (about 2,700 years)
MAX_PERIOD = 1.0e6
VAR_TYPE_LENGTH = 32
REFERENCE_LENGTH = 255

#: the fields of an ephemeris input and the meta CSV column of each
CSV_COLUMNS: dict[str, str] = {
    "period": "ephemeris.period",
    "epoch": "ephemeris.epoch",
    "timescale": "ephemeris.epoch_timescale",
    "refpos": "ephemeris.epoch_refpos",
    "var_type": "ephemeris.var_type",
    "reference": "ephemeris.reference",
}
#: the same fields as ``skvo target ephemeris`` parameters
CLI_PARAMETERS: dict[str, str] = {
    "period": "--period",
    "epoch": "--epoch",
    "timescale": "--timescale",
    "refpos": "--refpos",
    "var_type": "--type",
    "reference": "--ref",
}

_EPOCH = re.compile(r"^(?:(JD|HJD|BJD|MJD|RJD)\s*)?([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$",
                    re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class EphemerisSpec:
    """A validated ephemeris, not yet stored (epoch as MJD)."""

    period: float
    epoch: float
    timescale: str = DEFAULT_TIMESCALE
    refpos: str = DEFAULT_REFPOS
    var_type: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Ephemeris:
    """A stored ephemeris of a target (``skvo.ephemeris`` row)."""

    ephemeris_id: int
    target_id: int
    period: float  # days
    epoch: float  # MJD of zero phase, in epoch_timescale at epoch_refpos
    epoch_timescale: str  # UTC, TT, TDB, ...
    epoch_refpos: str  # topocenter, geocenter, heliocenter, barycenter
    var_type: str | None
    reference: str | None
    origin: str  # provider | operator
    is_default: bool

    @property
    def epoch_jd(self) -> float:
        """The epoch as a Julian Date."""
        return self.epoch + MJD_OFFSET

    def phase(self, mjd: float) -> float:
        """Phase in [0, 1) of an MJD given in the ephemeris' own time scale and position."""
        return float(((mjd - self.epoch) / self.period) % 1.0)


class EphemerisError(ValueError):
    """An ephemeris input that cannot be used; ``problems`` are (parameter, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))
        self.problems = problems


# --------------------------------------------------------------------------
# Validation


def _parse_epoch(text: str) -> tuple[float | None, str | None, str | None, str | None]:
    """(MJD, implied reference position, implied time scale, error) of an epoch text."""
    match = _EPOCH.match(text.strip())
    if not match:
        return None, None, None, (f"not an epoch: {text!r} (write a Julian Date such as "
                                  "2458100.81, or MJD 58100.31)")
    kind = (match.group(1) or "").upper()
    value = Decimal(match.group(2))  # exact: MJD 58100.31 is JD 2458100.81, digit for digit
    refpos = {"HJD": "heliocenter", "BJD": "barycenter"}.get(kind)
    timescale = "TDB" if kind == "BJD" else None
    offset = {"MJD": Decimal("2400000.5"), "RJD": Decimal("2400000")}.get(kind, Decimal(0))
    jd = value + offset
    lo, hi = JD_RANGE
    if not lo <= jd <= hi:
        if not kind:
            return None, None, None, (
                f"{text.strip()} is no full Julian Date (JD {lo:.0f} to {hi:.0f}); write "
                "the JD (e.g. 2458100.81) or mark the kind: MJD 58100.31, RJD 58100.81")
        return None, None, None, (f"{text.strip()} is out of range: the Julian Date must "
                                  f"lie from {lo:.0f} to {hi:.0f}")
    return float(jd - Decimal("2400000.5")), refpos, timescale, None


def parse_ephemeris(values: Mapping[str, str | None], names: Mapping[str, str]
                    ) -> tuple[EphemerisSpec | None, list[tuple[str, str]]]:
    """Validate an ephemeris given as texts; (spec, []) or (None, problems).

    ``values`` maps the fields (``period``, ``epoch``, ``timescale``,
    ``refpos``, ``var_type``, ``reference``) to their texts; ``names`` maps
    each field to what the input calls it (a CSV column, a command
    parameter), and problems are ``(name, message)``.  All fields empty:
    ``(None, [])`` (no ephemeris).  Period and epoch are required together.
    """
    text = {k: (values.get(k) or "").strip() for k in CSV_COLUMNS}
    if not any(text.values()):
        return None, []
    problems: list[tuple[str, str]] = []
    period = epoch = None
    implied_refpos = implied_timescale = None
    if not text["period"]:
        problems.append((names["period"], "required when an ephemeris is given"))
    else:
        try:
            period = float(text["period"])
        except ValueError:
            problems.append((names["period"], f"not a number: {text['period']!r}"))
        else:
            if not (math.isfinite(period) and 0 < period <= MAX_PERIOD):
                problems.append((names["period"], f"{text['period']} is out of range: the "
                                 f"period must be more than 0 and at most {MAX_PERIOD:g} days"))
                period = None
    if not text["epoch"]:
        problems.append((names["epoch"], "required when an ephemeris is given"))
    else:
        epoch, implied_refpos, implied_timescale, error = _parse_epoch(text["epoch"])
        if error:
            problems.append((names["epoch"], error))
    timescale = text["timescale"].upper() or implied_timescale or DEFAULT_TIMESCALE
    if timescale not in TIMESCALES:
        problems.append((names["timescale"],
                         f"{text['timescale']!r} is not one of {', '.join(TIMESCALES)}"))
    refpos = text["refpos"].lower() or implied_refpos or DEFAULT_REFPOS
    if refpos not in REFPOSITIONS:
        problems.append((names["refpos"],
                         f"{text['refpos']!r} is not one of {', '.join(REFPOSITIONS)}"))
    elif implied_refpos and refpos != implied_refpos:
        problems.append((names["refpos"], f"{refpos} contradicts the epoch "
                         f"{text['epoch'].split()[0]} (which refers to the {implied_refpos})"))
    for field, limit in (("var_type", VAR_TYPE_LENGTH), ("reference", REFERENCE_LENGTH)):
        if len(text[field]) > limit:
            problems.append((names[field], f"longer than {limit} characters"))
        elif _CONTROL.search(text[field]):
            problems.append((names[field], "contains control characters"))
    if problems or period is None or epoch is None:
        return None, problems
    return EphemerisSpec(period, epoch, timescale, refpos, text["var_type"] or None,
                         text["reference"] or None), []


# --------------------------------------------------------------------------
# Reading


def _table() -> sa.Table:
    return tables.sa_table("skvo.ephemeris")


def _record(row: sa.Row) -> Ephemeris:
    return Ephemeris(int(row.ephemeris_id), int(row.target_id), float(row.period),
                     float(row.epoch), row.epoch_timescale, row.epoch_refpos, row.var_type,
                     row.reference, row.origin, bool(row.is_default))


def _visible(target_id: int, principal: Principal | None) -> sa.ColumnElement[bool]:
    if principal is None or principal.admin:
        return sa.true()
    o = tables.sa_table("skvo.observation")
    return sa.exists().where(o.c.target_id == target_id,
                             visible_clause(principal, o.c.access, o.c.source))


def ephemerides(conn: sa.Connection, target_id: int, *, principal: Principal | None = None
                ) -> list[Ephemeris]:
    """The ephemerides of a target, the default first, then in the order they were added.

    With ``principal``: none when the principal may not see the target.
    """
    e = _table()
    rows = conn.execute(sa.select(e).where(e.c.target_id == int(target_id),
                                           _visible(int(target_id), principal))
                        .order_by(e.c.is_default.desc(), e.c.ephemeris_id))
    return [_record(r) for r in rows]


def default_ephemeris(conn: sa.Connection, target_id: int, *,
                      principal: Principal | None = None) -> Ephemeris | None:
    """The default ephemeris of a target (None: it has none, or ``principal`` may not see it)."""
    e = _table()
    row = conn.execute(sa.select(e).where(e.c.target_id == int(target_id), e.c.is_default == 1,
                                          _visible(int(target_id), principal))
                       .order_by(e.c.ephemeris_id).limit(1)).first()
    return _record(row) if row is not None else None


# --------------------------------------------------------------------------
# Writing (inside the caller's transaction)


def _same(spec: EphemerisSpec) -> list[sa.ColumnElement[bool]]:
    e = _table()

    def eq(col: sa.ColumnElement, value: str | None) -> sa.ColumnElement[bool]:
        return col.is_(None) if value is None else col == value

    return [e.c.period == spec.period, e.c.epoch == spec.epoch,
            e.c.epoch_timescale == spec.timescale, e.c.epoch_refpos == spec.refpos,
            eq(e.c.var_type, spec.var_type), eq(e.c.reference, spec.reference)]


def add_ephemeris(conn: sa.Connection, target_id: int, spec: EphemerisSpec, origin: str,
                  make_default: bool = False) -> tuple[Ephemeris, bool]:
    """Store an ephemeris of a target unless an identical one exists; (record, added).

    The target's first ephemeris becomes its default; ``make_default``
    makes this one the default (the previous default stops being one).
    Keeps the rows' ``public`` flag.
    """
    if origin not in ORIGINS:
        raise ValueError(f"unknown ephemeris origin {origin!r}")
    e = _table()
    target_id = int(target_id)
    found = conn.execute(sa.select(e.c.ephemeris_id).where(
        e.c.target_id == target_id, *_same(spec)).order_by(e.c.ephemeris_id)).scalar()
    added = found is None
    if added:
        has_default = conn.execute(sa.select(e.c.ephemeris_id).where(
            e.c.target_id == target_id, e.c.is_default == 1).limit(1)).first() is not None
        found = conn.execute(e.insert().values(
            target_id=target_id, period=spec.period, epoch=spec.epoch,
            epoch_timescale=spec.timescale, epoch_refpos=spec.refpos, var_type=spec.var_type,
            reference=spec.reference, origin=origin, is_default=0 if has_default else 1,
        )).inserted_primary_key[0]
        refresh_public_flags(conn, "skvo.ephemeris", "target_id", target_id)
    if make_default:
        set_default(conn, target_id, int(found))
    row = conn.execute(sa.select(e).where(e.c.ephemeris_id == int(found))).one()
    return _record(row), added


def set_default(conn: sa.Connection, target_id: int, ephemeris_id: int) -> bool:
    """Make an ephemeris of a target its default; False when the target has no such one."""
    e = _table()
    exists = conn.execute(sa.select(e.c.ephemeris_id).where(
        e.c.target_id == int(target_id), e.c.ephemeris_id == int(ephemeris_id))).first()
    if exists is None:
        return False
    conn.execute(e.update().where(e.c.target_id == int(target_id),
                                  e.c.ephemeris_id != int(ephemeris_id)).values(is_default=0))
    conn.execute(e.update().where(e.c.ephemeris_id == int(ephemeris_id)).values(is_default=1))
    return True


def remove_ephemeris(conn: sa.Connection, target_id: int, ephemeris_id: int
                     ) -> tuple[Ephemeris | None, Ephemeris | None]:
    """Remove an ephemeris of a target; (removed or None, the new default if it changed).

    When the default goes, the oldest remaining ephemeris becomes the default.
    """
    e = _table()
    row = conn.execute(sa.select(e).where(e.c.target_id == int(target_id),
                                          e.c.ephemeris_id == int(ephemeris_id))).first()
    if row is None:
        return None, None
    gone = _record(row)
    conn.execute(e.delete().where(e.c.ephemeris_id == gone.ephemeris_id))
    promoted = None
    if gone.is_default:
        successor = conn.execute(sa.select(e.c.ephemeris_id).where(
            e.c.target_id == int(target_id)).order_by(e.c.ephemeris_id).limit(1)).scalar()
        if successor is not None:
            set_default(conn, int(target_id), int(successor))
            promoted = default_ephemeris(conn, int(target_id))
    return gone, promoted


def describe(eph: Ephemeris) -> str:
    """One line for ``skvo target ephemerides``: tab-separated fields."""
    return "\t".join([
        str(eph.ephemeris_id), "default" if eph.is_default else "-",
        f"P={eph.period:.10g} d", f"E=MJD {eph.epoch:.6f} (JD {eph.epoch_jd:.6f})",
        eph.epoch_timescale, eph.epoch_refpos, eph.var_type or "-", eph.reference or "-",
        eph.origin])
