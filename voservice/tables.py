"""The published tables, read from ``resources/tables/*.toml``.

Each TOML file describes one schema.  From that one description this module
derives the SQLAlchemy tables (the database schema), the TAP_SCHEMA rows, the
VOSI tableset, the ADQL schema and the VOTable FIELDs, so that a column's
name, type, unit, UCD and description are stated exactly once.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

if TYPE_CHECKING:
    import adql

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
TABLES_DIR = RESOURCES / "tables"
#: schemas in the order they are listed (TAP_SCHEMA.schemas.schema_index)
SCHEMA_ORDER = ("ivoa", "skvo", "TAP_SCHEMA")


@dataclass(frozen=True)
class ColumnDesc:
    """One column of a published (or internal) table."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    primary: bool = False
    nullable: bool = True
    unique: bool = False
    indexed: bool = False
    principal: bool = False
    std: bool = False
    references: str | None = None
    published: bool = True
    default: int | float | str | None = None
    computed: bool = False  # published, computed by the table's TAP select, not stored

    @property
    def tap_name(self) -> str:
        """The name as TAP_SCHEMA and VOSI give it: delimited if an ADQL reserved word."""
        from adql.functions import RESERVED

        return f'"{self.name}"' if self.name.upper() in RESERVED else self.name

    @property
    def size(self) -> int | None:
        """TAP 1.1 ``size``: the arraysize without ``*``, None for scalars."""
        if not self.arraysize or self.arraysize == "*":
            return None
        digits = self.arraysize.rstrip("*")
        return int(digits) if digits.isdigit() else None

    def adql_column(self) -> adql.Column:
        """This column as the ADQL translator sees it."""
        import adql

        return adql.Column(
            name=self.name,
            datatype=self.datatype,
            arraysize=self.arraysize,
            xtype=self.xtype,
            unit=self.unit,
            ucd=self.ucd,
            utype=self.utype,
            description=self.description,
            indexed=self.indexed or self.primary,
            nullable=self.nullable and not self.primary,
        )


@dataclass(frozen=True)
class TableDesc:
    """One table: its schema, name, columns and how access rights apply."""

    schema: str
    name: str
    description: str
    columns: tuple[ColumnDesc, ...]
    table_type: str = "table"
    utype: str | None = None
    visibility: str = "public"
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def qualified_name(self) -> str:
        """The name ADQL queries use, e.g. ``skvo.target``."""
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        """The table's name in the database."""
        if self.schema == "skvo":
            return self.name
        return f"{self.schema.lower()}_{self.name}"

    @property
    def published_columns(self) -> tuple[ColumnDesc, ...]:
        """Columns TAP shows, in their order."""
        return tuple(c for c in self.columns if c.published)

    def column(self, name: str) -> ColumnDesc:
        """Return a column by name (KeyError if absent)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified_name} has no column {name!r}")

    def foreign_keys(self) -> Iterator[tuple[ColumnDesc, str, str]]:
        """Yield (column, target table name in this schema, target column)."""
        for col in self.columns:
            if col.references:
                table, column = col.references.split(".")
                yield col, table, column


@dataclass(frozen=True)
class SchemaDesc:
    """One schema and its tables."""

    name: str
    description: str
    tables: tuple[TableDesc, ...] = field(default=())
    utype: str | None = None


def _load_schema(path: Path) -> SchemaDesc:
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    schema = doc["schema"]["name"]
    tables = []
    for table in doc.get("table", []):
        columns = tuple(ColumnDesc(**col) for col in table["columns"])
        tables.append(
            TableDesc(
                schema=schema,
                name=table["name"],
                description=table["description"],
                columns=columns,
                table_type=table.get("table_type", "table"),
                utype=table.get("utype"),
                visibility=table.get("visibility", "public"),
                unique=tuple(tuple(u) for u in table.get("unique", ())),
                indexes=tuple(tuple(i) for i in table.get("indexes", ())),
            )
        )
    return SchemaDesc(
        name=schema,
        description=doc["schema"]["description"],
        tables=tuple(tables),
        utype=doc["schema"].get("utype"),
    )


@cache
def load_schemas(directory: Path = TABLES_DIR) -> tuple[SchemaDesc, ...]:
    """All schema descriptions, in SCHEMA_ORDER (then alphabetically)."""
    schemas = [_load_schema(p) for p in sorted(directory.glob("*.toml"))]
    order = {name: i for i, name in enumerate(SCHEMA_ORDER)}
    schemas.sort(key=lambda s: (order.get(s.name, len(order)), s.name))
    return tuple(schemas)


def all_tables() -> tuple[TableDesc, ...]:
    """Every described table in listing order."""
    return tuple(t for s in load_schemas() for t in s.tables)


def table(qualified_name: str) -> TableDesc:
    """Look a table up by its qualified name (case-insensitive)."""
    wanted = qualified_name.lower()
    for desc in all_tables():
        if desc.qualified_name.lower() == wanted:
            return desc
    raise KeyError(f"no table {qualified_name!r} is described")


# --------------------------------------------------------------------------
# The database schema


class Timestamp(sa.types.TypeDecorator):
    """UTC timestamps with microseconds.

    MySQL/MariaDB: DATETIME(6).  SQLite: ISO 8601 text with a ``T``
    (``2018-02-17T21:03:04.123456``), so that ADQL string comparisons such as
    ``start_date > '2018-02-17T00:00:00'`` order correctly.
    """

    impl = sa.String(26)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.String(26))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", ""))
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if dialect.name in ("mysql", "mariadb"):
            return value
        return value.isoformat(timespec="microseconds")

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None or isinstance(value, dt.datetime):
            return value
        return dt.datetime.fromisoformat(value)


def sql_type(col: ColumnDesc) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type that stores a described column."""
    if col.xtype == "timestamp":
        return Timestamp()
    match col.datatype:
        case "long":
            return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        case "int":
            return sa.Integer()
        case "short":
            return sa.SmallInteger()
        case "double":
            return sa.Double()
        case "float":
            return sa.Float()
        case "boolean":
            return sa.Boolean()
        case "char" | "unicodeChar":
            digits = (col.arraysize or "*").rstrip("*")
            if digits.isdigit():
                return sa.String(int(digits))
            return sa.Text()
    raise ValueError(f"column {col.name}: unsupported datatype {col.datatype!r}")


#: ADQL compares strings case-sensitively: use a binary collation on MySQL
MYSQL_TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def build_metadata() -> sa.MetaData:
    """SQLAlchemy tables of every described table that is not a view."""
    md = sa.MetaData()
    for schema in load_schemas():
        for desc in schema.tables:
            if desc.table_type != "table":
                continue
            targets = {t.name: t.sql_name for t in schema.tables}
            columns: list[sa.SchemaItem] = []
            # a multi-column index serves its leading column: no second index for it
            leading = {cols[0] for cols in desc.indexes}
            for col in desc.columns:
                if col.computed:  # no database column
                    continue
                args: list[Any] = []
                if col.references:
                    ref_table, ref_col = col.references.split(".")
                    args.append(sa.ForeignKey(f"{targets[ref_table]}.{ref_col}"))
                columns.append(
                    sa.Column(
                        col.name,
                        sql_type(col),
                        *args,
                        primary_key=col.primary,
                        nullable=col.nullable and not col.primary,
                        unique=col.unique,
                        index=col.indexed and not col.unique and col.name not in leading,
                        autoincrement=col.primary and col.datatype == "long",
                        server_default=None if col.default is None
                        else sa.text(repr(col.default)),
                    )
                )
            for i, cols in enumerate(desc.unique):
                columns.append(sa.UniqueConstraint(*cols, name=f"uq_{desc.sql_name}_{i}"))
            sa_table = sa.Table(desc.sql_name, md, *columns, **MYSQL_TABLE_OPTIONS)
            for i, cols in enumerate(desc.indexes):
                sa.Index(f"ix_{desc.sql_name}_multi_{i}", *(sa_table.c[c] for c in cols))
    return md


METADATA = build_metadata()


def sa_table(qualified_name: str) -> sa.Table:
    """The SQLAlchemy table of a described (non-view) table."""
    return METADATA.tables[table(qualified_name).sql_name]


# --------------------------------------------------------------------------
# TAP_SCHEMA content


def tap_schema_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows of the five TAP_SCHEMA tables, keyed by their qualified names."""
    rows: dict[str, list[dict[str, Any]]] = {
        "TAP_SCHEMA.schemas": [],
        "TAP_SCHEMA.tables": [],
        "TAP_SCHEMA.columns": [],
        "TAP_SCHEMA.keys": [],
        "TAP_SCHEMA.key_columns": [],
    }
    table_index = 0
    for schema_index, schema in enumerate(load_schemas()):
        rows["TAP_SCHEMA.schemas"].append(
            {
                "schema_name": schema.name,
                "utype": schema.utype,
                "description": schema.description,
                "schema_index": schema_index,
            }
        )
        for desc in schema.tables:
            table_index += 1
            rows["TAP_SCHEMA.tables"].append(
                {
                    "schema_name": schema.name,
                    "table_name": desc.qualified_name,
                    "table_type": desc.table_type,
                    "utype": desc.utype,
                    "description": desc.description,
                    "table_index": table_index,
                }
            )
            for column_index, col in enumerate(desc.published_columns):
                rows["TAP_SCHEMA.columns"].append(
                    {
                        "table_name": desc.qualified_name,
                        "column_name": col.tap_name,
                        "datatype": col.datatype,
                        "arraysize": col.arraysize,
                        "xtype": col.xtype,
                        "size": col.size,
                        "description": col.description,
                        "utype": col.utype,
                        "unit": col.unit,
                        "ucd": col.ucd,
                        "indexed": int(col.indexed or col.primary or col.unique),
                        "principal": int(col.principal),
                        "std": int(col.std),
                        "column_index": column_index + 1,
                    }
                )
            for col, target, target_col in desc.foreign_keys():
                key_id = f"{desc.qualified_name}.{col.name}"
                rows["TAP_SCHEMA.keys"].append(
                    {
                        "key_id": key_id,
                        "from_table": desc.qualified_name,
                        "target_table": f"{schema.name}.{target}",
                        "description": col.description,
                        "utype": None,
                    }
                )
                rows["TAP_SCHEMA.key_columns"].append(
                    {"key_id": key_id, "from_column": col.name, "target_column": target_col}
                )
    return rows
