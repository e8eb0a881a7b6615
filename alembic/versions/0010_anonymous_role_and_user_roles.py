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

import logging

from sqlalchemy import text

from alembic import op
from app.migrations import apply_sql_file

log = logging.getLogger(__name__)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("02_users.sql")
    apply_sql_file("04_authenticate.sql")
    # As the admin, as revisions 0003 and 0007 apply the same file.
    apply_sql_file("06_accounts_lifecycle.sql", as_owner=False)
    _warn_about_what_changes()


def _warn_about_what_changes() -> None:
    """Say what this revision changes for a database already in use."""
    bind = op.get_bind()
    # Joined to pg_roles: a role dropped after users were given it would make
    # pg_has_role(name, ...) raise, and the whole upgrade with it.
    refused = bind.execute(
        text(
            "SELECT count(*) FROM auth.users u"
            " JOIN pg_catalog.pg_roles r ON r.rolname = u.role"
            " WHERE pg_catalog.pg_has_role(r.oid, 'authenticator', 'MEMBER')"
        )
    ).scalar_one()
    if refused:
        log.warning(
            "%d user(s) have a role that is authenticator or a member of it; their sessions"
            " are now refused, and an update of such a row must change its role",
            refused,
        )
    # Set in postgresql.conf, ALTER SYSTEM or PGOPTIONS, the value is no
    # longer read: only ALTER ROLE / ALTER DATABASE ... SET is, and only the
    # rows auth.anonymous_role() reads, for authenticator (or every role)
    # in this database (or every database). A row for another role or
    # another database does not count.
    live, stored = bind.execute(
        text(
            "SELECT pg_catalog.current_setting('sessiongate.anonymous_role', true),"
            " EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s"
            "         CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) cfg"
            "         WHERE s.setrole IN (0, pg_catalog.to_regrole('authenticator'))"
            "           AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d"
            "                 WHERE d.datname = pg_catalog.current_database()))"
            "           AND pg_catalog.split_part(cfg, '=', 1) = 'sessiongate.anonymous_role')"
        )
    ).one()
    if live and not stored:
        log.warning(
            "sessiongate.anonymous_role is %r here but not set with ALTER ROLE or ALTER"
            " DATABASE; PostgREST's form of auth.authenticate() now falls back to"
            " 'anonymous' (docs/sql-contract.md)",
            live,
        )


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
