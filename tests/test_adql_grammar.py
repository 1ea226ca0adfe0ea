"""Grammar features, translation shapes, errors with positions, safety."""

from __future__ import annotations

import math
import sqlite3

import pytest

import adql
from adql import Column, Schema, Table
from adql.functions import parse_udf
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
    "SELECT * FROM skvo.target AS t FULL OUTER JOIN ivoa.obscore AS o ON t.id = o.target_id",
    "SELECT id, a.mag, b.mag FROM skvo.target AS a FULL JOIN skvo.target AS b USING (id)",
    "SELECT * FROM skvo.target AS a NATURAL FULL JOIN skvo.target AS b",
    "SELECT a.id, o.obs_id, b.name FROM skvo.target AS a FULL JOIN ivoa.obscore AS o "
    "ON a.id = o.target_id FULL JOIN skvo.target AS b ON b.id = o.target_id",
    "SELECT * FROM ivoa.obscore AS o, skvo.target AS a FULL JOIN (SELECT id, mag FROM "
    "skvo.target) AS q ON a.id = q.id",
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
    "SELECT id, name FROM skvo.target INTERSECT ALL SELECT target_id, obs_id FROM ivoa.obscore",
    "SELECT id FROM skvo.target EXCEPT ALL SELECT target_id FROM ivoa.obscore ORDER BY 1 "
    "OFFSET 1",
    "SELECT POINT(right_ascension, declination) AS p FROM skvo.target INTERSECT ALL "
    "SELECT POINT(s_ra, s_dec) FROM ivoa.obscore EXCEPT ALL SELECT POINT(ra, dec) FROM "
    "TAP_UPLOAD.mine",
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
    # chained USING / NATURAL joins
    "SELECT * FROM skvo.target AS a JOIN skvo.target AS b USING (id) JOIN skvo.target AS c "
    "USING (id)",
    "SELECT id, a.mag, c.mag FROM skvo.target AS a FULL JOIN skvo.target AS b USING (id) "
    "LEFT JOIN skvo.target AS c USING (id) RIGHT JOIN skvo.target AS d USING (id)",
    "SELECT * FROM skvo.target AS a NATURAL JOIN skvo.target AS b NATURAL FULL JOIN "
    "skvo.target AS c",
    "SELECT id, name FROM skvo.target AS a FULL JOIN (skvo.target AS b FULL JOIN skvo.target "
    "AS c USING (id, name)) USING (id, name) WHERE id > 2",
    # an alias like the hidden SQL columns of a geometry
    "SELECT POINT(right_ascension, declination) AS p, mag AS p__2, CIRCLE(1, 2, 3) AS "
    "\"P__2_2\" FROM skvo.target",
    # user-defined functions
    "SELECT ivo_nocasematch(name, 'a%'), ivo_hasword(name, 'x'), ivo_hashlist_has(name, 'x'), "
    "ivo_interval_overlaps(mag, mag + 1, 0, 1) FROM skvo.target WHERE ivo_hasword(name, "
    "name) = 1",
    "SELECT flag, ivo_string_agg(name, ', ') FROM skvo.target GROUP BY flag",
]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
@pytest.mark.parametrize("q", FEATURES, ids=lambda q: q[:60])
def test_features_translate(q, dialect):
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
    assert "GROUP BY 1, 2, " in t.sql and t.sql.endswith("ORDER BY 3 NULLS LAST")


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
    ("SELECT * FROM mysql.user", 1, 15, "unknown table 'mysql.user'"),
    ("SELECT * FROM t AS table", 1, 20, "'table' is a reserved word"),
    ("SELECT position FROM t", 1, 8, "'position' is a reserved word"),
    ("SELECT 89x FROM z", 1, 8, "malformed number"),
    ("SELECT 1 FROM t; SELECT 2 FROM t", 1, 18, "syntax error at 'SELECT'"),
    ("SELECT 1 FROM t;;", 1, 17, "syntax error at ';'"),
    ("SELECT id FROM skvo.target; DROP TABLE target", 1, 29, "syntax error at 'DROP'"),
    ("DELETE FROM skvo.target", 1, 1, "syntax error at 'DELETE'"),
    ("SELECT sleep(5) FROM skvo.target", 1, 8, "unknown function 'sleep'"),
    ("SELECT ivo_healpix_index(5, 1, 2) FROM skvo.target", 1, 8, "not available"),
    ("SELECT ivo_hasword(name) FROM skvo.target", 1, 8,
     "ivo_hasword takes 2 arguments, not 1"),
    ("SELECT id,\n  IVO_INTERVAL_OVERLAPS(1, 2, 3) FROM skvo.target", 2, 3,
     "ivo_interval_overlaps takes 4 arguments, not 3"),
    ("SELECT ivo_string_agg(name) FROM skvo.target", 1, 8, "takes 2 arguments, not 1"),
    ("SELECT ivo_hasword(name, 5) FROM skvo.target", 1, 26,
     "type error: the word argument of ivo_hasword cannot take a number"),
    ("SELECT id FROM skvo.target\nWHERE ivo_interval_overlaps(mag, name, 1, 2) = 1", 2, 34,
     "type error: the h1 argument of ivo_interval_overlaps cannot take a string"),
    ("SELECT ivo_nocasematch(mag + 1, 'a%') FROM skvo.target", 1, 24,
     "the value argument of ivo_nocasematch cannot take a number"),
    ("SELECT ivo_hashlist_has(name, CAST(mag AS TIMESTAMP)) FROM skvo.target", 1, 31,
     "the item argument of ivo_hashlist_has cannot take a timestamp"),
    ("SELECT ivo_string_agg(name, name) FROM skvo.target", 1, 29,
     "the delim argument of ivo_string_agg must be a string literal"),
    ("SELECT ivo_string_agg(flag, ',') FROM skvo.target", 1, 23,
     "the expr argument of ivo_string_agg cannot take a number"),
    ("SELECT ivo_nocasematch(POINT(1, 2), 'x') FROM skvo.target", 1, 24,
     "a geometry cannot be used here"),
    ("SELECT ivo_hasword(s_region, 'x') FROM ivoa.obscore", 1, 20,
     "a geometry cannot be used here"),
    ("SELECT ivo_hashlist_has(name, mag > 1) FROM skvo.target", 1, 31,
     "a condition cannot be used as a value here"),
    ("SELECT id FROM skvo.target WHERE ivo_hasword(name, 'x')", 1, 34,
     "WHERE needs a condition"),
    ("SELECT ivo_nocasematchh(name, 'x') FROM skvo.target", 1, 8, "not available"),
    ("SELECT mag FROM skvo.target AS a JOIN skvo.target AS b USING (id) JOIN skvo.target "
     "AS c USING (id)", 1, 8, "ambiguous column 'mag' (in a, b, c)"),
    ("SELECT * FROM skvo.target AS a JOIN skvo.target AS b USING (id) JOIN skvo.target AS c "
     "USING (mag)", 1, 94, "column 'mag' is ambiguous in the left table"),
    ("SELECT * FROM skvo.target AS a JOIN skvo.target AS b USING (id) JOIN ivoa.obscore AS o "
     "USING (id)", 1, 95, "column 'id' of the join is not in the right table"),
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


def test_full_join_native_on_sqlite():
    sql = adql.translate("SELECT * FROM skvo.target AS a FULL OUTER JOIN skvo.target AS b "
                         "ON a.id = b.id", SCHEMA["sqlite"], "sqlite").sql
    assert '"target" AS "a" FULL OUTER JOIN "target" AS "b" ON ("a"."id" = "b"."id")' in sql
    assert "UNION" not in sql


def test_full_join_emulated_on_mysql():
    t = adql.translate("SELECT a.id, b.mag FROM skvo.target AS a FULL OUTER JOIN ivoa.obscore "
                       "AS o ON a.id = o.target_id JOIN skvo.target AS b ON b.id = a.id",
                       SCHEMA["mysql"], "mysql")
    assert "FULL" not in t.sql
    cond = "(`a`.`id` = `o`.`target_id`)"
    assert (f"FROM `target` AS `a` LEFT OUTER JOIN `obscore` AS `o` ON {cond} UNION ALL "
            f"SELECT NULL AS `c1`, ") in t.sql
    assert (f"FROM `obscore` AS `o` WHERE NOT EXISTS (SELECT 1 FROM `target` AS `a` WHERE "
            f"{cond})) AS `_full` JOIN `target` AS `b` ON (`b`.`id` = `_full`.`c1`)") in t.sql
    assert t.sql.startswith("SELECT `_full`.`c1` AS `id`, `b`.`mag` AS `mag` FROM (SELECT "
                            "`a`.`id` AS `c1`, `a`.`right_ascension` AS `c2`, ")
    assert [c.name for c in t.columns] == ["id", "mag"]


def test_full_join_using_coalesces_emulated_columns():
    sql = adql.translate("SELECT id, a.flag FROM skvo.target AS a FULL JOIN skvo.target AS b "
                         "USING (id)", SCHEMA["mysql"], "mysql").sql
    assert sql.startswith("SELECT COALESCE(`_full`.`c1`, `_full`.`c8`) AS `id`, "
                          "`_full`.`c7` AS `flag` FROM (SELECT `a`.`id` AS `c1`, ")
    assert "NULL AS `c7`, `b`.`id` AS `c8`" in sql and " ON `a`.`id` = `b`.`id` UNION ALL " in sql
    sql = adql.translate("SELECT id, a.flag FROM skvo.target AS a FULL JOIN skvo.target AS b "
                         "USING (id)", SCHEMA["sqlite"], "sqlite").sql
    assert sql.startswith('SELECT COALESCE("a"."id", "b"."id") AS "id", "a"."flag" AS "flag"')


def test_full_join_nested_and_sub_select_tables():
    # published tables may be access-rights sub-selects; both sides may be joins
    vis = "(SELECT `target`.* FROM `target` WHERE `target`.`flag` <> 3)"
    schema = Schema([*SCHEMA["mysql"], Table("skvo.visible", (Column("id", "long"),
                                                               Column("flag", "int")), vis)])
    t = adql.translate("SELECT * FROM skvo.visible AS v FULL JOIN (skvo.target AS a FULL JOIN "
                       "skvo.target AS b USING (id)) ON v.id = a.id", schema, "mysql")
    assert t.sql.count(vis + " AS `v`") == 2
    assert t.sql.count("AS `_full`") == 2 and t.sql.count("AS `_full_2`") == 1
    assert [c.name for c in t.columns][:4] == ["id", "flag", "id_2", "right_ascension"]
    # the USING column of the inner FULL JOIN is carried through the outer one
    assert "COALESCE(`_full`.`c1`, `_full`.`c8`) AS `c17`" in t.sql
    assert t.sql.startswith("SELECT `_full_2`.`c1` AS `id`, `_full_2`.`c2` AS `flag`, "
                            "`_full_2`.`c17` AS `id_2`, `_full_2`.`c4` AS `right_ascension`")


def test_full_join_correlated_on_mysql():
    q = ("SELECT id FROM skvo.target AS t WHERE EXISTS (SELECT 1 FROM ivoa.obscore AS o "
         "FULL JOIN skvo.target AS u ON o.target_id = u.id AND u.id = t.id)")
    with pytest.raises(adql.ADQLError, match="enclosing query") as info:
        adql.translate(q, SCHEMA["mysql"], "mysql")
    assert (info.value.line, info.value.column) == (1, q.index("o.target_id =") + 1)
    adql.translate(q, SCHEMA["sqlite"], "sqlite")
    # outer references elsewhere in the subquery, or inside the ON condition's own
    # subqueries to the join's tables, are fine
    adql.translate("SELECT id FROM skvo.target AS t WHERE EXISTS (SELECT 1 FROM ivoa.obscore "
                   "AS o FULL JOIN skvo.target AS u ON o.target_id = u.id AND EXISTS (SELECT 1 "
                   "FROM skvo.target AS w WHERE w.id = u.id) WHERE u.id = t.id)",
                   SCHEMA["mysql"], "mysql")


def test_intersect_except_all_sqlite():
    sql = adql.translate("SELECT id, name FROM skvo.target INTERSECT ALL SELECT target_id, "
                         "obs_id FROM ivoa.obscore ORDER BY 2 OFFSET 1", SCHEMA["sqlite"],
                         "sqlite").sql
    assert sql == (
        'SELECT "id", "name" FROM (SELECT "id", "name", ROW_NUMBER() OVER (PARTITION BY "id", '
        '"name") AS "_copy" FROM (SELECT "target"."id" AS "id", "target"."name" AS "name" '
        'FROM "target" AS "target") AS "_s1" INTERSECT SELECT "target_id", "obs_id", '
        'ROW_NUMBER() OVER (PARTITION BY "target_id", "obs_id") AS "_copy" FROM (SELECT '
        '"obscore"."target_id" AS "target_id", "obscore"."obs_id" AS "obs_id" FROM "obscore" '
        'AS "obscore") AS "_s2") AS "_s3" ORDER BY 2 NULLS LAST LIMIT -1 OFFSET 1')
    sql = adql.translate("SELECT id AS \"_copy\", POINT(right_ascension, declination) AS p "
                         "FROM skvo.target EXCEPT ALL SELECT target_id, POINT(s_ra, s_dec) "
                         "FROM ivoa.obscore", SCHEMA["sqlite"], "sqlite").sql
    assert 'PARTITION BY "_copy", "p", "p__2") AS "_copy_" FROM' in sql
    assert sql.startswith('SELECT "_copy", "p", "p__2" FROM (') and " EXCEPT SELECT " in sql


def test_intersect_except_all_native_on_mysql():
    sql = adql.translate("SELECT id FROM skvo.target INTERSECT ALL SELECT target_id FROM "
                         "ivoa.obscore EXCEPT ALL SELECT id FROM skvo.target", SCHEMA["mysql"],
                         "mysql").sql
    assert " INTERSECT ALL " in sql and " EXCEPT ALL " in sql and "ROW_NUMBER" not in sql


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


# -- chained USING joins, hidden SQL names, user-defined functions --------------------------

def test_chained_using_joins_use_the_merged_column():
    q = ("SELECT id, a.id, b.id, c.id FROM skvo.target AS a {} JOIN skvo.target AS b USING (id) "
         "{} JOIN skvo.target AS c USING (id) WHERE id > 3")
    sql = adql.translate(q.format("", ""), SCHEMA["sqlite"], "sqlite").sql
    assert sql == (
        'SELECT "a"."id" AS "id", "a"."id" AS "id_2", "b"."id" AS "id_3", "c"."id" AS "id_4" '
        'FROM "target" AS "a" JOIN "target" AS "b" ON "a"."id" = "b"."id" JOIN "target" AS "c" '
        'ON "a"."id" = "c"."id" WHERE ("a"."id" > 3)')
    sql = adql.translate(q.format("RIGHT", "LEFT"), SCHEMA["sqlite"], "sqlite").sql
    assert sql.startswith('SELECT "b"."id" AS "id", "a"."id" AS "id_2"')
    assert 'LEFT OUTER JOIN "target" AS "c" ON "b"."id" = "c"."id" WHERE ("b"."id" > 3)' in sql
    sql = adql.translate(q.format("FULL", "FULL"), SCHEMA["sqlite"], "sqlite").sql
    merged = 'COALESCE(COALESCE("a"."id", "b"."id"), "c"."id")'
    assert sql.startswith(f'SELECT {merged} AS "id", "a"."id" AS "id_2"')
    assert 'ON COALESCE("a"."id", "b"."id") = "c"."id"' in sql and f"WHERE ({merged} > 3)" in sql
    # MariaDB: the merged column of the inner emulated FULL JOIN is a column of the outer
    t = adql.translate(q.format("FULL", "FULL"), SCHEMA["mysql"], "mysql")
    assert "FULL" not in t.sql
    assert "COALESCE(`_full`.`c1`, `_full`.`c8`) AS `c15`" in t.sql
    assert t.sql.startswith("SELECT COALESCE(`_full_2`.`c15`, `_full_2`.`c16`) AS `id`, "
                            "`_full_2`.`c1` AS `id_2`, `_full_2`.`c8` AS `id_3`, "
                            "`_full_2`.`c16` AS `id_4` FROM (SELECT ")
    assert [c.name for c in t.columns] == ["id", "id_2", "id_3", "id_4"]


def test_chained_natural_and_nested_using_star():
    t = adql.translate("SELECT * FROM skvo.target AS a NATURAL JOIN skvo.target AS b "
                       "NATURAL JOIN skvo.target AS c", SCHEMA["sqlite"], "sqlite")
    assert [c.name for c in t.columns] == ["id", "right_ascension", "declination", "mag",
                                           "name", "dec", "flag"]
    assert 'ON "a"."id" = "c"."id" AND "a"."right_ascension" = "c"."right_ascension"' in t.sql
    t = adql.translate("SELECT * FROM skvo.target AS a JOIN (skvo.target AS b JOIN "
                       "skvo.target AS c USING (id, name)) USING (name)", SCHEMA["sqlite"],
                       "sqlite")
    assert [c.name for c in t.columns][:9] == [
        "name", "id", "right_ascension", "declination", "mag", "dec", "flag", "id_2",
        "right_ascension_2"]
    assert len(t.columns) == 1 + 6 + 1 + 2 * 5
    assert t.sql.endswith('ON "b"."id" = "c"."id" AND "b"."name" = "c"."name") '
                          'ON "a"."name" = "b"."name"')
    with pytest.raises(adql.ADQLError, match="column 'dec' is ambiguous in the right table"):
        adql.translate("SELECT * FROM TAP_UPLOAD.mine AS u JOIN (skvo.target AS a JOIN "
                       "skvo.target AS b USING (id)) USING (dec)", SCHEMA["sqlite"], "sqlite")


def test_hidden_geometry_columns_do_not_collide():
    t = adql.translate("SELECT POINT(right_ascension, declination) AS p, mag AS p__2, "
                       "CIRCLE(1, 2, 3) AS \"P__2_2\" FROM skvo.target", SCHEMA["sqlite"],
                       "sqlite")
    assert [c.name for c in t.columns] == ["p", "p__2", "P__2_2"]  # as the user wrote them
    assert t.sql == (
        'SELECT "target"."right_ascension" AS "p", "target"."declination" AS "p__2_3", '
        '"target"."mag" AS "p__2", 1 AS "P__2_2", 2 AS "P__2_2__2", 3 AS "P__2_2__3" '
        'FROM "target" AS "target"')
    # without a collision the hidden names stay name__2, name__3
    sql = adql.translate("SELECT CIRCLE(1, 2, 3) AS c FROM skvo.target", SCHEMA["mysql"],
                         "mysql").sql
    assert sql == "SELECT 1 AS `c`, 2 AS `c__2`, 3 AS `c__3` FROM `target` AS `target`"


def test_udfs_are_known_without_declaration():
    forms = [u.form for u in adql.IMPLEMENTED_UDFS]
    assert forms == [
        "ivo_nocasematch(value TEXT, pattern TEXT) -> INTEGER",
        "ivo_hasword(haystack TEXT, word TEXT) -> INTEGER",
        "ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER",
        "ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC) -> INTEGER",
        "ivo_string_agg(expr TEXT, delim TEXT) -> TEXT",
    ]
    for u in adql.IMPLEMENTED_UDFS:
        assert u.description and u.form.lower().startswith(u.name.lower() + "(")
        assert parse_udf(u.form) == adql.UDF(u.name, u.params, u.returns, u.form)
        args = ", ".join("1" if t == "NUMERIC" else "'x'" for _, t in u.params)
        q = adql.parse(f"SELECT {u.name.lower()}({args}) FROM t")
        assert q.udfs[u.name] is u
    # a declared but unimplemented function parses and is refused by the translator
    q = adql.parse("SELECT ivo_healpix_index(6, ra, dec) FROM ivoa.obscore",
                   udfs=["ivo_healpix_index(hpxOrder INTEGER, long REAL, lat REAL) -> BIGINT"])
    with pytest.raises(adql.ADQLError, match="'ivo_healpix_index' is not available") as info:
        adql.translate(q, SCHEMA["sqlite"], "sqlite")
    assert (info.value.line, info.value.column) == (1, 8)


def test_udf_translations():
    q = ("SELECT ivo_nocasematch(name, 'A\\%'), ivo_hasword(name, 'X'), "
         "ivo_hashlist_has(name, 'x'), ivo_interval_overlaps(mag, mag + 1, 0, NULL), "
         "ivo_string_agg(name, ';') FROM skvo.target")
    t = adql.translate(q, SCHEMA["sqlite"], "sqlite")
    n = '"target"."name"'
    m = '"target"."mag"'
    assert t.sql == (
        f"SELECT IVO_NOCASEMATCH({n}, 'A\\%') AS \"ivo_nocasematch\", IVO_HASWORD({n}, 'X') "
        f"AS \"ivo_hasword\", IVO_HASHLIST_HAS({n}, 'x') AS \"ivo_hashlist_has\", (CASE WHEN "
        f"{m} IS NULL OR ({m} + 1) IS NULL OR NULL IS NULL THEN NULL WHEN ({m} + 1) >= 0 AND "
        f"NULL >= {m} THEN 1 ELSE 0 END) AS \"ivo_interval_overlaps\", GROUP_CONCAT({n}, ';') "
        'AS "ivo_string_agg" FROM "target" AS "target"')
    assert [(c.name, c.datatype) for c in t.columns] == [
        ("ivo_nocasematch", "int"), ("ivo_hasword", "int"), ("ivo_hashlist_has", "int"),
        ("ivo_interval_overlaps", "int"), ("ivo_string_agg", "char")]
    sql = adql.translate(q, SCHEMA["mysql"], "mysql").sql
    low = "LOWER(CONVERT(`target`.`name` USING utf8mb4))"
    assert (f"({low} COLLATE utf8mb4_bin LIKE REPLACE(LOWER(CONVERT('A\\\\%' USING utf8mb4)), "
            "'\\\\', '\\\\\\\\'))") in sql
    assert (f"ELSE {low} COLLATE utf8mb4_bin REGEXP CONCAT('(?<![a-z0-9_])\\\\Q', "
            "LOWER(CONVERT('X' USING utf8mb4)), '\\\\E(?![a-z0-9_])') END") in sql
    assert (f"(LOCATE(CONCAT('#', LOWER(CONVERT('x' USING utf8mb4)), '#') COLLATE utf8mb4_bin, "
            f"CONCAT('#', {low}, '#')) > 0)") in sql
    assert "GROUP_CONCAT(`target`.`name` SEPARATOR ';') AS `ivo_string_agg`" in sql


def test_udf_sqlite_functions_give_null_for_null():
    conn = sqlite3.connect(":memory:")
    register(conn)
    for fn in ("ivo_nocasematch", "ivo_hasword", "ivo_hashlist_has"):
        assert conn.execute(f"SELECT {fn}(NULL, 'a'), {fn}('a', NULL)").fetchone() == (
            None, None)
    assert conn.execute("SELECT ivo_nocasematch('ÉCOLE', 'éc_l%'), ivo_nocasematch('a', 'A_'),"
                        " ivo_hasword('Le chat, le Chien.', 'CHIEN'), ivo_hasword('cat_', "
                        "'cat'), ivo_hasword('', ''), ivo_hashlist_has('a#B#c', 'b'), "
                        "ivo_hashlist_has('a#bc', 'b')").fetchone() == (1, 0, 1, 0, 0, 1, 0)


# -- accepted beyond the REC (issue 13) ----------------------------------------------

_NAMED = Schema([
    Table("public.hipparcos", (Column("ra", "double", unit="deg"), Column("hip", "int")),
          '"hipparcos"'),
    Table("ehst.position", (Column("ra", "double", unit="deg"),), '"position"'),
    Table("table", (Column("x", "double"),), '"table"'),
])


@pytest.mark.parametrize("q,sql", [
    ("SELECT TOP 1 hip FROM public.hipparcos;",
     'SELECT "hipparcos"."hip" AS "hip" FROM "hipparcos" AS "hipparcos" LIMIT 1'),
    ("SELECT public.hipparcos.ra FROM public.hipparcos",
     'SELECT "hipparcos"."ra" AS "ra" FROM "hipparcos" AS "hipparcos"'),
    ("SELECT p.ra FROM ehst.position AS p ;\n  ",
     'SELECT "p"."ra" AS "ra" FROM "position" AS "p"'),
    ("SELECT table.* FROM table", 'SELECT "table"."x" AS "x" FROM "table" AS "table"'),
    ("SELECT x FROM table ORDER BY 1desc -- a keyword may follow a number\n",
     'SELECT "table"."x" AS "x" FROM "table" AS "table" ORDER BY 1 DESC NULLS FIRST'),
])
def test_accepted_beyond_rec(q, sql):
    assert adql.translate(q, _NAMED, "sqlite").sql == sql


@pytest.mark.parametrize("q,msg", [
    ("SELECT * FROM public.hipparcos AS public", "'public' is a reserved word"),
    ("SELECT hip AS table FROM public.hipparcos", "'table' is a reserved word"),
    ("SELECT position FROM ehst.position", "'position' is a reserved word"),
    ("WITH table AS (SELECT 1 AS a FROM table) SELECT * FROM table",
     "'table' is a reserved word"),
    ("SELECT * FROM table JOIN table AS t USING (value)", "'value' is a reserved word"),
    ("SELECT 1 FROM table; SELECT 2 FROM table", "syntax error at 'SELECT'"),
    ("SELECT 1 FROM table;;", "syntax error at ';'"),
    ("; SELECT 1 FROM table", "syntax error at ';'"),
    ("SELECT 89x FROM table", "malformed number"),
    ("SELECT x FROM table WHERE x < 1O", "malformed number"),
])
def test_still_refused(q, msg):
    with pytest.raises(adql.ADQLError) as info:
        adql.translate(q, _NAMED, "sqlite")
    assert msg in info.value.message


_PM = Schema([Table("gaia.src", (Column("ra", "double", unit="deg"),
                                 Column("pm_ra", "double", unit="mas/yr"),
                                 Column("pm_dec", "double", unit="mas/yr"),
                                 Column("n", "double")), "src")])


@pytest.mark.parametrize("expr,unit,factor", [
    ("IN_UNIT(ra + 10, 'rad')", "rad", math.pi / 180),
    ("IN_UNIT(sqrt(power(pm_ra, 2) + power(pm_dec, 2)), 'rad/yr')", "rad/yr",
     math.pi / 180 / 3.6e6),
    ("IN_UNIT(pm_ra * 2 - pm_dec, 'arcsec/yr')", "arcsec/yr", 1e-3),
    ("IN_UNIT(ra * pm_ra, 'deg2/yr')", "deg2/yr", 1 / 3.6e6),
    ("IN_UNIT(ra / pm_ra, 'yr')", "yr", 3.6e6),
    ("IN_UNIT(1 / pm_ra, 'yr/deg')", "yr/deg", 3.6e6),
])
def test_in_unit_of_expressions(expr, unit, factor):
    t = adql.translate(f"SELECT {expr} AS v FROM gaia.src", _PM, "sqlite")
    assert t.columns[0].unit == unit
    got = float(t.sql.rsplit(" * ", 1)[1].split(")")[0])
    assert math.isclose(got, factor, rel_tol=1e-12)


@pytest.mark.parametrize("expr,msg", [
    ("IN_UNIT(ra + pm_ra, 'rad')", "known unit"),  # unequal units added
    ("IN_UNIT(n * ra, 'rad')", "known unit"),  # n has no unit
    ("IN_UNIT(power(ra, n), 'rad')", "known unit"),  # exponent not constant
    ("IN_UNIT(power(ra, 2), 's')", "cannot convert unit '(deg)**2' to 's'"),
])
def test_in_unit_refused(expr, msg):
    with pytest.raises(adql.ADQLError) as info:
        adql.translate(f"SELECT {expr} FROM gaia.src", _PM, "sqlite")
    assert msg in info.value.message


def test_derived_units_not_declared():
    """Only a column's own unit (and equal units added) is declared for a result."""
    t = adql.translate("SELECT ra + ra AS a, ra * 2 AS b, ra * ra AS c, ra + 1 AS d "
                       "FROM gaia.src", _PM, "sqlite")
    assert [c.unit for c in t.columns] == ["deg", None, None, None]
