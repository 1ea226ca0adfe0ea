"""skvo.target: a (ra, dec) index beside (dec, ra) for cone boxes (commit d2b778f).

The single-column indexes they serve are dropped.

Revision ID: 2026_12_c_target_radec
Revises: 2026_12_b_ts_chunk
"""

from __future__ import annotations

from voservice.migrations import ops

revision = "2026_12_c_target_radec"
down_revision = "2026_12_b_ts_chunk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Swap the indexes."""
    ops.create_index("ix_target_multi_1", "target", ["right_ascension", "declination"])
    ops.drop_index("ix_target_right_ascension", "target")
    ops.drop_index("ix_target_declination", "target")
