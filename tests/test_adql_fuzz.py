"""Property-based tests: only ADQLError ever escapes parse/translate."""

from __future__ import annotations

import os
import re
import sqlite3

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import adql
from adql.sqlite_functions import register, take_error


def _load_grammar_tests():
    # shared schema and feature queries (no package __init__ in tests/)
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("test_adql_grammar.py")
    spec = importlib.util.spec_from_file_location("_adql_grammar_shared", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_shared = _load_grammar_tests()
FEATURES, SCHEMA = _shared.FEATURES, _shared.SCHEMA

SETTINGS = settings(max_examples=int(os.environ.get("ADQL_FUZZ_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "SELECT", "TOP", "5", "DISTINCT", "*", ",", "FROM", "skvo.target", "ivoa.obscore", "t",
    "AS", "WHERE", "AND", "OR", "NOT", "(", ")", "=", "<", ">=", "<>", "+", "-", "/", "||",
    "id", "mag", "name", "right_ascension", "declination", "s_ra", "'a%'", "1", "0.5",
    "1e3", "NULL", "IS", "IN", "LIKE", "ILIKE", "BETWEEN", "EXISTS", "JOIN", "ON", "USING",
    "NATURAL", "LEFT", "OUTER", "GROUP", "BY", "HAVING", "ORDER", "DESC", "OFFSET", "UNION",
    "INTERSECT", "EXCEPT", "WITH", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "INTEGER",
    "POINT", "CIRCLE", "POLYGON", "BOX", "CONTAINS", "INTERSECTS", "DISTANCE", "COUNT",
    "AVG", "ABS", "LOG", "MOD", "'ICRS'", "\"dec\"", ".", "--x\n", "~", "&", "|", "^",
    "COORD1", "AREA", "CENTROID", "REGION", "IN_UNIT", "'deg'", "'", "\"",
]


def _check(text: str) -> None:
    try:
        q = adql.parse(text)
    except adql.ADQLError as e:
        assert isinstance(e.line, int) and isinstance(e.column, int) and e.message
        return
    for dialect in ("sqlite", "mysql"):
        try:
            adql.translate(q, SCHEMA[dialect], dialect)
        except adql.ADQLError as e:
            assert e.message


@SETTINGS
@given(st.text(max_size=200))
def test_garbage_text(text):
    _check(text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30))
def test_token_soup(tokens):
    _check(" ".join(tokens))


@SETTINGS
@given(st.sampled_from(FEATURES), st.integers(0, 400), st.sampled_from(TOKENS + ["", " "]))
def test_mutated_valid_queries(q, pos, tok):
    pos = min(pos, len(q))
    _check(q[:pos] + " " + tok + " " + q[pos:])
    _check(q[:pos] + q[pos + 1:])


# random valid queries from a small generator: translation never crashes and
# the SQLite translation always executes
NUM_COLS = ["id", "mag", "right_ascension", "declination", "flag"]


def _num_expr(depth):
    leaf = st.one_of(st.sampled_from(NUM_COLS), st.integers(-5, 1000).map(str),
                     st.floats(-1e3, 1e3, allow_nan=False).map(lambda f: repr(f)))
    if depth == 0:
        return leaf
    sub = _num_expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["ABS", "FLOOR", "CEILING", "SQRT", "LOG", "EXP", "SIN",
                                   "ROUND", "TRUNCATE", "DEGREES"]), sub).map(
            lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"MOD({t[0]}, {t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"COALESCE({t[0]}, {t[1]})"),
    )


def _cond(depth):
    expr = _num_expr(1)
    leaf = st.one_of(
        st.tuples(expr, st.sampled_from(["=", "<", ">", "<=", ">=", "<>"]), expr).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(expr, expr, expr).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
        st.sampled_from(["name LIKE 'a%'", "name ILIKE '_B%'", "mag IS NULL",
                         "id IN (1, 2, 3)"]),
        st.tuples(st.floats(0, 360), st.floats(-90, 90), st.floats(0, 200)).map(
            lambda t: "1 = CONTAINS(POINT(right_ascension, declination), "
                      f"CIRCLE({t[0]!r}, {t[1]!r}, {t[2]!r}))"),
    )
    if depth == 0:
        return leaf
    sub = _cond(depth - 1)
    return st.one_of(leaf, st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"), sub.map(lambda c: f"NOT ({c})"))


@st.composite
def valid_queries(draw):
    items = draw(st.lists(_num_expr(2), min_size=1, max_size=4))
    q = "SELECT "
    if draw(st.booleans()):
        q += f"TOP {draw(st.integers(0, 50))} "
    q += ", ".join(items) + " FROM skvo.target"
    if draw(st.booleans()):
        q += " WHERE " + draw(_cond(2))
    if draw(st.booleans()):
        q += f" ORDER BY {draw(st.integers(1, len(items)))}"
    return q


_CONN = sqlite3.connect(":memory:")
register(_CONN)
_CONN.execute("CREATE TABLE target (id INTEGER, right_ascension REAL, declination REAL, "
              "mag REAL, name TEXT, dec REAL, flag INTEGER)")
_CONN.executemany("INSERT INTO target VALUES (?,?,?,?,?,?,?)",
                  [(i, i * 3.6 % 360, (i % 180) - 89.5, i / 7 if i % 5 else None, f"aB{i}",
                    0.0, i % 8) for i in range(100)])


@SETTINGS
@given(valid_queries())
@example("SELECT (1 / 2.225073858507e-311) FROM skvo.target")  # folding overflowed
@example("SELECT 9223372036854775807 + 1, 1e308 * 10 FROM skvo.target")
def test_random_valid_queries(q):
    try:
        t = adql.translate(q, SCHEMA["sqlite"], "sqlite")
    except adql.ADQLError as e:  # constants outside a domain or range: SQL's error
        with pytest.raises(adql.ADQLError, match=re.escape(e.message)):
            adql.translate(q, SCHEMA["mysql"], "mysql")
        return
    try:
        _CONN.execute(t.sql).fetchall()
    except sqlite3.OperationalError:  # a value outside an operation's domain, named
        assert take_error()
    adql.translate(q, SCHEMA["mysql"], "mysql")


# geometry predicates over every pair of shapes, constant or from columns, with odd
# numbers: they translate (or raise ADQLError) and the SQLite translation executes
_FLOAT = st.floats(-400, 400, allow_nan=False).map(repr)
_NUM = st.one_of(_FLOAT, _FLOAT, _FLOAT, st.sampled_from(
    ["0", "90", "-90", "180", "360", "1e308 * 10", "(1e308 * 10 - 1e308 * 10)", "1e-300",
     "0.0002777", "1e999"]))
_COORD = st.one_of(_NUM, st.sampled_from(["right_ascension", "declination", "mag",
                                          "mag / 100"]))


def _shape(kind):
    if kind == "POINT":
        return st.tuples(_COORD, _COORD).map(lambda t: f"POINT({t[0]}, {t[1]})")
    if kind == "CIRCLE":
        return st.tuples(_COORD, _COORD, _COORD).map(lambda t: f"CIRCLE({t[0]}, {t[1]}, {t[2]})")
    if kind == "BOX":
        return st.tuples(_NUM, _NUM, _NUM, _NUM).map(lambda t: f"BOX({', '.join(t)})")
    return st.lists(st.tuples(_COORD, _COORD), min_size=3, max_size=5).map(
        lambda vs: "POLYGON(" + ", ".join(f"{a}, {b}" for a, b in vs) + ")")


_SHAPES = st.sampled_from(["POINT", "CIRCLE", "BOX", "POLYGON"]).flatmap(_shape)


@SETTINGS
@given(st.sampled_from(["CONTAINS", "INTERSECTS"]), _SHAPES, _SHAPES)
def test_geometry_predicates(fn, a, b):
    q = f"SELECT id FROM skvo.target WHERE {fn}({a}, {b}) = 1"
    try:
        t = adql.translate(q, SCHEMA["sqlite"], "sqlite")
    except adql.ADQLError as e:
        assert e.message
        return
    _CONN.execute(t.sql).fetchall()
    adql.translate(q, SCHEMA["mysql"], "mysql")
