"""The sessiongate command line, run as a real process against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import TestDatabase, unique_email

SESSIONGATE = [sys.executable, "-m", "app"]


def run_cli(
    database: TestDatabase, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `sessiongate ARGS` with the service's settings pointed at the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database.runtime_url,
        "DATABASE_ADMIN_URL": database.admin_url,
        "SECRET_KEYS": "cli-test-key-" + "c" * 40,
        "DEMO": "true",
    }
    return subprocess.run(
        [*SESSIONGATE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
        check=False,
    )


def test_migrate_is_idempotent(database: TestDatabase) -> None:
    result = run_cli(database, "migrate")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


async def test_user_add_then_login(database: TestDatabase, client: httpx.AsyncClient) -> None:
    email = unique_email("cli")
    added = run_cli(
        database,
        "user",
        "add",
        email,
        "--role",
        "admin",
        "--verified",
        "--password-stdin",
        stdin="a password from stdin\n",
    )
    assert added.returncode == 0, added.stderr
    assert email in added.stdout

    listed = run_cli(database, "user", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if email in line)
    assert "admin" in line
    assert "verified" in line

    response = await client.post(
        "/api/login", json={"email": email, "password": "a password from stdin"}
    )
    assert response.status_code == 200
    assert response.json()["role"] == "admin"


def test_user_add_reports_errors_plainly(database: TestDatabase) -> None:
    weak = run_cli(database, "user", "add", unique_email(), "--password-stdin", stdin="short\n")
    assert weak.returncode == 1
    assert "at least 8 characters" in weak.stderr
    assert "Traceback" not in weak.stderr

    bad_role = run_cli(
        database,
        "user",
        "add",
        unique_email(),
        "--role",
        "postgres",
        "--password-stdin",
        stdin="long enough password\n",
    )
    assert bad_role.returncode == 1
    assert "Traceback" not in bad_role.stderr
