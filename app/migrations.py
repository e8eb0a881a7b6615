"""Applying the SQL contract: alembic drives, the files in sql/ are the source."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.config import Config
from sqlalchemy.util import await_only

from alembic import command, op
from app.config import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
OWNER_ROLE = "sessiongate_owner"

# Alembic branch labels: the contract every deployment needs, and the demo app.
CONTRACT = "contract@head"
DEMO = "demo@head"


def sql_path(name: str) -> Path:
    """The path of one file in sql/."""
    return SQL_DIR / name


def apply_sql_file(name: str, *, as_owner: bool = True) -> None:
    """Run one sql/ file inside the current migration's transaction.

    The file goes to asyncpg's simple-query protocol whole, because function
    bodies contain semicolons; SQLAlchemy's prepared path takes one statement.
    With `as_owner`, objects are created by the owner role, not the admin.
    """
    run_sql(sql_path(name).read_text(encoding="utf-8"), as_owner=as_owner)


def run_sql(body: str, *, as_owner: bool = True) -> None:
    """Run SQL text from a migration (never from a request) in its transaction.

    `as_owner` as for apply_sql_file.
    """
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    if as_owner:
        body = f"SET LOCAL ROLE {OWNER_ROLE};\n{body}\nRESET ROLE;"
    await_only(raw.execute(body))


def alembic_config(admin_url: str) -> Config:
    """An alembic Config bound to `admin_url`."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["admin_url"] = admin_url
    return config


def upgrade(admin_url: str, *, demo: bool) -> None:
    """Bring the database to the newest contract, and the demo app if asked."""
    config = alembic_config(admin_url)
    command.upgrade(config, CONTRACT)
    if demo:
        command.upgrade(config, DEMO)


async def upgrade_async(admin_url: str, *, demo: bool) -> None:
    """`upgrade` from async code: alembic runs its own event loop, so use a thread."""
    await asyncio.to_thread(upgrade, admin_url, demo=demo)
