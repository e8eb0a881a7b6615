"""Type names in the request path's SQL functions are schema-qualified.

Unless the search_path lists pg_temp, PostgreSQL looks for type names there
first. A temporary table named `text` or `uuid` (one an exposed function
created, say) would then stand in for the type wherever
auth.authenticate(), auth.user_id() and their helpers were compiled or
planned on that connection afterwards, and break every later request on
it, whoever made them. Their bodies now name pg_catalog's types.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("04_authenticate.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
