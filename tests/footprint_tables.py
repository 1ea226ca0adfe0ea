"""A table of positions with field-of-view squares (a footprint column like
ivoa.obscore.s_region) on SQLite and MariaDB, its ADQL schema, and a runner that
asks both databases: shared by the s_region and REGION test files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from conftest import DB_PREFIX, pymysql_database

import adql
from adql import Column, Schema, Table, geometry
from adql.schema import Footprint
from adql.sqlite_functions import register

#: the eight SQL columns of the square's vertices, as voservice's catalog names them
REGION_COLUMNS = ", ".join(f"s_region{'' if k == 1 else f'__{k}'} DOUBLE" for k in range(1, 9))


def schemas(adql_name: str, sql_table: str, id_col: str, ra: str, dec: str
            ) -> dict[str, Schema]:
    """The ADQL schema of the table, by dialect: id, ra, dec, s_fov and s_region."""
    def one(q: str) -> Schema:
        region = Column("s_region", "char", "*", xtype="adql:REGION", sql_width=8,
                        footprint=Footprint(ra, dec, "s_fov",
                                            f"(SELECT MAX(s_fov) FROM {q}{sql_table}{q})"))
        return Schema([Table(adql_name, (
            Column(id_col, "long"), Column(ra, "double", unit="deg"),
            Column(dec, "double", unit="deg"), Column("s_fov", "double", unit="deg"),
            region), f"{q}{sql_table}{q}")])

    return {"sqlite": one('"'), "mysql": one("`")}


def databases(name: str, sql_table: str, id_col: str, ra: str, dec: str,
              rows: list[tuple]) -> Iterator[dict[str, object]]:
    """Both databases holding ``rows`` (id, ra, dec, fov) with their squares' vertices
    (none without a position or a usable field of view); the MariaDB one is dropped at
    the end.  For a module fixture: ``yield from databases(...)``."""
    full = [(*r, *((geometry.fov_region(r[1], r[2], r[3]) if r[2] is not None else None)
                   or [None] * 8)) for r in rows]
    lite = sqlite3.connect(":memory:")
    register(lite)
    lite.execute(f"CREATE TABLE {sql_table} ({id_col} INTEGER, {ra} REAL, {dec} REAL, "
                 f"s_fov REAL, {REGION_COLUMNS})")
    lite.executemany(f"INSERT INTO {sql_table} VALUES ({', '.join(['?'] * 12)})", full)
    my = pymysql_database(name)
    cur = my.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {sql_table}")
    cur.execute(f"CREATE TABLE {sql_table} ({id_col} BIGINT, {ra} DOUBLE, `{dec}` DOUBLE, "
                f"s_fov DOUBLE, {REGION_COLUMNS}, INDEX (`{dec}`))")
    cur.executemany(f"INSERT INTO {sql_table} VALUES ({', '.join(['%s'] * 12)})", full)
    yield {"sqlite": lite, "mysql": my}
    cur.execute(f"DROP DATABASE IF EXISTS `{DB_PREFIX}{name}`")
    my.close()
    lite.close()


def run_both(dbs: dict[str, object], schema: dict[str, Schema], adql_text: str,
             same: bool = True) -> dict[str, list[tuple]]:
    """The sorted rows of the query on both databases, by dialect (asserted equal unless
    ``same`` is false: computed doubles may differ in their last bit)."""
    out = {}
    for dialect, con in dbs.items():
        sql = adql.translate(adql_text, schema[dialect], dialect).sql
        if dialect == "sqlite":
            rows = con.execute(sql).fetchall()
        else:
            with con.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
        out[dialect] = sorted(tuple(r) for r in rows)
    assert out["sqlite"] == out["mysql"] or not same, adql_text
    return out
