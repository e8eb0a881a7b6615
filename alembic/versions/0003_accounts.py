"""Account lifecycle: verification and reset tokens, the events outbox, admin functions.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled in by the accounts work (issue 4): apply_sql_file("06_...sql").
    pass


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
