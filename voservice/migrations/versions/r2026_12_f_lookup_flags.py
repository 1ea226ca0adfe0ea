"""organisation, dataid, facility and instrument keep a public flag (commit 4bd8431).

Lookup rows are visible only through visible observations.

Revision ID: 2026_12_f_lookup_flags
Revises: 2026_12_e_target_alias
"""

from __future__ import annotations

from voservice.migrations import ops

revision = "2026_12_f_lookup_flags"
down_revision = "2026_12_e_target_alias"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the flags (filled by the public-flags task)."""
    for table in ("organisation", "dataid", "facility", "instrument"):
        ops.add_column(table, ops.public_flag())
    ops.add_task("public-flags", revision)
