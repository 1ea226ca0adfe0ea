"""SQL functions the SQLite translation relies on.

Call :func:`register` on every ``sqlite3`` connection that runs translated
queries.  The plain names (``sqrt``, ``asin``, ...) serve the geometry SQL and
give NULL outside their domain; the ``adql_*`` ones the translator emits for
the ADQL functions, operators and casts a user writes raise an error there
(as SQL does: division by zero, SQRT of a negative number, a cast of 'abc' to
INTEGER, a value out of a type's range).  SQLite reports an exception in a
function only as "user-defined function raised exception": the message is
kept per thread, :func:`take_error` gives it to whoever handles the error.
"""

from __future__ import annotations

import math
import random
import re
import sqlite3
import threading
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NoReturn

from .functions import DOMAINS


def _safe(fn: Callable) -> Callable:
    def wrapper(*args):
        if any(a is None for a in args):
            return None
        try:
            r = fn(*args)
        except (ValueError, OverflowError, ZeroDivisionError, TypeError):
            return None
        if isinstance(r, float) and not math.isfinite(r):
            return None
        return r

    return wrapper


def _num(x):
    if isinstance(x, int | float):
        return x
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def _cot(x):
    return 1.0 / math.tan(_num(x))


def _log10(x):
    return math.log10(_num(x))


def _ln(x):
    return math.log(_num(x))


def _ceiling(x):
    x = _num(x)
    return math.ceil(x) if isinstance(x, int) else float(math.ceil(x))


def _floor(x):
    x = _num(x)
    return math.floor(x) if isinstance(x, int) else float(math.floor(x))


def _mod(a, b):
    a, b = _num(a), _num(b)
    if b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    return math.fmod(a, b)


def _round(x, n=0):
    """ROUND(x, n): half away from zero on the decimal value (a double's shortest
    representation), as PostgreSQL's round(numeric, int): ROUND(-1.005, 2) = -1.01."""
    x, n = _num(x), int(_num(n))
    if isinstance(x, int) and n >= 0:
        return x
    return _quantize(x, n, ROUND_HALF_UP)


def _trunc(x, n=0):
    """TRUNCATE(x, n) towards zero on the decimal value: TRUNCATE(1.15, 2) = 1.15."""
    x, n = _num(x), int(_num(n))
    if isinstance(x, int) and n >= 0:
        return x
    return _quantize(x, n, ROUND_DOWN)


def _quantize(x, n: int, mode: str):
    if isinstance(x, float) and (not math.isfinite(x) or abs(x) >= 1e34):
        return x  # no decimals left (the MySQL translation's limit too)
    d = Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
    if d.as_tuple().exponent >= -n:
        return x
    r = d.quantize(Decimal(1).scaleb(-n), rounding=mode)
    return int(r) if isinstance(x, int) else float(r)


def _rint(x):
    """ROUND(x) of a double precision value: half to even (PostgreSQL's round(double))."""
    x = _num(x)
    return x if isinstance(x, int) or not math.isfinite(x) else float(round(x))


def _power(a, b):
    return math.pow(_num(a), _num(b))


def _rand(seed=None):
    return random.random() if seed is None else random.Random(seed).random()


@lru_cache(maxsize=256)
def _like_re(pattern: str, ci: bool) -> re.Pattern:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.S | (re.I if ci else 0))


def _like(value, pattern):
    return 1 if _like_re(str(pattern), False).match(str(value)) else 0


def _ilike(value, pattern):
    return 1 if _like_re(str(pattern), True).match(str(value)) else 0


# the implemented user-defined functions (adql.IMPLEMENTED_UDFS) that need Python here:
# SQLite's LOWER and LIKE only fold ASCII letters

def _nocasematch(value, pattern):
    return _ilike(value, pattern)


@lru_cache(maxsize=256)
def _word_re(word: str) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9_])" + re.escape(word) + r"(?![a-z0-9_])")


def _hasword(haystack, word):
    word = str(word).lower()
    if not word:
        return 0
    return 1 if _word_re(word).search(str(haystack).lower()) else 0


def _hashlist_has(hashlist, item):
    return 1 if f"#{str(item).lower()}#" in f"#{str(hashlist).lower()}#" else 0


def _f1(f):
    def g(x):
        if x is None:
            return None
        try:
            r = f(x)
        except (ValueError, OverflowError, ZeroDivisionError, TypeError):
            return None
        return r if r == r and r not in (math.inf, -math.inf) else None

    return g


def _f2(f):
    def g(x, y):
        if x is None or y is None:
            return None
        try:
            r = f(x, y)
        except (ValueError, OverflowError, ZeroDivisionError, TypeError):
            return None
        return r if r == r and r not in (math.inf, -math.inf) else None

    return g


# -- checked functions: the ADQL a user writes --------------------------------------

_ERRORS = threading.local()


class DomainError(ValueError):
    """A value outside an operation's domain or a type's range (the message says which)."""


def fail(message: str) -> NoReturn:
    """Raise a :class:`DomainError` and keep its message for :func:`take_error`."""
    _ERRORS.message = message
    raise DomainError(message)


def take_error() -> str | None:
    """The message of the last checked function that failed in this thread (and forget it)."""
    message = getattr(_ERRORS, "message", None)
    _ERRORS.message = None
    return message


_PY = {"SIN": math.sin, "COS": math.cos, "TAN": math.tan, "COT": _cot, "ASIN": math.asin,
       "ACOS": math.acos, "ATAN": math.atan, "ATAN2": math.atan2, "SQRT": math.sqrt,
       "EXP": math.exp, "LOG": _ln, "LOG10": _log10, "POWER": math.pow,
       "DEGREES": math.degrees, "RADIANS": math.radians}


def _checked(name: str) -> Callable:
    fn = _PY[name]
    domain = DOMAINS.get(name)

    def g(*args):
        if any(a is None for a in args):
            return None
        xs = [_num(a) for a in args]
        if domain is not None and not domain[0](*xs):
            fail(domain[1])
        if name == "POWER" and xs[0] < 0 and not float(xs[1]).is_integer():
            fail("a negative number raised to a non-integer power")
        try:
            r = fn(*xs)
        except (OverflowError, ValueError):
            fail(f"the value of {name} is out of range")
        if not math.isfinite(r):
            fail(f"the value of {name} is out of range")
        return r

    return g


def _nonzero(b):
    """The divisor ``b`` of a division, checked: SQLite's x / 0 is NULL, SQL's an error."""
    if b is not None and _num(b) == 0:
        fail("division by zero")
    return b


def _mod_checked(a, b):
    if a is None or b is None:
        return None
    if _num(b) == 0:
        fail("division by zero (MOD)")
    return _mod(a, b)


#: the error of an arithmetic overflow, which SQLite lets pass (a REAL beyond 64-bit
#: integers, Inf beyond a double) and MariaDB and PostgreSQL raise (voservice.query
#: words MariaDB's the same)
OVERFLOW = "numeric value out of range in an arithmetic operation (an overflow)"


def _out_int(v):
    """An integer result as it leaves the query: beyond 64 bits SQLite made it a REAL."""
    if isinstance(v, float) and not -(2.0**63) < v < 2.0**63:  # -2**63 as a REAL: too
        fail(OVERFLOW)
    return v


def _out_float(v):
    """A double result as it leaves the query: beyond the double range SQLite made it
    Inf (an overflow: no stored value is infinite)."""
    if isinstance(v, float) and math.isinf(v):
        fail(OVERFLOW)
    return v


def _xor(a, b):
    if a is None or b is None:
        return None
    return int(_num(a)) ^ int(_num(b))


#: CAST target -> (lowest, highest value)
INT_RANGES = {"SMALLINT": (-(2**15), 2**15 - 1), "INTEGER": (-(2**31), 2**31 - 1),
              "BIGINT": (-(2**63), 2**63 - 1)}
REAL_MAX = 3.4028234663852886e38
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*\Z")
_FLOAT_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*\Z")


def _to_int(x, target, exact):
    """CAST(x AS SMALLINT/INTEGER/BIGINT): text must be an integer, a double rounds half
    to even (an exact decimal, ``exact``, half away from zero), the value must fit."""
    if x is None:
        return None
    if isinstance(x, bytes):
        x = x.decode("utf-8", "replace")
    if isinstance(x, str):
        if not _INT_TEXT.match(x):
            fail(f"invalid input for CAST to {target}: {x[:40]!r}")
        v = int(x)
    elif isinstance(x, float):
        if not math.isfinite(x):
            fail(f"{x} cannot be cast to {target}")
        v = int(_quantize(x, 0, ROUND_HALF_UP)) if exact else int(round(x))
    else:
        v = int(x)
    lo, hi = INT_RANGES[target]
    if not lo <= v <= hi:
        fail(f"value out of range for {target}")
    return v


def _to_float(x, target):
    """CAST(x AS REAL/DOUBLE PRECISION): text must be a number, a REAL must fit."""
    if x is None:
        return None
    if isinstance(x, bytes):
        x = x.decode("utf-8", "replace")
    if isinstance(x, str):
        if not _FLOAT_TEXT.match(x):
            fail(f"invalid input for CAST to {target}: {x[:40]!r}")
        v = float(x)
    else:
        v = float(x)
    if not math.isfinite(v) or (target == "REAL" and abs(v) > REAL_MAX):
        fail(f"value out of range for {target}")
    return v


def _numtext(x):
    """A number as MariaDB writes it in text (CONCAT, CAST AS CHAR): a double's
    shortest round-trip digits, positional for decimal exponents -15 < e <= 15,
    else like 1.5e-16 or 1e15; so that STC-S strings and casts agree digit for digit."""
    if x is None or isinstance(x, str | bytes):
        return x
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return repr(x)
    if x == 0:
        return "0"
    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    n, decpt = len(ds), len(ds) + exp
    if -15 < decpt <= 15:
        if decpt <= 0:
            text = "0." + "0" * -decpt + ds
        elif decpt >= n:
            text = ds + "0" * (decpt - n)
        else:
            text = ds[:decpt] + "." + ds[decpt:]
    else:
        text = ds[0] + ("." + ds[1:] if n > 1 else "") + f"e{decpt - 1}"
    return ("-" if sign else "") + text


def _case(convert):
    """Python's str.upper/lower one character at a time (a character that becomes two,
    as the German sharp s, stays): what MariaDB and PostgreSQL do."""
    def g(s):
        if s is None:
            return None
        s = s if isinstance(s, str) else str(s)
        out = convert(s)
        if len(out) == len(s):
            return out
        return "".join(c2 if len(c2 := convert(c)) == 1 else c for c in s)

    return g


FUNCTIONS: dict[str, tuple[int, Callable, bool]] = {
    "sin": (1, math.sin, True),
    "cos": (1, math.cos, True),
    "tan": (1, math.tan, True),
    "cot": (1, _cot, True),
    "asin": (1, math.asin, True),
    "acos": (1, math.acos, True),
    "atan": (1, math.atan, True),
    "atan2": (2, math.atan2, True),
    "sqrt": (1, math.sqrt, True),
    "exp": (1, math.exp, True),
    "ln": (1, _ln, True),
    "log10": (1, _log10, True),
    "power": (2, math.pow, True),
    "degrees": (1, math.degrees, True),
    "radians": (1, math.radians, True),
    "ceiling": (1, _ceiling, True),
    "floor": (1, _floor, True),
    "adql_mod": (2, _mod, True),
    "adql_round": (2, _round, True),
    "adql_trunc": (2, _trunc, True),
    "adql_like": (2, _like, True),
    "adql_ilike": (2, _ilike, True),
    "ivo_nocasematch": (2, _nocasematch, True),
    "ivo_hasword": (2, _hasword, True),
    "ivo_hashlist_has": (2, _hashlist_has, True),
}

#: the checked functions (they raise; NULL in gives NULL out), by SQL name
CHECKED: dict[str, tuple[int, Callable]] = {
    **{f"adql_{'ln' if name == 'LOG' else name.lower()}":
       (2 if name in ("ATAN2", "POWER") else 1, _checked(name)) for name in _PY},
    "adql_mod_checked": (2, _mod_checked),
    "adql_rint": (1, _f1(_rint)),
    "adql_to_int": (3, _to_int),
    "adql_to_float": (2, _to_float),
    "adql_numtext": (1, _numtext),
    "adql_upper": (1, _case(str.upper)),
    "adql_lower": (1, _case(str.lower)),
    "adql_nz": (1, _nonzero),
    "adql_out_int": (1, _out_int),
    "adql_out_float": (1, _out_float),
    "adql_xor": (2, _xor),
}


def register(conn: sqlite3.Connection) -> None:
    """Register every function the SQLite translation emits on ``conn``."""
    for name, (nargs, fn, det) in FUNCTIONS.items():
        wrapped = _f1(fn) if nargs == 1 else _f2(fn) if nargs == 2 else _safe(fn)
        conn.create_function(name, nargs, wrapped, deterministic=det)
    for name, (nargs, fn) in CHECKED.items():
        conn.create_function(name, nargs, fn, deterministic=True)
    conn.create_function("pi", 0, lambda: math.pi, deterministic=True)
    conn.create_function("adql_rand", 0, _rand)
    conn.create_function("adql_rand", 1, _safe(_rand))
