"""SQL functions the SQLite translation relies on.

Call :func:`register` on every ``sqlite3`` connection that runs translated
queries.  Domain errors give NULL (as MySQL does) instead of exceptions.
"""

from __future__ import annotations

import math
import random
import re
import sqlite3
from collections.abc import Callable
from functools import lru_cache


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
    x, n = _num(x), int(_num(n))
    if isinstance(x, int) and n >= 0:
        return x
    f = 10.0 ** n
    v = math.floor(abs(x) * f + 0.5) / f
    v = -v if x < 0 else v
    return int(v) if isinstance(x, int) else v


def _trunc(x, n=0):
    x, n = _num(x), int(_num(n))
    if isinstance(x, int) and n >= 0:
        return x
    f = 10.0 ** n
    v = math.trunc(x * f) / f
    return int(v) if isinstance(x, int) else v


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


def register(conn: sqlite3.Connection) -> None:
    """Register every function the SQLite translation emits on ``conn``."""
    for name, (nargs, fn, det) in FUNCTIONS.items():
        wrapped = _f1(fn) if nargs == 1 else _f2(fn) if nargs == 2 else _safe(fn)
        conn.create_function(name, nargs, wrapped, deterministic=det)
    conn.create_function("pi", 0, lambda: math.pi, deterministic=True)
    conn.create_function("adql_rand", 0, _rand)
    conn.create_function("adql_rand", 1, _safe(_rand))
