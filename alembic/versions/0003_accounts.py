"""Account lifecycle: verification and reset tokens, the events outbox, admin functions.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Applied as the admin: the file grants a role membership first, then
    # switches to the owner role itself for everything it creates.
    apply_sql_file("06_accounts_lifecycle.sql", as_owner=False)


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
