"""The SQL time-series store keeps chunks of points, not a row per point (commit 6c187a3).

ts_point becomes ts_chunk.

Only where the archive used the sql backend (it has ts_point): every series'
points are rewritten as chunks, in the layout of that commit (frozen here:
:data:`RECORD`), and ts_point is dropped.  A series whose chunks exist
already is rewritten again, so an interrupted run can simply be repeated.

Revision ID: 2026_12_b_ts_chunk
Revises: 2026_12_a_public_flags
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_b_ts_chunk"
down_revision = "2026_12_a_public_flags"
branch_labels = None
depends_on = None

import json  # noqa: E402

import numpy as np  # noqa: E402
from alembic import op  # noqa: E402
from sqlalchemy.dialects import mysql  # noqa: E402

OLD = "ts_point"
#: points per chunk and the record layout of ts_chunk.points as of this revision
CHUNK_POINTS = 10_000
RECORD = np.dtype([
    ("time_us", "<i8"), ("magnitude", "<f8"), ("magnitude_error", "<f8"), ("exposure", "<f8"),
    ("flux_calibration_level", "<i8"), ("flux_calibration", "<u2"),
    ("timeframe_reference_position", "<u2"),
])
TEXT = ("flux_calibration", "timeframe_reference_position")
NUMBERS = ("time_us", "magnitude", "magnitude_error", "exposure", "flux_calibration_level")
chunk = sa.table("ts_chunk", *(sa.column(c) for c in (
    "series_id", "start_us", "end_us", "n_points", "labels", "points")))
point = sa.table(OLD, *(sa.column(c) for c in (*NUMBERS, *TEXT, "series_id")))


def encode(series_id: int, rows: list[sa.Row]) -> list[dict[str, object]]:
    """The ts_chunk rows of one series' points (time order)."""
    out = []
    for start in range(0, len(rows), CHUNK_POINTS):
        part = rows[start:start + CHUNK_POINTS]
        records = np.empty(len(part), RECORD)
        for name in NUMBERS:
            records[name] = [getattr(r, name) for r in part]
        labels = {}
        for name in TEXT:
            values, codes = np.unique(np.array([str(getattr(r, name)) for r in part]),
                                      return_inverse=True)
            labels[name] = values.tolist()
            records[name] = codes
        out.append({"series_id": series_id, "start_us": int(records["time_us"][0]),
                    "end_us": int(records["time_us"][-1]), "n_points": len(part),
                    "labels": json.dumps(labels, ensure_ascii=False),
                    "points": records.tobytes()})
    return out


def upgrade() -> None:
    """Move every series of ts_point into ts_chunk, then drop ts_point."""
    if not ops.has_table(OLD):
        return  # another time-series backend: no points in this database
    ops.create_table(
        "ts_chunk",
        sa.Column("series_id", sa.BigInteger(), autoincrement=False, primary_key=True),
        sa.Column("start_us", sa.BigInteger(), autoincrement=False, primary_key=True),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("n_points", sa.Integer(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("points", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql"),
                  nullable=False),
        mysql_collate=None, sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    series = bind.execute(sa.select(point.c.series_id).distinct()).scalars().all()
    for series_id in series:
        rows = bind.execute(sa.select(point).where(point.c.series_id == series_id)
                            .order_by(point.c.time_us)).all()
        bind.execute(chunk.delete().where(chunk.c.series_id == series_id))
        bind.execute(chunk.insert(), encode(int(series_id), rows))
    op.drop_table(OLD)
