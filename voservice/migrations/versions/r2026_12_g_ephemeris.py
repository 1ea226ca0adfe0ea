"""Ephemerides of targets: skvo.ephemeris (commit a700ef8).

Older uploads carried none, so nothing is filled in.

Revision ID: 2026_12_g_ephemeris
Revises: 2026_12_f_lookup_flags
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_g_ephemeris"
down_revision = "2026_12_f_lookup_flags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ephemeris."""
    ops.create_table(
        "ephemeris",
        sa.Column("ephemeris_id", ops.LONG, primary_key=True, autoincrement=True),
        sa.Column("target_id", ops.LONG, sa.ForeignKey("target.target_id"), nullable=False),
        sa.Column("period", sa.Double(), nullable=False),
        sa.Column("epoch", sa.Double(), nullable=False),
        sa.Column("epoch_timescale", sa.String(8), nullable=False),
        sa.Column("epoch_refpos", sa.String(16), nullable=False),
        sa.Column("var_type", sa.String(32), nullable=True),
        sa.Column("reference", sa.String(255), nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("is_default", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        ops.public_flag(),
    )
    ops.create_index("ix_ephemeris_target_id", "ephemeris", ["target_id"])
