"""An async job remembers the public URL of the request that created it (commit cbaac3d).

Null for the jobs created before: their results' URLs are the runner's public_url,
as they were.

Revision ID: 2026_12_j1_uws_base_url
Revises: 2026_12_j_uws_jobs
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_j1_uws_base_url"
down_revision = "2026_12_j_uws_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add skvo_uws_job.base_url."""
    ops.add_column("skvo_uws_job", sa.Column("base_url", sa.String(2048), nullable=True))
