"""The unit of an ADQL value expression, for IN_UNIT (ADQL 2.1 section 4.5.3.1).

A unit is ``None`` (unknown), a string (a column's unit, as the table declares it) or
a derived unit: a tuple ``("mul", a, b)``, ``("div", a, b)`` or ``("pow", a, p)`` of
units.  The algebra here is pure and cheap (translation builds it for every
arithmetic operation); astropy.units reads it only when IN_UNIT converts
(:func:`conversion_factor`), imported then.
"""

from __future__ import annotations

from typing import Any

Unit = Any  # None | str | tuple


def _same(a: Unit) -> Unit:
    """``a`` for IN_UNIT only: results computed from a column are not declared with its
    unit unless they were before (equal units added), so ``mag * 2`` has none."""
    return a if a is None or isinstance(a, tuple) else ("pow", a, 1)


def _core(a: Unit) -> Unit:
    while isinstance(a, tuple) and a[0] == "pow" and a[2] == 1:
        a = a[1]
    return a


def add(a: Unit, b: Unit, a_const: bool, b_const: bool) -> Unit:
    """The unit of ``a + b`` or ``a - b``: equal units keep it; a bare number adopts the
    unit of the other side (``ra + 10``); anything else is unknown."""
    if a is not None and a == b:
        return a
    if a is not None and _core(a) == _core(b):
        return _same(a)
    if a_const and b is not None:
        return _same(b)
    if b_const and a is not None:
        return _same(a)
    return None


def mul(a: Unit, b: Unit, a_const: bool, b_const: bool) -> Unit:
    """The unit of ``a * b`` (a bare number is dimensionless)."""
    if a_const:
        return _same(b)
    if b_const:
        return _same(a)
    if a is None or b is None:
        return None
    return ("mul", a, b)


def div(a: Unit, b: Unit, a_const: bool, b_const: bool) -> Unit:
    """The unit of ``a / b`` (a bare number is dimensionless)."""
    if b_const:
        return _same(a)
    if b is None:
        return None
    if a_const:
        return ("pow", b, -1)
    if a is None:
        return None
    return ("div", a, b)


def power(a: Unit, p: float | int | None) -> Unit:
    """The unit of ``a`` raised to the constant power ``p`` (unknown if ``p`` is not
    constant)."""
    if a is None or p is None or isinstance(p, bool):
        return None
    return ("pow", a, p)


def output(unit: Unit) -> str | None:
    """The unit to declare for a result column: only units written as strings (a
    column's unit, an IN_UNIT target); derived ones are for IN_UNIT only."""
    return unit if isinstance(unit, str) else None


def to_astropy(unit: Unit):
    """``unit`` as an astropy unit; raises ValueError (or astropy's errors) if it
    cannot be read."""
    from astropy import units as u

    if unit is None:
        raise ValueError("unknown unit")
    if isinstance(unit, str):
        return u.Unit(unit)
    op, a, b = unit
    if op == "mul":
        return to_astropy(a) * to_astropy(b)
    if op == "div":
        return to_astropy(a) / to_astropy(b)
    return to_astropy(a) ** b


def conversion_factor(unit: Unit, target: str) -> float:
    """The factor that converts values in ``unit`` to ``target``; raises ValueError
    when they are not convertible (or a unit cannot be read)."""
    from astropy import units as u

    try:
        return float(to_astropy(unit).to(u.Unit(target)))
    except Exception as exc:  # noqa: BLE001 - astropy raises many types
        raise ValueError(str(exc)) from None
