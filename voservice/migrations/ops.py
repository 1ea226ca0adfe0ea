"""Idempotent schema operations for the revisions.

Archives made between two releases had no revision table, only the tables
their SKVO had created; the revisions therefore create, add and drop only
what is missing or present, so that stamping such an archive at the 2026-11
baseline and upgrading it is always right.  Every table gets the options all
SKVO tables have (InnoDB, utf8mb4, binary collation on MySQL/MariaDB).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from voservice.tables import MYSQL_TABLE_OPTIONS

#: a long id: BIGINT on MySQL/MariaDB, INTEGER on SQLite (its rowid alias)
LONG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _inspector() -> sa.Inspector:
    return sa.inspect(op.get_bind())


def has_table(name: str) -> bool:
    """Does the database have the table?"""
    return _inspector().has_table(name)


def create_table(name: str, *items: sa.SchemaItem, **options: Any) -> bool:
    """Create the table unless it exists; True when created."""
    if has_table(name):
        return False
    merged = {**MYSQL_TABLE_OPTIONS, **options}
    op.create_table(name, *items, **{k: v for k, v in merged.items() if v is not None})
    return True


def add_column(table: str, column: sa.Column[Any]) -> None:
    """Add the column unless the table has it."""
    if column.name not in {c["name"] for c in _inspector().get_columns(table)}:
        op.add_column(table, column)


def _index_names(table: str) -> set[str]:
    return {i["name"] for i in _inspector().get_indexes(table)}


def create_index(name: str, table: str, columns: list[str]) -> None:
    """Create the (non-unique) index unless it exists."""
    if name not in _index_names(table):
        op.create_index(name, table, columns)


def drop_index(name: str, table: str) -> None:
    """Drop the index if it exists."""
    if name in _index_names(table):
        op.drop_index(name, table_name=table)


def public_flag() -> sa.Column[Any]:
    """The internal ``public`` flag of a table whose rows follow access rights."""
    return sa.Column("public", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)


def add_task(task: str, revision: str) -> None:
    """Ask the upgrade to fill derived data in once the schema is current
    (:mod:`voservice.migrations.tasks`); the table is made by the first revision."""
    table = sa.table("skvo_upgrade_task", sa.column("task"), sa.column("revision"))
    bind = op.get_bind()
    if bind.execute(sa.select(table.c.task).where(table.c.task == task)).first() is None:
        bind.execute(table.insert().values(task=task, revision=revision))
