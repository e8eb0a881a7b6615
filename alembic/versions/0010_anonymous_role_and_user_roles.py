"""The anonymous role from the catalog, and roles no user may have.

auth.anonymous_role(), the PostgREST form's fallback, reads
sessiongate.anonymous_role from the catalog (ALTER ROLE / ALTER DATABASE
... SET) instead of the live setting any role can overwrite.
auth.authenticate() and the users' role check refuse authenticator itself
and any role that is a member of it.

sql/06_accounts_lifecycle.sql is applied again too: it was edited after
revision 0007 had applied it, so databases migrated in between kept older
function bodies. Applying the current file brings every database to the
same contract, and auth.purge_events(integer) becomes
auth.purge_events(integer, integer DEFAULT NULL), which also drops an
undelivered sign-up event (it carries a password hash) once its link would
be dead; a call with one argument still works.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("02_users.sql")
    apply_sql_file("04_authenticate.sql")
    # As the admin, as revisions 0003 and 0007 apply the same file.
    apply_sql_file("06_accounts_lifecycle.sql", as_owner=False)


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
