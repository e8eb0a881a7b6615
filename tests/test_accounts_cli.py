"""The account, session and mailer commands of the CLI, against the test database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import httpx
from typer.testing import CliRunner

from app.cli import cli
from tests.accounts_support import accounts_server, http, log_in, smtp
from tests.conftest import TEST_PASSWORD, LiveServer, TestDatabase, make_client, unique_email
from tests.test_cli import run_cli

__all__ = ["accounts_server", "http", "smtp"]


@dataclass(frozen=True)
class Ran:
    """What one CLI command did."""

    returncode: int
    stdout: str
    stderr: str


async def _run(database: TestDatabase, *args: str, stdin: str = "") -> Ran:
    # In-process (typer's runner, in a worker thread: the command runs its own
    # event loop), because a new interpreter per command costs over a second;
    # tests/test_cli.py and the mailer test below run real processes.
    env = {
        "DATABASE_URL": database.runtime_url,
        "DATABASE_ADMIN_URL": database.admin_url,
        "SECRET_KEYS": "cli-test-key-" + "c" * 40,
        "DEMO": "true",
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), input=stdin, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


async def _ok(database: TestDatabase, *args: str, stdin: str = "") -> str:
    result = await _run(database, *args, stdin=stdin)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


async def test_user_commands_cover_the_lifecycle(
    database: TestDatabase,
    accounts_server: LiveServer,
    http: httpx.AsyncClient,
    admin_db: asyncpg.Connection,
) -> None:
    email = unique_email("cli")
    await _ok(database, "user", "add", email, "--password-stdin", stdin=TEST_PASSWORD + "\n")
    # Not verified yet: the strict server refuses the login.
    assert (await log_in(http, email)).json()["code"] == "email_not_verified"
    assert "verified" in await _ok(database, "user", "verify", email)
    assert (await log_in(http, email)).status_code == 200

    assert "(admin)" in await _ok(database, "user", "set-role", email, "admin")
    assert (await http.get("/api/me")).json()["role"] == "admin"
    refused = await _run(database, "user", "set-role", email, "no_such_role_anywhere")
    assert refused.returncode == 1
    assert "does not exist" in refused.stderr

    assert "disabled" in await _ok(database, "user", "disable", email)
    assert (await http.get("/api/me")).status_code == 401
    revoked = await admin_db.fetchval(
        "SELECT bool_and(revoked_at IS NOT NULL) FROM auth.sessions s"
        " JOIN auth.users u ON u.id = s.user_id WHERE u.email = $1",
        email,
    )
    assert revoked is True
    assert "disabled" not in await _ok(database, "user", "enable", email)
    assert (await log_in(http, email)).status_code == 200

    await _ok(database, "user", "delete", email, "--yes")
    assert (await http.get("/api/me")).status_code == 401
    assert await admin_db.fetchval("SELECT count(*) FROM auth.users WHERE email = $1", email) == 0
    missing = await _run(database, "user", "disable", email)
    assert missing.returncode == 1
    assert "no user" in missing.stderr


async def test_session_commands_list_revoke_and_purge(
    database: TestDatabase,
    accounts_server: LiveServer,
    admin_db: asyncpg.Connection,
) -> None:
    email = unique_email("clisess")
    await _ok(database, "user", "add", email, "--verified", "--password-stdin", stdin=TEST_PASSWORD)
    async with (
        make_client(accounts_server.url) as one,
        make_client(accounts_server.url) as two,
        make_client(accounts_server.url) as three,
    ):
        for client in (one, two, three):
            assert (await log_in(client, email)).status_code == 200
        listed = (await _ok(database, "sessions", "list", email)).splitlines()
        assert len(listed) == 3
        first_id = listed[0].split()[0]

        assert "revoked 1" in await _ok(database, "sessions", "revoke", first_id)
        live = [(await c.get("/api/me")).status_code for c in (one, two, three)]
        assert sorted(live) == [200, 200, 401]

        assert "revoked 2" in await _ok(database, "sessions", "revoke", "--user", email)
        assert [(await c.get("/api/me")).status_code for c in (one, two, three)] == [401] * 3

    # Ended sessions of this user are deleted by the purge (with no grace).
    purged = await _ok(database, "sessions", "purge-expired")
    assert purged.startswith("purged ")
    left = await admin_db.fetchval(
        "SELECT count(*) FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id"
        " WHERE u.email = $1",
        email,
    )
    assert left == 0


async def test_mailer_once_prints_pending_mails_in_the_demo(
    database: TestDatabase, http: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    email = unique_email("climail")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    # A real process: the worker as an operator runs it.
    ran = run_cli(database, "mailer", "--once")
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert f"----- mail to {email} -----" in out
    assert "/verify#token=" in out
    assert "handled " in out
    pending = await admin_db.fetchval(
        "SELECT count(*) FROM auth.events WHERE payload->>'email' = $1 AND delivered IS NULL",
        email,
    )
    assert pending == 0
