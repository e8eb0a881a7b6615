"""Role limits from the schema cache: auth.role_limits(), and auth.authenticate()
learns to leave them to a caller that sets them itself.

Databases created from here on get both from sql/04_authenticate.sql; this
revision brings older ones to the same state. The one-argument
auth.authenticate(bytea) gives way to auth.authenticate(bytea, boolean),
whose second argument defaults to the old behaviour, so every existing call
(PostgREST's pre-request form included) still resolves and behaves as before.
The file drops the old function itself (so that revision 0005, which applies
the same file, never leaves both behind); grants an operator added on it by
hand are dropped with it and must be given again on the new signature.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("04_authenticate.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
