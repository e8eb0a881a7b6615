"""A sign-up's verification link asks for that sign-up's password.

auth.verification_password(bytea) names the password a link needs, and
auth.verify_email(bytea, text) redeems a link only with that password's
hash; the one-argument verify_email(bytea), which asked nothing of whoever
followed the link, is dropped by the file itself. A reset link works only
while the address it was mailed to is still the account's.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # As the admin, as revision 0003 applies the same file.
    apply_sql_file("06_accounts_lifecycle.sql", as_owner=False)


def downgrade() -> None:
    raise NotImplementedError("the contract is not downgradable; restore from a backup")
