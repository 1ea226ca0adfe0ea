"""skvo.minimum: times of minimum per night and band.

The minima task times those of the series already loaded, on their points in
the time-series store.

Revision ID: 2026_12_k_minimum
Revises: 2026_12_j1_uws_base_url
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_k_minimum"
down_revision = "2026_12_j1_uws_base_url"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create minimum."""
    ops.create_table(
        "minimum",
        sa.Column("minimum_id", ops.LONG, primary_key=True, autoincrement=True),
        sa.Column("observation_id", ops.LONG, sa.ForeignKey("observation.observation_id"),
                  nullable=False),
        sa.Column("photometry_id", ops.LONG, sa.ForeignKey("photometry.photometry_id"),
                  nullable=False),
        sa.Column("target_id", ops.LONG, sa.ForeignKey("target.target_id"), nullable=False),
        sa.Column("bandpass_id", ops.LONG, nullable=False),
        sa.Column("time_bjd", sa.Double(), nullable=False),
        sa.Column("time_error", sa.Double(), nullable=False),
        sa.Column("time_hjd", sa.Double(), nullable=False),
        sa.Column("time_utc", sa.Double(), nullable=False),
        sa.Column("time_refposition", sa.String(16), nullable=False),
        sa.Column("tt_utc", sa.Double(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("check_time", sa.Double(), nullable=True),
        sa.Column("check_error", sa.Double(), nullable=True),
        sa.Column("check_method", sa.String(16), nullable=True),
        sa.Column("n_points", sa.Integer(), nullable=False),
        sa.Column("depth", sa.Double(), nullable=False),
        ops.public_flag(),
    )
    for column in ("observation_id", "photometry_id", "target_id"):
        ops.create_index(f"ix_minimum_{column}", "minimum", [column])
    ops.add_task("minima", revision)
