"""Brute-force counters count an attempt in before it is tried.

auth.throttle gains `pending` (attempts under way), auth.throttle_attempt()
counts one in or refuses it, auth.throttle_release() counts one out that was
not a failure, and auth.throttle_fail() counts one out as a failure. The
check-first auth.throttle_retry_after(), which parallel requests could all
pass before any failure was counted, is dropped by the file itself. A
sign-in's throttle_clear() keeps the row while other attempts are under
way on it, and purge_throttle() passes over rows an attempt holds. Fresh
databases get every one of these functions from this revision: revision
0004 applies sql/07_hardening.sql, which now holds only the table.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql_file("08_throttle_attempts.sql")


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
