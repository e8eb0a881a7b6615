"""The demo application: app.todos behind RLS, exposed as api.todos.

Revision ID: 0002
Revises:
"""

from __future__ import annotations

from app.migrations import apply_sql_file

revision = "0002"
down_revision = None
branch_labels = ("demo",)
depends_on = "0001"


def upgrade() -> None:
    apply_sql_file("10_demo_todos.sql")


def downgrade() -> None:
    raise NotImplementedError("drop schema app and api.todos by hand if you must")
