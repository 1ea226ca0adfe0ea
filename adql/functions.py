"""Catalogue of ADQL 2.1 functions, reserved words and UDF signatures."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ADQLError


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ADQL_RESERVED = _words("""
    ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CAST CEILING CENTROID CHAR CIRCLE COALESCE
    CONTAINS COORD1 COORD2 COORDSYS COS COT DEGREES DISTANCE DOUBLE EXP FLOOR INTEGER
    INTERSECTS IN_UNIT LOG LOG10 MOD NULL OFFSET PI POINT POLYGON POWER PRECISION
    RADIANS REAL REGION RAND ROUND SIN SMALLINT SQRT TIMESTAMP TOP TAN TRUNCATE VARCHAR
""")

SQL_RESERVED = _words("""
    ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION
    AVG BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CATALOG CHARACTER
    CHAR_LENGTH CHARACTER_LENGTH CHECK CLOSE COLLATE COLLATION COLUMN COMMIT CONNECT
    CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS
    CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY
    DEALLOCATE DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE
    DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DROP ELSE END ESCAPE EXCEPT
    EXCEPTION EXEC EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN
    FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY ILIKE IMMEDIATE
    IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTERSECT INTERVAL INTO IS
    ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX MIN
    MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULLIF NUMERIC
    OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL
    POSITION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REFERENCES
    RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT
    SESSION SESSION_USER SET SIZE SOME SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM
    SYSTEM_USER TABLE TEMPORARY THEN TIME TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING
    TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE UNKNOWN UPDATE UPPER USAGE
    USER USING VALUE VALUES VARYING VIEW WHEN WHENEVER WHERE WITH WORK WRITE YEAR ZONE
""")

RESERVED = ADQL_RESERVED | SQL_RESERVED

AGGREGATES = frozenset({"COUNT", "AVG", "MAX", "MIN", "SUM"})

# name -> (min args, max args or None, result kind)
# kinds: num, str, point, circle, polygon, region, geom, bool, any
BUILTINS: dict[str, tuple[int, int | None, str]] = {
    "ABS": (1, 1, "num"),
    "CEILING": (1, 1, "num"),
    "DEGREES": (1, 1, "num"),
    "EXP": (1, 1, "num"),
    "FLOOR": (1, 1, "num"),
    "LOG": (1, 1, "num"),
    "LOG10": (1, 1, "num"),
    "MOD": (2, 2, "num"),
    "PI": (0, 0, "num"),
    "POWER": (2, 2, "num"),
    "RADIANS": (1, 1, "num"),
    "RAND": (0, 1, "num"),
    "ROUND": (1, 2, "num"),
    "SQRT": (1, 1, "num"),
    "TRUNCATE": (1, 2, "num"),
    "ACOS": (1, 1, "num"),
    "ASIN": (1, 1, "num"),
    "ATAN": (1, 1, "num"),
    "ATAN2": (2, 2, "num"),
    "COS": (1, 1, "num"),
    "COT": (1, 1, "num"),
    "SIN": (1, 1, "num"),
    "TAN": (1, 1, "num"),
    "LOWER": (1, 1, "str"),
    "UPPER": (1, 1, "str"),
    "COALESCE": (1, None, "any"),
    "IN_UNIT": (2, 2, "num"),
    "COUNT": (1, 1, "num"),
    "AVG": (1, 1, "num"),
    "MAX": (1, 1, "any"),
    "MIN": (1, 1, "any"),
    "SUM": (1, 1, "num"),
    # geometry (constructors are normalised in the parser)
    "POINT": (2, 3, "point"),
    "CIRCLE": (2, 4, "circle"),
    "BOX": (3, 5, "polygon"),
    "POLYGON": (3, None, "polygon"),
    "REGION": (1, 1, "region"),
    "CENTROID": (1, 1, "point"),
    "CONTAINS": (2, 2, "num"),
    "INTERSECTS": (2, 2, "num"),
    "DISTANCE": (2, 4, "num"),
    "COORD1": (1, 1, "num"),
    "COORD2": (1, 1, "num"),
    "COORDSYS": (1, 1, "str"),
    "AREA": (1, 1, "num"),
}

#: ADQL function -> (its domain test on the arguments, the error outside the domain)
DOMAINS: dict[str, tuple[Callable[..., bool], str]] = {
    "SQRT": (lambda x: x >= 0, "SQRT of a negative number"),
    "LOG": (lambda x: x > 0, "LOG of zero or a negative number"),
    "LOG10": (lambda x: x > 0, "LOG10 of zero or a negative number"),
    "ACOS": (lambda x: -1 <= x <= 1, "ACOS of a number outside [-1, 1]"),
    "ASIN": (lambda x: -1 <= x <= 1, "ASIN of a number outside [-1, 1]"),
    "COT": (lambda x: math.tan(x) != 0, "COT of zero (division by zero)"),
    "POWER": (lambda a, b: not (a == 0 and b < 0), "zero raised to a negative power"),
}

GEOMETRY_ARG_FUNCS = frozenset({"CENTROID", "CONTAINS", "INTERSECTS", "COORD1", "COORD2",
                                "COORDSYS", "AREA"})

# ADQL type name -> (kind, VOTable datatype, arraysize, xtype)
TYPE_MAP: dict[str, tuple[str, str, str | None, str | None]] = {
    "SMALLINT": ("int", "short", None, None),
    "INTEGER": ("int", "int", None, None),
    "INT": ("int", "int", None, None),
    "BIGINT": ("int", "long", None, None),
    "REAL": ("float", "float", None, None),
    "DOUBLE": ("float", "double", None, None),
    "DOUBLE PRECISION": ("float", "double", None, None),
    "CHAR": ("str", "char", "*", None),
    "VARCHAR": ("str", "char", "*", None),
    "TIMESTAMP": ("ts", "char", "*", "timestamp"),
    "POINT": ("point", "double", "2", "point"),
    "CIRCLE": ("circle", "double", "3", "circle"),
    "POLYGON": ("polygon", "double", "*", "polygon"),
    "REGION": ("region", "char", "*", None),
    "BOOLEAN": ("int", "boolean", None, None),
}

CAST_TYPES = frozenset({"SMALLINT", "INTEGER", "BIGINT", "REAL", "DOUBLE PRECISION", "CHAR",
                        "VARCHAR", "TIMESTAMP", "POINT", "CIRCLE", "POLYGON"})


@dataclass(frozen=True)
class UDF:
    """A user-defined function declared with a TAPRegExt signature."""

    name: str  # upper case
    params: tuple[tuple[str, str], ...]
    returns: str
    form: str = ""  # the TAPRegExt signature it was read from
    description: str = ""

    @property
    def kind(self) -> str:
        if self.returns == "TEXT":
            return "str"
        return TYPE_MAP.get(self.returns, ("any",))[0]


_SIG_RE = re.compile(
    r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*\((.*)\)\s*->"
    r"\s*([A-Za-z][A-Za-z0-9_ ]*?)\s*(\(\s*\d*\s*\*?\s*\))?\s*$",
    re.S,
)


def parse_udf(form: str, description: str = "") -> UDF:
    """Parse a TAPRegExt ``<form>`` such as ``f(a INTEGER, b REAL) -> BIGINT``."""
    m = _SIG_RE.match(form)
    if not m:
        raise ADQLError(f"cannot parse UDF signature {form!r}")
    params = []
    for p in filter(None, (x.strip() for x in m.group(2).split(","))):
        bits = p.split(None, 1)
        if len(bits) != 2:
            raise ADQLError(f"cannot parse parameter {p!r} in UDF signature {form!r}")
        params.append((bits[0], re.sub(r"\s+", " ", bits[1].upper())))
    return UDF(m.group(1).upper(), tuple(params), re.sub(r"\s+", " ", m.group(3).upper()),
               form.strip(), description)


_UDF_TEXTS = (
    ("ivo_nocasematch(value TEXT, pattern TEXT) -> INTEGER",
     """1 if value matches pattern, 0 otherwise; pattern is a LIKE pattern (% any
     characters, _ one character), matched case-insensitively."""),
    ("ivo_hasword(haystack TEXT, word TEXT) -> INTEGER",
     """1 if word occurs in haystack as a whole word, 0 otherwise: compared
     case-insensitively, and the match must not be preceded or followed by a letter,
     digit or underscore (so 'cat' does not match 'catalogue'; punctuation and spaces
     separate words). An empty word matches nothing."""),
    ("ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER",
     """1 if item, compared case-insensitively, is one of the items of hashlist, a list
     of words joined by hash signs (#); 0 otherwise."""),
    ("ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC) -> INTEGER",
     """1 if the interval [l1, h1] overlaps the interval [l2, h2], 0 otherwise;
     intervals that only touch (h1 = l2 or h2 = l1) overlap."""),
    ("ivo_string_agg(expr TEXT, delim TEXT) -> TEXT",
     """An aggregate function: the non-NULL values of expr in a group, joined by delim
     (a string literal), in no particular order; NULL for a group without values."""),
)
#: the user-defined functions this package translates (TAPRegExt ``features-udf``):
#: the one list the parser, the translator and the TAP capabilities read.  The
#: scalar ones give NULL when an argument is NULL.
IMPLEMENTED_UDFS: tuple[UDF, ...] = tuple(parse_udf(form, " ".join(text.split()))
                                          for form, text in _UDF_TEXTS)
