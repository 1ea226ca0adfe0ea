"""The schema of the 2026-11 release (commit 8c8bc7e): the baseline.

Nothing to do: an archive of that release (or an unversioned later one) is
stamped here and upgraded from here.  New archives are created from the
table descriptions and stamped at the head, so no revision creates the
baseline's tables.

Revision ID: 2026_11
Revises:
"""

from __future__ import annotations

revision = "2026_11"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The baseline has nothing to upgrade."""
