"""Account ids are never reused on SQLite: skvo_user gets AUTOINCREMENT (commit a1dec35).

Async jobs belong to an account id, so an id given again after a removal would
hand the removed account's jobs to the new one.  MySQL/MariaDB never reuse
AUTO_INCREMENT ids: nothing to do there.  SQLite cannot add AUTOINCREMENT to a
table, so the table is rebuilt (the grants, which the old table's drop
deletes, are put back).  The next id is one past the highest id still there.

Revision ID: 2026_12_c1_user_ids
Revises: 2026_12_c_target_radec
"""

from __future__ import annotations

from alembic import op

revision = "2026_12_c1_user_ids"
down_revision = "2026_12_c_target_radec"
branch_labels = None
depends_on = None

#: skvo_user as of this revision (what SQLAlchemy creates for voservice.model.skvo_user)
CREATE = """CREATE TABLE skvo_user (
	user_id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	name VARCHAR(64) NOT NULL,
	password_hash VARCHAR(255),
	token_hash VARCHAR(64),
	is_admin BOOLEAN NOT NULL,
	created DATETIME NOT NULL,
	UNIQUE (name),
	UNIQUE (token_hash)
)"""
COLUMNS = "user_id, name, password_hash, token_hash, is_admin, created"


def upgrade() -> None:
    """Rebuild skvo_user with AUTOINCREMENT on SQLite."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'skvo_user'").scalar()
    if sql is None or "AUTOINCREMENT" in sql.upper():
        return
    # DROP TABLE skvo_user deletes the grants (ON DELETE CASCADE; foreign keys cannot be
    # switched off inside the transaction): they are kept aside and put back
    bind.exec_driver_sql("CREATE TEMPORARY TABLE _grants_2026_11 AS SELECT * FROM access_grant")
    bind.exec_driver_sql(CREATE.replace("skvo_user", "_skvo_user_new", 1))
    bind.exec_driver_sql(f"INSERT INTO _skvo_user_new ({COLUMNS}) SELECT {COLUMNS} "
                         "FROM skvo_user")
    bind.exec_driver_sql("DROP TABLE skvo_user")
    bind.exec_driver_sql("ALTER TABLE _skvo_user_new RENAME TO skvo_user")
    bind.exec_driver_sql("INSERT INTO access_grant SELECT * FROM _grants_2026_11")
    bind.exec_driver_sql("DROP TABLE _grants_2026_11")
