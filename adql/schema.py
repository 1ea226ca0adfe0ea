"""Published tables and columns the translator may use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple


class Footprint(NamedTuple):
    """A polygon column that is BOX(POINT(ra, dec), size, size) of other columns of
    its table (a field-of-view square, :func:`adql.geometry.box_vertices`).

    ``ra``, ``dec`` and ``size`` name those columns; ``max_size_sql`` is an SQL
    scalar (in the table's dialect) no smaller than any row's size, bounding
    the index-friendly declination band the predicates on the column use.
    """

    ra: str
    dec: str
    size: str
    max_size_sql: str


@dataclass(frozen=True)
class Column:
    """A published column (TAP_SCHEMA.columns-like metadata).

    A geometry column may take ``sql_width`` consecutive SQL columns of its
    table (the first named as the column, then ``<name>__2``, ...); a
    ``footprint`` says how its polygon is made.
    """

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    indexed: bool = False
    sql_width: int = 1
    footprint: Footprint | None = None
    #: False for a column that never holds NULL (ORDER BY then needs no NULL placement)
    nullable: bool = True


@dataclass(frozen=True)
class OutputColumn(Column):
    """A column of a translated query's result.

    ``sql_width`` is the number of consecutive SQL result columns making up
    the value: 2 for a POINT (lon, lat), 3 for a CIRCLE, 2n for a polygon.
    """


@dataclass(frozen=True)
class Table:
    """A published table.

    ``sql`` is a FROM fragment in the target dialect (a quoted table name or a
    parenthesised subquery), emitted verbatim followed by ``AS <alias>``.
    """

    name: str
    columns: tuple[Column, ...]
    sql: str

    @property
    def schema_name(self) -> str | None:
        return self.name.rsplit(".", 1)[0] if "." in self.name else None

    @property
    def table_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


class Schema:
    """The set of tables a query may use, looked up case-insensitively."""

    def __init__(self, tables: Iterable[Table]):
        self.tables: tuple[Table, ...] = tuple(tables)
        self._by_full: dict[str, list[Table]] = {}
        self._by_short: dict[str, list[Table]] = {}
        for t in self.tables:
            self._by_full.setdefault(t.name.lower(), []).append(t)
            self._by_short.setdefault(t.table_name.lower(), []).append(t)

    def __iter__(self):
        return iter(self.tables)

    def candidates(self, parts: Sequence[tuple[str, bool]]) -> list[Table]:
        """Tables matching a name given as (identifier, delimited) parts."""
        if len(parts) == 1:
            pool = self._by_short.get(parts[0][0].lower(), [])
        else:
            pool = self._by_full.get(".".join(p for p, _ in parts[-2:]).lower(), [])
        out = []
        for t in pool:
            names = ([t.schema_name] if len(parts) > 1 else []) + [t.table_name]
            if all(not delim or have == want
                   for (want, delim), have in zip(parts[-len(names):], names, strict=True)):
                out.append(t)
        return out

    def get(self, name: str) -> Table | None:
        """The table with this qualified (or unique unqualified) name."""
        parts = [(p, False) for p in name.split(".")]
        found = self.candidates(parts[-2:])
        return found[0] if len(found) == 1 else None
