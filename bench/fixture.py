"""The benchmark's data: a fresh migrated database, 100 users with 10 todos each, their cookies."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.config import PROJECT_ROOT
from app.db import asyncpg_url, ensure_database, plain_dsn
from app.embedded import start as start_embedded
from app.migrations import upgrade_async
from app.passwords import hash_password

BENCH_DATA_DIR = PROJECT_ROOT / ".data" / "bench-pg"
PASSWORD = "bench password, not a secret"  # noqa: S105 - throwaway accounts in a throwaway database
USERS = 100
TODOS_PER_USER = 10


@dataclass(frozen=True)
class BenchDatabase:
    """URLs of the benchmark's database (SQLAlchemy form)."""

    admin_url: str  # superuser: migrations, seeding, the bare baseline
    runtime_url: str  # authenticator: what sessiongate connects as

    @property
    def admin_dsn(self) -> str:
        """asyncpg DSN for the superuser."""
        return plain_dsn(self.admin_url)


@dataclass(frozen=True)
class BenchUser:
    """A seeded user and the session cookie value it logged in with."""

    user_id: UUID
    email: str
    cookie: str = ""


def _cluster_url() -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return asyncpg_url(explicit)
    server = start_embedded(BENCH_DATA_DIR)
    return server.url(server.superuser, "postgres")


@asynccontextmanager
async def fresh_database() -> AsyncIterator[BenchDatabase]:
    """A new database on the bench cluster, migrated with the demo app; dropped afterwards."""
    cluster = make_url(_cluster_url())
    name = f"sessiongate_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = cluster.set(database=name).render_as_string(hide_password=False)
    runtime = cluster.set(database=name, username="authenticator", password=None)
    database = BenchDatabase(admin, runtime.render_as_string(hide_password=False))
    await ensure_database(admin)
    try:
        await upgrade_async(admin, demo=True)
        yield database
    finally:
        maintenance = cluster.set(database="postgres").render_as_string(hide_password=False)
        conn = await asyncpg.connect(plain_dsn(maintenance))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def seed(database: BenchDatabase) -> tuple[list[BenchUser], int]:
    """Create the users (through auth.create_user) and their todos; users and the last todo id.

    One argon2 hash serves every account: the benchmark measures requests,
    not sign-up, and login still verifies the hash once per user over HTTP.
    Half of each user's todos are open, none public, so each user sees
    exactly their own ten rows through Row Level Security.
    """
    password_hash = await hash_password(PASSWORD)
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        users = []
        for index in range(USERS):
            email = f"bench-{index:03d}@example.com"
            user_id = await conn.fetchval(
                "SELECT id FROM auth.create_user($1, $2, 'webuser', true)", email, password_hash
            )
            users.append(BenchUser(user_id=user_id, email=email))
        await conn.executemany(
            "INSERT INTO app.todos (user_id, description, done) VALUES ($1, $2, $3)",
            [
                (user.user_id, f"todo {n} of {user.email}", n % 2 == 1)
                for user in users
                for n in range(TODOS_PER_USER)
            ],
        )
        await conn.execute("ANALYZE app.todos; ANALYZE auth.users")
        last_id: int = await conn.fetchval("SELECT max(id) FROM app.todos")
    finally:
        await conn.close()
    return users, last_id


async def log_in_all(base_url: str, cookie_name: str, users: list[BenchUser]) -> list[BenchUser]:
    """Log every user in over HTTP; the users with their session cookies."""
    gate = asyncio.Semaphore(4)

    async def log_in(user: BenchUser) -> BenchUser:
        # A client per user: one shared cookie jar would present user A's
        # cookie at user B's login, and login revokes a presented session.
        async with gate, httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            response = await http.post(
                "/api/login", json={"email": user.email, "password": PASSWORD}
            )
        if response.status_code != 200:
            raise RuntimeError(f"login failed for {user.email}: {response.text}")
        cookie = response.cookies.get(cookie_name)
        if not cookie:
            raise RuntimeError(f"login set no {cookie_name} cookie")
        return BenchUser(user.user_id, user.email, cookie)

    return list(await asyncio.gather(*(log_in(user) for user in users)))


async def remove_inserted(database: BenchDatabase, last_seed_id: int) -> None:
    """Delete todos the POST scenario added, so every run starts from the same table."""
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        await conn.execute("DELETE FROM app.todos WHERE id > $1", last_seed_id)
        await conn.execute("VACUUM (ANALYZE) app.todos")
    finally:
        await conn.close()
