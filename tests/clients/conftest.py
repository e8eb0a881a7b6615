"""A small RLS app exposed by sessiongate, and a signed-in user owning rows in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.clients.scenario import SCHEMA
from tests.conftest import LiveServer, TestDatabase, make_client, make_settings, sign_in

SCHEMA_SQL = Path(__file__).with_name("schema.sql")


@dataclass(frozen=True)
class SignedInUser:
    """A user of the demo app: the Cookie header that carries their session, and their id."""

    api_url: str
    cookie: str
    user_id: str


@pytest.fixture(scope="module")
async def clients_server(database: TestDatabase) -> AsyncIterator[LiveServer]:
    """sessiongate exposing clients_demo (created first: the schema cache loads at start)."""
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        await conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    finally:
        await conn.close()
    with LiveServer(make_settings(database, db_schemas=[SCHEMA])) as server:
        yield server


@pytest.fixture(scope="module")
async def seeded_user(database: TestDatabase, clients_server: LiveServer) -> SignedInUser:
    """Sign up and log in over HTTP; seed three projects for them and one for somebody else."""
    async with make_client(clients_server.url) as http:
        user = await sign_in(http)
        name = clients_server.settings.session_cookie_name
        value = http.cookies.get(name)
        assert value, f"no {name} cookie after login"
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        async with conn.transaction():
            for project, tasks in (("apple", ["plan", "pick"]), ("banana", []), ("cherry", [])):
                project_id = await conn.fetchval(
                    "INSERT INTO clients_demo.projects (owner, name) VALUES ($1, $2) RETURNING id",
                    uuid.UUID(user["id"]),
                    project,
                )
                for title in tasks:
                    await conn.execute(
                        "INSERT INTO clients_demo.tasks (project_id, owner, title) "
                        "VALUES ($1, $2, $3)",
                        project_id,
                        uuid.UUID(user["id"]),
                        title,
                    )
            await conn.execute(
                "INSERT INTO clients_demo.projects (owner, name) VALUES ($1, 'durian')",
                uuid.uuid4(),
            )
    finally:
        await conn.close()
    return SignedInUser(f"{clients_server.url}/api", f"{name}={value}", str(user["id"]))


async def stored_projects(database: TestDatabase, user_id: str) -> dict[str, bool]:
    """The user's projects as the database holds them (name -> done), seen past RLS."""
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT name, done FROM clients_demo.projects WHERE owner = $1", uuid.UUID(user_id)
        )
    finally:
        await conn.close()
    return {row["name"]: row["done"] for row in rows}
