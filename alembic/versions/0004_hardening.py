"""Hardening: login throttling, statement timeouts, audit support.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled in by the hardening work (issue 5): apply_sql_file("07_...sql").
    pass


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
