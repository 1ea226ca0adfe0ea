"""Facility locations: longitude, latitude, height (commit a700ef8).

Null for facilities loaded before; the next upload that gives them fills them
in (as the uploader does for any facility without one).

Revision ID: 2026_12_h_facility_location
Revises: 2026_12_g_ephemeris
"""

from __future__ import annotations

import sqlalchemy as sa

from voservice.migrations import ops

revision = "2026_12_h_facility_location"
down_revision = "2026_12_g_ephemeris"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add longitude, latitude and height."""
    for name in ("longitude", "latitude", "height"):
        ops.add_column("facility", sa.Column(name, sa.Double(), nullable=True))
