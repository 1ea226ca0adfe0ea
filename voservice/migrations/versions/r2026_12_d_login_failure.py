"""Failed logins, throttled per account name and client address (commit 2609690).

Revision ID: 2026_12_d_login_failure
Revises: 2026_12_c1_user_ids
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_d_login_failure"
down_revision = "2026_12_c1_user_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create skvo_login_failure."""
    ops.create_table(
        "skvo_login_failure",
        sa.Column("throttle_key", sa.String(80), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Double(), nullable=False),
        sa.Column("blocked_until", sa.Double(), nullable=False),
    )
