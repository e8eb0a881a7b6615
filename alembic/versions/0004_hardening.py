"""Hardening: login throttling, statement timeouts, audit support.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("07_hardening.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
