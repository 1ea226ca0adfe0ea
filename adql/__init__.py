"""ADQL 2.1 -> SQL (MySQL/MariaDB, SQLite) translation for SKVO.

>>> import adql
>>> q = adql.parse("SELECT TOP 5 ra, dec FROM t")
>>> t = adql.translate(q, schema, "sqlite")    # doctest: +SKIP
"""

from .errors import ADQLError
from .functions import IMPLEMENTED_UDFS, UDF
from .parser import Query, parse
from .schema import Column, OutputColumn, Schema, Table
from .translate import Translation, translate

__all__ = [
    "ADQLError",
    "Column",
    "IMPLEMENTED_UDFS",
    "OutputColumn",
    "Query",
    "Schema",
    "Table",
    "Translation",
    "UDF",
    "parse",
    "translate",
]
