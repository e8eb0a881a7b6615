"""Building the conformance fixture database: the shared SQL chain, then sessiongate's migrations.

The chain lives in ../shared/conformance/fixtures and is loaded exactly as its
HARNESS.md says (psql, ON_ERROR_STOP, PGTZ=UTC, a C-collated database). It
needs pgcrypto and PostGIS, which the embedded PostgreSQL lacks, so this runs
only on a cluster named by TEST_DATABASE_URL (tests/pg15.sh starts one).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.db import asyncpg_url, plain_dsn
from app.migrations import upgrade_async

# The role the harness's "bulk" instance runs requests as: PostgREST's bulk
# instance runs as the connecting (owner) user, sessiongate always switches
# to its anonymous role, so that role gets every privilege on the fixtures.
BULK_ROLE = "conformance_bulk"
# Roles the fixtures create; the auth instance switches into them.
FIXTURE_ROLES = ("postgrest_test_anonymous", "postgrest_test_default_role", "postgrest_test_author")
# The chain, in load order; 03 is optional.
CHAIN = (
    "02_base.sql",
    "03_supplement.sql",
    "04_postgis.sql",
    "05_corrections.sql",
    "06_area_schemas.sql",
    "07_analyze.sql",
)
# Accepted by PostgreSQL 17 only; 06 is a pg_dump from 17.
PG17_ONLY_LINE = "SET transaction_timeout = 0;"
# Schemas that belong to PostgreSQL or to sessiongate itself, not the fixtures.
_NOT_FIXTURE = ("pg_catalog", "information_schema", "pg_toast", "api", "app", "extensions")


class MissingExtension(RuntimeError):
    """The cluster lacks an extension the fixtures need (the message names it)."""


@dataclass(frozen=True)
class FixtureDatabase:
    """SQLAlchemy URLs of the built conformance database."""

    name: str
    admin_url: str  # superuser
    runtime_url: str  # authenticator
    maintenance_dsn: str  # superuser on the cluster's "postgres" database


def _psql() -> str:
    """The psql binary: on PATH, else next to Debian's PostgreSQL 15."""
    found = shutil.which("psql")
    if found:
        return found
    candidate = Path(os.environ.get("PG15_BIN", "/usr/lib/postgresql/15/bin")) / "psql"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("psql not found (apt-get install postgresql-client-15)")


def _run_psql(dsn: str, files: list[Path]) -> None:
    """Run SQL files through psql, stopping at the first error."""
    args = [_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    for path in files:
        args += ["-f", str(path)]
    env = {**os.environ, "PGTZ": "UTC", "PGOPTIONS": "-c client_min_messages=warning"}
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"loading {[p.name for p in files]} failed ({result.returncode}):\n{result.stderr}"
        )


def _chain_files(fixtures: Path, server_version: int, scratch: Path) -> list[Path]:
    """The chain's files, with 06's PostgreSQL-17-only line dropped on older servers."""
    files: list[Path] = []
    for name in CHAIN:
        path = fixtures / name
        if not path.exists():
            if name == "03_supplement.sql":
                continue
            raise RuntimeError(f"fixture {path} is missing")
        if name == "06_area_schemas.sql" and server_version < 170000:
            # A copy: the shared folder is read-only for us.
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if line.strip() != PG17_ONLY_LINE]
            path = scratch / name
            path.write_text("".join(kept), encoding="utf-8")
        files.append(path)
    return files


async def _grant_bulk(admin_dsn: str) -> None:
    """Create the bulk role, give it everything in the fixture schemas, let authenticator use it."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        # Roles are cluster-wide and another run may create them concurrently.
        with contextlib.suppress(asyncpg.UniqueViolationError):
            await conn.execute(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{BULK_ROLE}') "
                f"THEN CREATE ROLE {BULK_ROLE} NOLOGIN; END IF; END $$"
            )
        # PostgREST's bulk instance runs as the owning superuser, which RLS
        # does not restrict; BYPASSRLS reproduces that for this test-only role.
        await conn.execute(f"ALTER ROLE {BULK_ROLE} BYPASSRLS")
        schemas: list[str] = [
            row["nspname"]
            for row in await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname <> ALL($1::text[]) "
                "AND nspname NOT LIKE 'pg\\_%'",
                list(_NOT_FIXTURE),
            )
        ]
        for schema in schemas:
            quoted = await conn.fetchval("SELECT quote_ident($1)", schema)
            await conn.execute(
                f"GRANT USAGE, CREATE ON SCHEMA {quoted} TO {BULK_ROLE};"
                f"GRANT ALL ON ALL TABLES IN SCHEMA {quoted} TO {BULK_ROLE};"
                f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {quoted} TO {BULK_ROLE};"
                f"GRANT ALL ON ALL ROUTINES IN SCHEMA {quoted} TO {BULK_ROLE};"
            )
        # Fixture functions may switch into the test roles (SET ROLE needs membership).
        roles = ", ".join([BULK_ROLE, *FIXTURE_ROLES])
        await conn.execute(f"GRANT {', '.join(FIXTURE_ROLES)} TO {BULK_ROLE}")
        await conn.execute(f"GRANT {roles} TO authenticator")
    finally:
        await conn.close()


async def build(cluster_url: str, fixtures: Path) -> FixtureDatabase:
    """Create a fresh database, load the fixture chain and sessiongate's contract into it."""
    cluster = make_url(asyncpg_url(cluster_url))
    maintenance = plain_dsn(cluster.set(database="postgres").render_as_string(hide_password=False))
    name = f"conformance_{os.getpid()}_{secrets.token_hex(3)}"
    admin = cluster.set(database=name).render_as_string(hide_password=False)
    runtime = cluster.set(database=name, username="authenticator", password=None)
    _run_psql(maintenance, [fixtures / "01_roles.sql"])
    conn = await asyncpg.connect(maintenance)
    try:
        version = int(await conn.fetchval("SHOW server_version_num"))
        missing = await conn.fetchval(
            "SELECT string_agg(name, ', ') FROM unnest(ARRAY['pgcrypto', 'postgis']) AS name "
            "WHERE name NOT IN (SELECT name FROM pg_available_extensions)"
        )
        if missing:
            raise MissingExtension(missing)
        await conn.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    finally:
        await conn.close()
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        _run_psql(plain_dsn(admin), _chain_files(fixtures, version, Path(scratch)))
    await upgrade_async(admin, demo=False)
    await _grant_bulk(plain_dsn(admin))
    return FixtureDatabase(
        name=name,
        admin_url=admin,
        runtime_url=runtime.render_as_string(hide_password=False),
        maintenance_dsn=maintenance,
    )


async def drop(database: FixtureDatabase) -> None:
    """Drop the database built by `build`."""
    conn = await asyncpg.connect(database.maintenance_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        await conn.close()
