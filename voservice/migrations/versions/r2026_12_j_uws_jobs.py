"""UWS jobs in the metadata database (commit 2088827).

The job folders of older releases are imported by the job store when it starts.

Revision ID: 2026_12_j_uws_jobs
Revises: 2026_12_i_point
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_j_uws_jobs"
down_revision = "2026_12_i_point"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create skvo_uws_job and skvo_uws_owner."""
    ops.create_table(
        "skvo_uws_job",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("owner_key", sa.String(128), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("creation_time", sa.Double(), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=True),
        sa.Column("end_time", sa.Double(), nullable=True),
        sa.Column("queued_at", sa.Double(), nullable=True),
        sa.Column("execution_duration", sa.Integer(), nullable=False),
        sa.Column("destruction", sa.Double(), nullable=True),
        sa.Column("parameters", sa.Text(2**32 - 1), nullable=False),
        sa.Column("uploads", sa.Text(2**16 - 1), nullable=False),
        sa.Column("result_mime", sa.String(255), nullable=True),
        sa.Column("result_size", sa.BigInteger(), nullable=True),
        sa.Column("error_message", sa.Text(2**24 - 1), nullable=True),
        sa.Column("error_type", sa.String(16), nullable=False),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("runner", sa.String(255), nullable=True),
        sa.Column("lease_until", sa.Double(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    ops.create_index("ix_skvo_uws_job_phase", "skvo_uws_job", ["phase", "queued_at"])
    ops.create_index("ix_skvo_uws_job_owner", "skvo_uws_job", ["owner_key", "phase"])
    ops.create_index("ix_skvo_uws_job_destruction", "skvo_uws_job", ["destruction"])
    ops.create_table(
        "skvo_uws_owner",
        sa.Column("owner_key", sa.String(128), primary_key=True),
        sa.Column("locked_at", sa.Double(), nullable=False),
    )
