"""Schema migrations of the metadata database (Alembic), from the 2026-11 release on.

A new archive is created from the table descriptions (``create_all``) and
stamped at the newest revision (the head); an existing one is upgraded
revision by revision, its data kept.  An archive without a revision table was
made by the 2026-11 release or a later SKVO before migrations existed: it is
stamped at the baseline first (the revisions only add what is missing, see
:mod:`voservice.migrations.ops`).  Derived data a revision needs filled in
(public flags, aliases, ``skvo.point`` rows, times of minimum) are computed
afterwards with the current code (:mod:`voservice.migrations.tasks`).

The revisions live in ``versions/`` beside this file; no ``alembic.ini`` is
read: :func:`config` points Alembic here.  They always run on the writer
engine (``[metadata] url``); the service only reads the revision, through the
SELECT-only query account if one is set.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from voservice.stores.metadata import SchemaMismatch

HERE = Path(__file__).resolve().parent
#: the revision of the 2026-11 release's schema (commit 8c8bc7e)
BASELINE = "2026_11"
#: a table every SKVO archive has (tells an old archive from an empty database)
MARKER_TABLE = "observation"
UPGRADE_HINT = "run `skvo upgrade` (with the writer [metadata] url) to bring it up to date"


class SchemaBehind(SchemaMismatch):
    """The archive's schema is older than this SKVO's (or an upgrade is unfinished)."""


def config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration: the scripts of this package, run on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision (the schema this SKVO's table descriptions make)."""
    heads = _script().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {heads}")
    return heads[0]


def target_metadata() -> sa.MetaData:
    """Every table ``skvo initdb`` creates in the metadata database (with the ``sql``
    time-series store), as one MetaData (what the revisions must arrive at)."""
    from voservice import tables
    from voservice.model import AUTH_METADATA
    from voservice.resolver import CACHE_METADATA
    from voservice.stores.timeseries.sql import POINT_METADATA

    md = sa.MetaData()
    for part in (tables.METADATA, AUTH_METADATA, CACHE_METADATA, POINT_METADATA):
        for table in part.tables.values():
            table.to_metadata(md)
    return md


def current(conn: sa.Connection) -> str | None:
    """The archive's revision (None: unversioned or empty)."""
    return MigrationContext.configure(conn).get_current_revision()


def state(engine: sa.Engine) -> str:
    """``empty``, ``current``, ``behind``, ``unfinished`` (tasks pending) or ``ahead``."""
    with engine.connect() as conn:
        rev = current(conn)
        if rev is None:
            return "behind" if sa.inspect(conn).has_table(MARKER_TABLE) else "empty"
        if rev == head():
            from voservice.model import upgrade_task

            if conn.execute(sa.select(sa.func.count()).select_from(upgrade_task)).scalar():
                return "unfinished"
            return "current"
        try:
            _script().get_revision(rev)
        except Exception:  # noqa: BLE001 - alembic raises several kinds for unknown ids
            return "ahead"
        return "behind"


def require_current(engine: sa.Engine) -> None:
    """Raise :class:`SchemaBehind` unless the archive is at the head with nothing pending."""
    found = state(engine)
    if found == "current":
        return
    where = engine.url.render_as_string(hide_password=True)
    if found == "empty":
        raise SchemaBehind(f"{where} holds no SKVO archive: run `skvo initdb`")
    if found == "ahead":
        raise SchemaBehind(f"the archive {where} was upgraded by a newer SKVO (schema "
                           "revision unknown here): run that version")
    if found == "unfinished":
        raise SchemaBehind(f"the upgrade of the archive {where} did not finish; {UPGRADE_HINT}")
    with engine.connect() as conn:
        rev = current(conn) or f"{BASELINE} or later, unversioned"
    raise SchemaBehind(f"the archive {where} has an older schema (revision {rev}; this SKVO "
                       f"needs {head()}): {UPGRADE_HINT}")


def stamp_head(engine: sa.Engine) -> None:
    """Record a newly created archive as being at the head."""
    with engine.connect() as conn:
        command.stamp(config(conn), head())
        conn.commit()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Upgrade an existing archive to the head; returns (revision before, head).

    An unversioned archive is stamped at :data:`BASELINE` first.  Running it
    again on an archive at the head does nothing.
    """
    with engine.connect() as conn:
        before = current(conn)
        cfg = config(conn)
        if before is None:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
        conn.commit()
    return before, head()
