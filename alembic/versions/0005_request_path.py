"""Cheaper per-request authentication: the session lookup always probes its indexes,
and auth.authenticate() runs fewer statements.

Databases created from here on get both from sql/03_sessions.sql and
sql/04_authenticate.sql; this revision brings older ones to the same state.
04 holds only CREATE OR REPLACE and grants, so applying it again is safe.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from app.migrations import apply_sql_file, run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The clause sql/03_sessions.sql now gives the function (why: see there).
    run_sql("ALTER FUNCTION auth.resolve_session(bytea) SET enable_seqscan = off;")
    apply_sql_file("04_authenticate.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
