"""The SQL contract: roles, schemas, users, sessions, authenticate().

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0001"
down_revision = None
branch_labels = ("contract",)
depends_on = None


def upgrade() -> None:
    # Roles and schemas need the admin's rights; the rest is owned by the owner role.
    apply_sql_file("00_roles.sql", as_owner=False)
    apply_sql_file("01_schemas.sql", as_owner=False)
    apply_sql_file("02_users.sql")
    apply_sql_file("03_sessions.sql")
    apply_sql_file("04_authenticate.sql")
    apply_sql_file("05_accounts.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
