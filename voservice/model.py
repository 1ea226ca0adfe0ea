"""SQLAlchemy ORM of the metadata.

The published tables are generated from ``resources/tables`` (see
``voservice.tables``); this module maps ORM classes onto them and defines
the internal tables of user accounts, access grants and failed logins, which
TAP never publishes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry

from voservice import tables

AUTH_METADATA = sa.MetaData()

skvo_user = sa.Table(
    "skvo_user",
    AUTH_METADATA,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.DateTime, nullable=False, default=lambda: dt.datetime.now(dt.UTC)),
    # ids are never reused (SQLite would reuse the highest after a removal):
    # async jobs belong to an account id
    sqlite_autoincrement=True,
    **tables.MYSQL_TABLE_OPTIONS,
)

access_grant = sa.Table(
    "access_grant",
    AUTH_METADATA,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("skvo_user.user_id", ondelete="CASCADE"),
              primary_key=True),
    # a grant opens every observation of one source (collection), e.g. "upjs"
    sa.Column("source", sa.String(64), primary_key=True),
    **tables.MYSQL_TABLE_OPTIONS,
)

#: failed logins, shared by every worker and host: one row per account name
#: (``name:`` + SHA-256 of the name, so mistyped passwords in the name field
#: are not stored) and per client address (``addr:`` + address)
login_failure = sa.Table(
    "skvo_login_failure",
    AUTH_METADATA,
    sa.Column("throttle_key", sa.String(80), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure", sa.Double, nullable=False),  # Unix time, seconds
    sa.Column("blocked_until", sa.Double, nullable=False),  # Unix time; 0 = not blocked
    **tables.MYSQL_TABLE_OPTIONS,
)

#: UWS jobs (voservice.jobs), shared by every web host and job runner; internal
#: like the tables above (never in TAP_SCHEMA, not in the ADQL schema)
uws_job = sa.Table(
    "skvo_uws_job",
    AUTH_METADATA,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=True),  # account name, for display
    sa.Column("owner_id", sa.Integer, nullable=True),  # what ownership is decided by
    sa.Column("client", sa.String(64), nullable=True),  # address key of anonymous jobs
    sa.Column("owner_key", sa.String(128), nullable=False),  # quotas, fair queue
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("creation_time", sa.Double, nullable=False),  # Unix time, seconds
    sa.Column("start_time", sa.Double, nullable=True),
    sa.Column("end_time", sa.Double, nullable=True),
    sa.Column("queued_at", sa.Double, nullable=True),  # the queue's order
    sa.Column("execution_duration", sa.Integer, nullable=False),
    sa.Column("destruction", sa.Double, nullable=True),
    sa.Column("parameters", sa.Text(2**32 - 1), nullable=False),  # JSON [[name, value]]
    sa.Column("uploads", sa.Text(2**16 - 1), nullable=False),  # JSON {part: file name}
    sa.Column("result_mime", sa.String(255), nullable=True),
    sa.Column("result_size", sa.BigInteger, nullable=True),
    sa.Column("error_message", sa.Text(2**24 - 1), nullable=True),
    sa.Column("error_type", sa.String(16), nullable=False),
    sa.Column("node", sa.String(255), nullable=True),  # host (node) whose runner claimed it
    sa.Column("runner", sa.String(255), nullable=True),  # that runner's id (node/pid/token)
    sa.Column("lease_until", sa.Double, nullable=True),  # the runner's heartbeat extends it
    sa.Column("base_url", sa.String(2048), nullable=True),  # the creating request's public URL
    sa.Column("version", sa.Integer, nullable=False),  # optimistic updates
    sa.Index("ix_skvo_uws_job_phase", "phase", "queued_at"),
    sa.Index("ix_skvo_uws_job_owner", "owner_key", "phase"),
    sa.Index("ix_skvo_uws_job_destruction", "destruction"),
    **tables.MYSQL_TABLE_OPTIONS,
)

#: one row per job owner: its row lock serialises quota checks across hosts
uws_owner = sa.Table(
    "skvo_uws_owner",
    AUTH_METADATA,
    sa.Column("owner_key", sa.String(128), primary_key=True),
    sa.Column("locked_at", sa.Double, nullable=False),
    **tables.MYSQL_TABLE_OPTIONS,
)

#: derived data an upgrade still has to fill in (voservice.migrations.tasks): a
#: revision whose new table or column takes its values from other data adds a row,
#: ``skvo upgrade`` removes it once done; the service refuses to serve while any is left
upgrade_task = sa.Table(
    "skvo_upgrade_task",
    AUTH_METADATA,
    sa.Column("task", sa.String(32), primary_key=True),
    sa.Column("revision", sa.String(64), nullable=False),  # the revision that asked for it
    **tables.MYSQL_TABLE_OPTIONS,
)

mapper_registry = registry()


class _Row:
    """Base of the mapped classes: keyword construction and a readable repr."""

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        pk = [c.name for c in sa.inspect(type(self)).primary_key]
        ident = ", ".join(f"{k}={getattr(self, k, None)!r}" for k in pk)
        return f"{type(self).__name__}({ident})"


class Organisation(_Row):
    """A data-providing organisation."""


class DataId(_Row):
    """A dataset identity (title, publisher, publisher DID)."""


class Facility(_Row):
    """An observatory."""


class Instrument(_Row):
    """An instrument (telescope + camera [+ spectroscope])."""


class Bandpass(_Row):
    """A photometric filter."""


class Target(_Row):
    """An observed object."""


class Observation(_Row):
    """One target observed in one night in one bandpass, from one source."""


class Photometry(_Row):
    """A photometry series: the light curve of an observation."""


class Frame(_Row):
    """An image frame of a series."""


class User(_Row):
    """A service account (HTTP Basic password and/or bearer token)."""


_MAPPED = {
    Organisation: "organisation",
    DataId: "dataid",
    Facility: "facility",
    Instrument: "instrument",
    Bandpass: "bandpass",
    Target: "target",
    Observation: "observation",
    Photometry: "photometry",
    Frame: "frame",
}

for _cls, _name in _MAPPED.items():
    mapper_registry.map_imperatively(_cls, tables.METADATA.tables[_name])
mapper_registry.map_imperatively(User, skvo_user)
