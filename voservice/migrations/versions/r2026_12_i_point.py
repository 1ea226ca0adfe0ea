"""skvo.point: every light-curve point as a row for ADQL (commit a700ef8).

The points task writes the rows of the series already loaded, read from the
time-series store.

Revision ID: 2026_12_i_point
Revises: 2026_12_h_facility_location
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_i_point"
down_revision = "2026_12_h_facility_location"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create point."""
    ops.create_table(
        "point",
        sa.Column("observation_id", ops.LONG, sa.ForeignKey("observation.observation_id"),
                  nullable=False),
        sa.Column("target_id", ops.LONG, sa.ForeignKey("target.target_id"), nullable=False),
        sa.Column("bandpass_id", ops.LONG, nullable=False),
        sa.Column("point_index", sa.Integer(), nullable=False),
        sa.Column("mjd", sa.Double(), nullable=False),
        sa.Column("magnitude", sa.Double(), nullable=False),
        sa.Column("magnitude_error", sa.Double(), nullable=False),
        sa.Column("exposure", sa.Double(), nullable=True),
        sa.Column("flux_calibration", sa.String(8), nullable=False),
        sa.Column("flux_calibration_level", sa.SmallInteger(), nullable=False),
        sa.Column("time_refposition", sa.String(16), nullable=False),
        sa.Column("frame_url", sa.Text(), nullable=True),
        ops.public_flag(),
        sa.UniqueConstraint("target_id", "bandpass_id", "mjd", "observation_id", "point_index",
                            name="uq_point_0"),
    )
    ops.create_index("ix_point_observation_id", "point", ["observation_id"])
    ops.add_task("points", revision)
