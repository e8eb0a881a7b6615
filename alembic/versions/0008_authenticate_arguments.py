"""auth.authenticate() takes the anonymous role and "pooled" as arguments.

Any role can overwrite a custom setting for the rest of its connection, so
sessiongate no longer lets the settings sessiongate.anonymous_role and
sessiongate.pooled decide, on its pooled connections, which role an
anonymous request gets and whether a leftover role is dropped: it passes
both. auth.authenticate(bytea, boolean) gives way to auth.authenticate(bytea,
boolean, name, boolean), whose new arguments default to NULL (read the
settings, as before), so every existing call still resolves and behaves as
it did. The file drops the old function itself; grants an operator added on
it by hand are dropped with it and must be given again on the new signature.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("04_authenticate.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
