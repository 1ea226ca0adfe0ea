"""Star names: skvo.target_alias and the Sesame cache (commit ef28ce4).

The aliases task gives the targets already loaded their provider and catalogue
names.

Revision ID: 2026_12_e_target_alias
Revises: 2026_12_d_login_failure
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_e_target_alias"
down_revision = "2026_12_d_login_failure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create target_alias and skvo_sesame_cache."""
    ops.create_table(
        "target_alias",
        sa.Column("alias_id", ops.LONG, primary_key=True, autoincrement=True),
        sa.Column("target_id", ops.LONG, sa.ForeignKey("target.target_id"), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("alias_key", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        ops.public_flag(),
        sa.UniqueConstraint("target_id", "alias_key", name="uq_target_alias_0"),
    )
    ops.create_index("ix_target_alias_alias_key", "target_alias", ["alias_key"])
    ops.create_index("ix_target_alias_target_id", "target_alias", ["target_id"])
    ops.create_table(
        "skvo_sesame_cache",
        sa.Column("name_key", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("ra", sa.Double(), nullable=False),
        sa.Column("dec", sa.Double(), nullable=False),
        sa.Column("oname", sa.String(255), nullable=True),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("fetched", sa.Double(), nullable=False),
    )
    ops.add_task("aliases", revision)
