"""Grammar features, translation shapes, errors with positions, safety."""

from __future__ import annotations

import sqlite3

import pytest

import adql
from adql import Column, Schema, Table
from adql.geometry import cone_bbox, cone_sql
from adql.sqlite_functions import register


def make_schema(quote: str = '"') -> Schema:
    def q(x):
        return f"{quote}{x}{quote}"

    return Schema([
        Table("skvo.target", (
            Column("id", "long"), Column("right_ascension", "double", unit="deg"),
            Column("declination", "double", unit="deg"), Column("mag", "double", unit="mag",
                                                               ucd="phot.mag"),
            Column("name", "char", "*"), Column("dec", "double", unit="deg"),
            Column("flag", "int"),
        ), q("target")),
        Table("ivoa.obscore", (
            Column("obs_id", "char", "*"), Column("s_ra", "double", unit="deg"),
            Column("s_dec", "double", unit="deg"), Column("ra", "double", unit="deg"),
            Column("target_id", "long"), Column("t_min", "double", xtype="mjd"),
            Column("s_region", "double", "*", xtype="polygon"),
        ), q("obscore")),
        Table("TAP_UPLOAD.mine", (Column("ra", "double"), Column("dec", "double"),
                                  Column("Name", "char", "*")), q("upload_mine")),
    ])


SCHEMA = {"sqlite": make_schema('"'), "mysql": make_schema("`")}

# queries exercising the language; each must parse and translate for both dialects
FEATURES = [
    "SELECT * FROM skvo.target",
    "SELECT TOP 10 id, mag FROM skvo.target",
    "SELECT DISTINCT TOP 3 name FROM skvo.target",
    "SELECT ALL name FROM target",
    "SELECT id AS \"Ident\", mag m FROM skvo.target AS t",
    "SELECT t.* FROM skvo.target t",
    "SELECT skvo.target.id FROM skvo.target",
    "SELECT * FROM skvo.target, ivoa.obscore",
    "SELECT * FROM skvo.target AS t JOIN ivoa.obscore AS o ON t.id = o.target_id",
    "SELECT * FROM skvo.target AS t INNER JOIN ivoa.obscore AS o ON t.id = o.target_id",
    "SELECT * FROM skvo.target AS t LEFT OUTER JOIN ivoa.obscore AS o ON t.id = o.target_id",
    "SELECT * FROM skvo.target AS t RIGHT JOIN ivoa.obscore AS o ON t.id = o.target_id",
    "SELECT * FROM skvo.target CROSS JOIN ivoa.obscore",
    "SELECT * FROM skvo.target AS a NATURAL JOIN skvo.target AS b",
    "SELECT id, a.mag, b.mag FROM skvo.target AS a JOIN skvo.target AS b USING (id)",
    "SELECT * FROM (SELECT id, mag FROM skvo.target WHERE mag < 10) AS q WHERE q.id > 3",
    "SELECT id FROM skvo.target WHERE id IN (SELECT target_id FROM ivoa.obscore)",
    "SELECT id FROM skvo.target AS t WHERE EXISTS (SELECT 1 FROM ivoa.obscore AS o "
    "WHERE o.target_id = t.id)",
    "SELECT id, (SELECT MAX(mag) FROM skvo.target) AS m FROM skvo.target",
    "SELECT id FROM skvo.target WHERE mag > (SELECT AVG(mag) FROM skvo.target)",
    "SELECT flag, COUNT(*) AS n, AVG(mag), MIN(mag), MAX(mag), SUM(mag) FROM skvo.target "
    "GROUP BY flag HAVING COUNT(*) > 2 ORDER BY n DESC",
    "SELECT COUNT(DISTINCT name) FROM skvo.target",
    "SELECT id FROM skvo.target ORDER BY mag DESC, 1 ASC OFFSET 10",
    "SELECT id FROM skvo.target OFFSET 5",
    "SELECT id FROM skvo.target UNION SELECT target_id FROM ivoa.obscore",
    "SELECT id FROM skvo.target UNION ALL SELECT target_id FROM ivoa.obscore ORDER BY 1",
    "SELECT id FROM skvo.target INTERSECT SELECT target_id FROM ivoa.obscore",
    "SELECT id FROM skvo.target EXCEPT SELECT target_id FROM ivoa.obscore",
    "(SELECT TOP 2 id FROM skvo.target ORDER BY id) UNION (SELECT TOP 2 id FROM skvo.target "
    "ORDER BY id DESC)",
    "WITH b AS (SELECT id, mag FROM skvo.target WHERE mag < 10) SELECT * FROM b",
    "SELECT CASE WHEN mag < 10 THEN 'bright' WHEN mag < 15 THEN 'mid' ELSE 'faint' END "
    "FROM skvo.target",
    "SELECT CASE flag WHEN 1 THEN 'a' ELSE 'b' END FROM skvo.target",
    "SELECT COALESCE(mag, 0), CAST(mag AS INTEGER), CAST(id AS VARCHAR(10)), "
    "CAST(mag AS REAL), CAST(id AS BIGINT), CAST(id AS SMALLINT), "
    "CAST('2020-01-01T00:00:00' AS TIMESTAMP) FROM skvo.target",
    "SELECT id FROM skvo.target WHERE mag BETWEEN 1 AND 2 AND mag NOT BETWEEN 3 AND 4",
    "SELECT id FROM skvo.target WHERE name LIKE 'a%' OR name ILIKE 'B_' OR name NOT LIKE '%x'",
    "SELECT id FROM skvo.target WHERE mag IS NULL OR mag IS NOT NULL",
    "SELECT flag & 1, flag | 2, flag ^ 3, ~flag FROM skvo.target",
    "SELECT LOWER(name), UPPER(name), name || '-' || id FROM skvo.target",
    "SELECT ABS(mag), CEILING(mag), DEGREES(mag), EXP(mag), FLOOR(mag), LOG(mag), "
    "LOG10(mag), MOD(id, 3), PI(), POWER(mag, 2), RADIANS(mag), SQRT(mag), RAND(), "
    "RAND(3), ROUND(mag), ROUND(mag, 2), TRUNCATE(mag), TRUNCATE(mag, -1) FROM skvo.target",
    "SELECT ACOS(mag), ASIN(mag), ATAN(mag), ATAN2(mag, 1), COS(mag), COT(mag), SIN(mag), "
    "TAN(mag) FROM skvo.target",
    "SELECT \"dec\", t.\"dec\" FROM skvo.target AS t",
    "SELECT * FROM \"TAP_UPLOAD\".\"mine\"",
    "SELECT TAP_UPLOAD.mine.ra FROM TAP_UPLOAD.mine",
    "SELECT \"Name\" FROM tap_upload.MINE",
    "-- a comment\nSELECT id -- trailing\nFROM skvo.target",
    "SELECT id FROM skvo.target WHERE name = 'it''s' 'concatenated'",
    "SELECT IN_UNIT(mag, 'mag'), IN_UNIT(right_ascension, 'arcsec') FROM skvo.target",
    # geometry
    "SELECT POINT('ICRS', right_ascension, declination), CIRCLE(right_ascension, "
    "declination, 0.1), POLYGON(1, 2, 3, 4, 5, 6), BOX(10, 20, 1, 1) FROM skvo.target",
    "SELECT COORD1(POINT(right_ascension, declination)), COORD2(POINT(right_ascension, "
    "declination)), COORDSYS(POINT(right_ascension, declination)) FROM skvo.target",
    "SELECT AREA(CIRCLE(1, 2, 3)), AREA(POLYGON(1, 2, 3, 4, 5, 6)), AREA(BOX(1, 2, 3, 4)), "
    "CENTROID(CIRCLE(right_ascension, declination, 1)) FROM skvo.target",
    "SELECT id FROM skvo.target WHERE CONTAINS(POINT('ICRS', right_ascension, declination),"
    " CIRCLE('ICRS', 10, 20, 0.5)) = 1",
    "SELECT id FROM skvo.target WHERE 1 = CONTAINS(POINT(right_ascension, declination), "
    "CIRCLE(POINT(10, 20), 0.5))",
    "SELECT id FROM skvo.target WHERE CONTAINS(POINT(right_ascension, declination), "
    "CIRCLE(10, 20, 0.5)) = 0",
    "SELECT id FROM skvo.target WHERE DISTANCE(POINT(right_ascension, declination), "
    "POINT(10, 20)) < 0.1",
    "SELECT id FROM skvo.target WHERE 0.1 > DISTANCE(right_ascension, declination, 10, 20)",
    "SELECT id FROM skvo.target WHERE INTERSECTS(POINT(right_ascension, declination), "
    "BOX('ICRS', 10, 20, 1, 2)) = 1",
    "SELECT id FROM skvo.target WHERE CONTAINS(POINT(right_ascension, declination), "
    "POLYGON(POINT(1, 2), POINT(3, 4), POINT(5, 2))) = 1",
    "SELECT t.id, o.obs_id FROM skvo.target AS t JOIN ivoa.obscore AS o ON "
    "1 = CONTAINS(POINT(t.right_ascension, t.declination), CIRCLE(o.s_ra, o.s_dec, 0.01))",
    "SELECT CONTAINS(POINT(right_ascension, declination), CIRCLE(1, 2, 3)) AS inside "
    "FROM skvo.target",
    "SELECT id FROM skvo.target WHERE INTERSECTS(CIRCLE(right_ascension, declination, 1), "
    "CIRCLE(10, 20, 1)) = 1",
    "SELECT p FROM (SELECT POINT(right_ascension, declination) AS p FROM skvo.target) AS q",
    "SELECT COORD1(p), COORD2(q.p) FROM (SELECT POINT(right_ascension, declination) AS p "
    "FROM skvo.target) AS q",
    "SELECT s_region FROM ivoa.obscore",
    "SELECT CAST('12.3 45.6' AS POINT), CAST('1 2 3' AS CIRCLE) FROM skvo.target",
]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
@pytest.mark.parametrize("q", FEATURES, ids=lambda q: q[:60])
def test_features_translate(q, dialect):
    if dialect == "mysql" and "FULL" in q:
        pytest.skip("no FULL JOIN in MySQL")
    t = adql.translate(adql.parse(q), SCHEMA[dialect], dialect)
    assert t.sql.startswith(("SELECT", "WITH"))
    assert t.columns
    names = [c.name.lower() for c in t.columns]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("q", FEATURES, ids=lambda q: q[:60])
def test_features_execute_sqlite(q):
    conn = sqlite3.connect(":memory:")
    register(conn)
    conn.execute("CREATE TABLE target (id INTEGER, right_ascension REAL, declination REAL, "
                 "mag REAL, name TEXT, dec REAL, flag INTEGER)")
    conn.execute("CREATE TABLE obscore (obs_id TEXT, s_ra REAL, s_dec REAL, ra REAL, "
                 "target_id INTEGER, t_min REAL, s_region TEXT)")
    conn.execute('CREATE TABLE upload_mine (ra REAL, dec REAL, "Name" TEXT)')
    conn.execute("INSERT INTO target VALUES (1, 10.0, 20.0, 0.5, 'x', 20.0, 1)")
    conn.execute("INSERT INTO obscore VALUES ('o', 10.0, 20.0, 10.0, 1, 5.0, '1 2 3 4 5 6')")
    t = adql.translate(q, SCHEMA["sqlite"], "sqlite")
    cur = conn.execute(t.sql)
    assert len(cur.description) == sum(c.sql_width for c in t.columns)


def test_output_metadata():
    t = adql.translate("SELECT mag, mag * 2 AS m2, COUNT(*), AVG(mag), name || 'a', "
                       "POINT(right_ascension, declination), DISTANCE(right_ascension, "
                       "declination, 1, 2), 1, 2.5, mag FROM skvo.target GROUP BY mag, name, "
                       "right_ascension, declination", SCHEMA["sqlite"], "sqlite")
    cols = [(c.name, c.datatype, c.arraysize, c.xtype, c.unit, c.sql_width) for c in t.columns]
    assert cols == [
        ("mag", "double", None, None, "mag", 1),
        ("m2", "double", None, None, None, 1),
        ("count", "long", None, None, None, 1),
        ("avg", "double", None, None, "mag", 1),
        ("col_1", "char", "*", None, None, 1),
        ("point", "double", "2", "point", "deg", 2),
        ("distance", "double", None, None, "deg", 1),
        ("col_2", "long", None, None, None, 1),
        ("col_3", "double", None, None, None, 1),
        ("mag_2", "double", None, None, "mag", 1),
    ]
    assert t.columns[0].ucd == "phot.mag"


def test_order_and_group_by_position_with_geometry():
    t = adql.translate("SELECT POINT(right_ascension, declination) AS p, mag FROM skvo.target "
                       "GROUP BY 1, mag ORDER BY 2", SCHEMA["sqlite"], "sqlite")
    assert "GROUP BY 1, 2, " in t.sql and t.sql.endswith("ORDER BY 3")


def test_limit_combines_with_top():
    sql = adql.translate("SELECT TOP 50 id FROM skvo.target", SCHEMA["sqlite"], "sqlite",
                         limit=11).sql
    assert sql.endswith("LIMIT 11")
    sql = adql.translate("SELECT TOP 5 id FROM skvo.target", SCHEMA["mysql"], "mysql",
                         limit=11).sql
    assert sql.endswith("LIMIT 5")


def test_offset_without_limit():
    assert adql.translate("SELECT id FROM skvo.target OFFSET 3", SCHEMA["sqlite"],
                          "sqlite").sql.endswith("LIMIT -1 OFFSET 3")
    assert adql.translate("SELECT id FROM skvo.target OFFSET 3", SCHEMA["mysql"],
                          "mysql").sql.endswith("LIMIT 18446744073709551615 OFFSET 3")


def test_dialect_traps():
    my = adql.translate("SELECT LOG(mag), name || 'x', id / 2, MOD(id, 2), \"dec\" "
                        "FROM skvo.target WHERE name ILIKE 'a%'", SCHEMA["mysql"], "mysql").sql
    assert "LN(" in my and "CONCAT(" in my and " DIV " in my and "||" not in my
    assert "`dec`" in my and "LOWER(" in my
    lite = adql.translate("SELECT LOG(mag), name || 'x', MOD(id, 2) FROM skvo.target "
                          "WHERE name LIKE 'a%'", SCHEMA["sqlite"], "sqlite").sql
    assert "LN(" in lite and "ADQL_MOD(" in lite and "GLOB 'a*'" in lite


def test_cone_is_index_friendly():
    sql = adql.translate("SELECT id FROM skvo.target WHERE 1=CONTAINS(POINT(right_ascension,"
                         " declination), CIRCLE(0.01, 10, 0.1))", SCHEMA["sqlite"],
                         "sqlite").sql
    assert '"target"."declination" BETWEEN' in sql
    assert sql.count('"target"."right_ascension" BETWEEN') == 2  # split across RA 0


def test_cone_bbox():
    b = cone_bbox(10, 60, 1)
    assert b.dec_min < 59 and b.dec_max > 61
    (lo, hi), = b.ra_ranges
    import math
    half = math.degrees(math.asin(math.sin(math.radians(1)) / math.cos(math.radians(60))))
    assert half > 2.0  # asin(sin r / cos dec) > r / cos dec
    assert lo <= 10 - half and hi >= 10 + half and hi - lo < 2 * half + 1e-6
    assert cone_bbox(0, 89.5, 1).ra_ranges is None  # reaches the pole
    assert len(cone_bbox(359.9, 0, 1).ra_ranges) == 2
    assert cone_bbox(5, -89, 0.5).ra_ranges is not None
    s = cone_sql('"ra"', '"dec"', 10, 20, 0.5, "mysql")
    assert s.startswith('("dec" BETWEEN') and "<=" in s


# -- errors -------------------------------------------------------------------------

ERRORS = [
    ("SELECT rra FROM ivoa.obscore", 1, 8, "unknown column 'rra' in table 'ivoa.obscore'; "
                                           "did you mean 'ra'?"),
    ("SELECT id FROM skvo.targt", 1, 16, "unknown table 'skvo.targt'; did you mean"),
    ("SELECT ra FROM TAP_UPLOAD.mine, ivoa.obscore", 1, 8, "ambiguous column 'ra'"),
    ("SELECT id\nFROM skvo.target\nWHERE mag <", 3, 12, "unexpected end of query"),
    ("SELECT ABS(mag, 2) FROM skvo.target", 1, 8, "ABS takes 1 argument, not 2"),
    ("SELECT id FROM skvo.target WHERE name + 1 > 2", 1, 34, "type error"),
    ("SELECT id FROM skvo.target WHERE mag", 1, 34, "WHERE needs a condition"),
    ("SELECT id FROM skvo.target WHERE 1 = CONTAINS(POINT('GALACTIC', right_ascension, "
     "declination), CIRCLE(1, 2, 3))", 1, 53, "coordinate system 'GALACTIC' is not supported"),
    ("SELECT TOP 1.5 id FROM skvo.target", 1, 12, "TOP needs an unsigned integer"),
    ("SELECT x.id FROM skvo.target AS t", 1, 8, "unknown table 'x'"),
    ("SELECT id FROM sqlite_master", 1, 16, "unknown table 'sqlite_master'"),
    ("SELECT * FROM information_schema.tables", 1, 15, "unknown table"),
    ("SELECT * FROM mysql.db", 1, 15, "unknown table 'mysql.db'"),
    ("SELECT * FROM mysql.user", 1, 21, "'user' is a reserved word"),
    ("SELECT id FROM skvo.target; DROP TABLE target", 1, 27, "unexpected character ';'"),
    ("DELETE FROM skvo.target", 1, 1, "syntax error at 'DELETE'"),
    ("SELECT sleep(5) FROM skvo.target", 1, 8, "unknown function 'sleep'"),
    ("SELECT ivo_healpix_index(5, 1, 2) FROM skvo.target", 1, 8, "not available"),
    ("SELECT POINT(1, 2) = POINT(1, 2) FROM skvo.target", 1, 8, "condition cannot be used"),
    ("SELECT id FROM skvo.target WHERE POINT(1, 2) = POINT(1, 2)", 1, 34,
     "geometries cannot be compared"),
    ("SELECT id FROM skvo.target UNION SELECT id, mag FROM skvo.target", 1, 1,
     "different numbers of columns"),
    ("SELECT \"ID\" FROM skvo.target", 1, 8, "unknown column 'ID'"),
    ("SELECT id FROM skvo.target WHERE CONTAINS(POINT(right_ascension, declination), "
     "CIRCLE(1, 95, 3)) = 1", 1, 34, "declination"),
]


@pytest.mark.parametrize("q,line,col,msg", ERRORS, ids=[e[0][:50] for e in ERRORS])
def test_errors(q, line, col, msg):
    with pytest.raises(adql.ADQLError) as info:
        adql.translate(q, SCHEMA["sqlite"], "sqlite")
    e = info.value
    assert msg in e.message, e.message
    if e.line:
        assert (e.line, e.column) == (line, col), str(e)
    assert str(e).startswith(f"line {e.line}, column {e.column}: ")


def test_error_format():
    with pytest.raises(adql.ADQLError) as info:
        adql.translate("SELECT rra FROM ivoa.obscore", SCHEMA["sqlite"], "sqlite")
    assert str(info.value) == ("line 1, column 8: unknown column 'rra' in table "
                               "'ivoa.obscore'; did you mean 'ra'?")


def test_string_literals_are_quoted_safely():
    evil = "x'; DROP TABLE target; --\\"
    q = "SELECT id FROM skvo.target WHERE name = '" + evil.replace("'", "''") + "'"
    for dialect in ("sqlite", "mysql"):
        sql = adql.translate(q, SCHEMA[dialect], dialect).sql
        assert "DROP TABLE target; --" in sql  # only inside the literal
    conn = sqlite3.connect(":memory:")
    register(conn)
    conn.execute("CREATE TABLE target (id INTEGER, right_ascension REAL, declination REAL, "
                 "mag REAL, name TEXT, dec REAL, flag INTEGER)")
    conn.execute("INSERT INTO target (id, name) VALUES (1, ?)", (evil,))
    rows = conn.execute(adql.translate(q, SCHEMA["sqlite"], "sqlite").sql).fetchall()
    assert rows == [(1,)]


def test_delimited_identifiers_are_quoted():
    schema = Schema([Table("s.t", (Column('we"ird`col', "int"),), '"t"')])
    for dialect, frag in (("sqlite", '"we""ird`col"'), ("mysql", "`we\"ird``col`")):
        sql = adql.translate('SELECT "we""ird`col" FROM s.t', schema, dialect).sql
        assert frag in sql


def test_udf_declared_parse_ok():
    udf = "ivo_healpix_index(hpxOrder INTEGER, long REAL, lat REAL) -> BIGINT"
    adql.parse("SELECT ivo_healpix_index(6, ra, dec) FROM t", udfs=[udf])
    with pytest.raises(adql.ADQLError):
        adql.parse("SELECT ivo_healpix_index(6, ra) FROM t", udfs=[udf])
    with pytest.raises(adql.ADQLError):
        adql.parse("SELECT my_func(6) FROM t", udfs=[udf])


def test_version_argument():
    adql.parse("SELECT a FROM t", version="2.0")
    with pytest.raises(adql.ADQLError):
        adql.parse("SELECT a FROM t", version="9.9")


def test_mysql_full_join_rejected():
    with pytest.raises(adql.ADQLError, match="FULL OUTER JOIN"):
        adql.translate("SELECT * FROM skvo.target AS a FULL OUTER JOIN skvo.target AS b "
                       "ON a.id = b.id", SCHEMA["mysql"], "mysql")
    adql.translate("SELECT * FROM skvo.target AS a FULL OUTER JOIN skvo.target AS b "
                   "ON a.id = b.id", SCHEMA["sqlite"], "sqlite")


# examples from the ADQL 2.1 Recommendation (adapted to the schema above)
STANDARD_EXAMPLES = [
    "SELECT * FROM ivoa.obscore WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 10, 10, 1))",
    "SELECT TOP 100 * FROM skvo.target ORDER BY mag",
    "SELECT DISTANCE(POINT('ICRS', right_ascension, declination), POINT('ICRS', 0, 0)) "
    "FROM skvo.target",
    "SELECT t.id, o.obs_id FROM skvo.target AS t, ivoa.obscore AS o WHERE 1 = "
    "CONTAINS(POINT('ICRS', t.right_ascension, t.declination), CIRCLE('ICRS', o.s_ra, "
    "o.s_dec, 1))",
    "SELECT * FROM skvo.target WHERE 1 = INTERSECTS(CIRCLE('ICRS', 10, 10, 1), "
    "POINT('ICRS', right_ascension, declination))",
    "SELECT AREA(CIRCLE('ICRS', 10, 10, 1)) FROM skvo.target",
    "SELECT COORD1(POINT('ICRS', 25.4, -20.0)), COORD2(POINT('ICRS', 25.4, -20.0)) "
    "FROM skvo.target",
    "SELECT * FROM skvo.target WHERE 1 = CONTAINS(POINT('ICRS', right_ascension, "
    "declination), BOX('ICRS', 25.4, -20.0, 10, 10))",
    "SELECT * FROM skvo.target WHERE 1 = CONTAINS(POINT('ICRS', right_ascension, "
    "declination), POLYGON('ICRS', 10.0, -10.5, 20.0, 20.5, 30.0, 30.5))",
    "SELECT name FROM skvo.target WHERE name ILIKE 'NGC %'",
    "SELECT id FROM skvo.target OFFSET 100",
    "SELECT TOP 10 id FROM skvo.target ORDER BY id OFFSET 20",
    "SELECT LOWER(name), UPPER(name) FROM skvo.target",
    "SELECT CAST(mag AS INTEGER) FROM skvo.target",
    "WITH t2 AS (SELECT id FROM skvo.target WHERE mag < 5) SELECT * FROM t2",
    "SELECT COALESCE(mag, 99) FROM skvo.target",
]


@pytest.mark.parametrize("q", STANDARD_EXAMPLES, ids=lambda q: q[:60])
def test_standard_examples(q):
    for dialect in ("sqlite", "mysql"):
        adql.translate(q, SCHEMA[dialect], dialect)
