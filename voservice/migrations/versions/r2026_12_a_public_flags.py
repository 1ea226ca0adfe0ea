"""target, photometry and frame keep a public flag (commit a3689b9).

Also the table of pending upgrade tasks (skvo_upgrade_task).

Revision ID: 2026_12_a_public_flags
Revises: 2026_11
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_a_public_flags"
down_revision = "2026_11"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the flags (filled by the public-flags task) and the task table."""
    ops.create_table(
        "skvo_upgrade_task",
        sa.Column("task", sa.String(32), primary_key=True),
        sa.Column("revision", sa.String(64), nullable=False),
    )
    for table in ("target", "photometry", "frame"):
        ops.add_column(table, ops.public_flag())
    ops.add_task("public-flags", revision)
