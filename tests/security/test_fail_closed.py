"""Fail closed in SQL: empty identity settings match no row, role limits apply, roles stay put."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.dataapi.prelude import Prelude
from tests.conftest import TestDatabase as Database
from tests.conftest import role_setting_in_database

pytestmark = pytest.mark.contract


@pytest.fixture
async def pooled_db(database: Database) -> AsyncIterator[asyncpg.Connection]:
    """An authenticator connection set up exactly as the service's pool sets them up."""
    conn = await asyncpg.connect(
        database.runtime_dsn,
        server_settings={"sessiongate.pooled": "on", "sessiongate.anonymous_role": "anonymous"},
    )
    try:
        yield conn
    finally:
        await conn.close()


@pytest.mark.parametrize("value", [None, ""])
async def test_user_id_helper_is_null_without_a_setting(
    admin_db: asyncpg.Connection, value: str | None
) -> None:
    async with admin_db.transaction():
        if value is not None:
            await admin_db.execute("SELECT set_config('auth.user_id', $1, true)", value)
        assert await admin_db.fetchval("SELECT auth.user_id()") is None


@pytest.mark.parametrize("value", [None, ""])
async def test_policies_match_no_private_row_without_identity(
    admin_db: asyncpg.Connection, value: str | None
) -> None:
    # A webuser transaction whose user id is missing or empty (a bug in a
    # hand-written route, a pre-request that forgot it) sees no private row.
    owner = await admin_db.fetchval(
        "INSERT INTO auth.users (email, password_hash) VALUES ($1, '$x') RETURNING id",
        f"fail-closed-{value is None}@example.com",
    )
    await admin_db.execute(
        "INSERT INTO app.todos (user_id, description, public) VALUES ($1, 'private', false)", owner
    )
    async with admin_db.transaction():
        await admin_db.execute("SET LOCAL ROLE webuser")
        if value is not None:
            await admin_db.execute("SELECT set_config('auth.user_id', $1, true)", value)
        private = await admin_db.fetchval("SELECT count(*) FROM api.todos WHERE NOT public")
        assert private == 0
        with pytest.raises(asyncpg.PostgresError):
            async with admin_db.transaction():
                await admin_db.execute(
                    "INSERT INTO api.todos (description, user_id) VALUES ('x', $1)", owner
                )


@pytest.mark.parametrize(
    ("role", "limit"), [("anonymous", "3s"), ("webuser", "10s"), ("admin", "30s")]
)
async def test_role_time_limits_apply_in_the_request_transaction(
    pooled_db: asyncpg.Connection, admin_db: asyncpg.Connection, role: str, limit: str
) -> None:
    token_hash = None
    if role != "anonymous":
        user_id = await admin_db.fetchval(
            "INSERT INTO auth.users (email, password_hash, role)"
            " VALUES ($1, '$x', $2) RETURNING id",
            f"limits-{role}@example.com",
            role,
        )
        token_hash = b"\x01" * 31 + role.encode()[:1]
        await admin_db.execute("SELECT auth.issue_session($1, $2, 3600, 3600)", user_id, token_hash)
    async with pooled_db.transaction():
        assert (
            await pooled_db.fetchval("SELECT role FROM auth.authenticate($1)", token_hash) == role
        )
        assert await pooled_db.fetchval("SELECT current_user") == role
        assert await pooled_db.fetchval("SHOW statement_timeout") == limit
    # Transaction-local: gone afterwards.
    assert await pooled_db.fetchval("SHOW statement_timeout") == "15s"


async def test_a_database_specific_role_limit_wins_over_the_role_wide_one(
    pooled_db: asyncpg.Connection, admin_db: asyncpg.Connection
) -> None:
    # As at login: ALTER ROLE ... IN DATABASE beats plain ALTER ROLE.
    async with (
        role_setting_in_database(admin_db, "anonymous", "lock_timeout", "750ms"),
        pooled_db.transaction(),
    ):
        await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL)")
        assert await pooled_db.fetchval("SHOW lock_timeout") == "750ms"
        # The role-wide setting still applies where the database sets nothing.
        assert await pooled_db.fetchval("SHOW statement_timeout") == "3s"
    async with pooled_db.transaction():
        await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL)")
        assert await pooled_db.fetchval("SHOW lock_timeout") == "1s"


@pytest.mark.parametrize("name", ["", "WebUser", "no_such_role", 'web"user'])
async def test_role_limits_match_the_role_name_exactly(
    pooled_db: asyncpg.Connection, name: str
) -> None:
    # Not webuser's limits for "WebUser", and no error for a name that is no role.
    async with pooled_db.transaction():
        await pooled_db.execute("SELECT auth.apply_role_limits($1)", name)
        assert await pooled_db.fetchval("SHOW statement_timeout") == "15s"


async def test_authenticate_leaves_limits_to_a_caller_that_sets_them(
    pooled_db: asyncpg.Connection,
) -> None:
    # sessiongate's data requests pass false and set the limits themselves.
    async with pooled_db.transaction():
        await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL, false)")
        assert await pooled_db.fetchval("SELECT current_user") == "anonymous"
        assert await pooled_db.fetchval("SHOW statement_timeout") == "15s"


async def test_the_services_arguments_win_over_settings_left_on_the_connection(
    pooled_db: asyncpg.Connection,
) -> None:
    # What an exposed function may leave behind: any role can set these.
    await pooled_db.execute(
        "SELECT set_config('sessiongate.anonymous_role', 'admin', false),"
        " set_config('sessiongate.pooled', 'off', false)"
    )
    # A leftover session-level role, which only the pooled check drops.
    await pooled_db.execute("SET ROLE admin")
    service_call = "SELECT role FROM auth.authenticate(NULL, true, 'anonymous', true)"
    async with pooled_db.transaction():
        assert await pooled_db.fetchval(service_call) == "anonymous"
    assert await pooled_db.fetchval("SELECT current_user") == "authenticator"


async def test_without_arguments_the_anonymous_role_is_the_configured_one(
    pooled_db: asyncpg.Connection, admin_db: asyncpg.Connection
) -> None:
    # PostgREST's form passes no anonymous role. The live setting is what an
    # exposed function could overwrite for the rest of the connection...
    await pooled_db.execute("SELECT set_config('sessiongate.anonymous_role', 'admin', false)")
    no_arguments = "SELECT role FROM auth.authenticate(NULL)"
    async with pooled_db.transaction():
        assert await pooled_db.fetchval(no_arguments) == "anonymous"
    # ...so the role comes from what ALTER ROLE ... SET configured, read
    # from the catalog at each call.
    async with (
        role_setting_in_database(
            admin_db, "authenticator", "sessiongate.anonymous_role", "webuser"
        ),
        pooled_db.transaction(),
    ):
        assert await pooled_db.fetchval(no_arguments) == "webuser"
    async with pooled_db.transaction():
        assert await pooled_db.fetchval(no_arguments) == "anonymous"


async def test_no_session_resolves_to_the_connecting_role_itself(
    pooled_db: asyncpg.Connection, admin_db: asyncpg.Connection
) -> None:
    user_id = await admin_db.fetchval(
        "INSERT INTO auth.users (email, password_hash) VALUES ($1, '$argon2id$x') RETURNING id",
        f"self-{uuid.uuid4().hex[:8]}@example.com",
    )
    # The users' role check refuses authenticator as a user's role...
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="service's own privileges"):
        await admin_db.execute(
            "UPDATE auth.users SET role = 'authenticator' WHERE id = $1", user_id
        )
    # ...and authenticate() refuses it as the anonymous role, where no trigger looks,
    async with pooled_db.transaction():
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not permitted"):
            await pooled_db.fetchval(
                "SELECT role FROM auth.authenticate(NULL, true, 'authenticator', true)"
            )
    # and as a session's role that got past the check (an owner who turned it off).
    async with admin_db.transaction():
        await admin_db.execute("ALTER TABLE auth.users DISABLE TRIGGER users_check_role")
        await admin_db.execute(
            "UPDATE auth.users SET role = 'authenticator' WHERE id = $1", user_id
        )
        await admin_db.execute("ALTER TABLE auth.users ENABLE TRIGGER users_check_role")
    hashed = hashlib.sha256(secrets.token_bytes(32)).digest()
    await admin_db.execute("SELECT auth.issue_session($1, $2, 3600, 7200)", user_id, hashed)
    async with pooled_db.transaction():
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not permitted"):
            await pooled_db.fetchval("SELECT role FROM auth.authenticate($1)", hashed)


async def test_role_limits_lists_what_login_would_apply(
    pooled_db: asyncpg.Connection, admin_db: asyncpg.Connection
) -> None:
    async with role_setting_in_database(admin_db, "webuser", "lock_timeout", "1500ms"):
        rows = await pooled_db.fetch("SELECT role, name, value FROM auth.role_limits()")
    limits = {(r["role"], r["name"]): r["value"] for r in rows}
    assert limits[("anonymous", "statement_timeout")] == "3s"
    assert limits[("admin", "statement_timeout")] == "30s"
    # One row per role and setting, the database-specific one winning.
    assert len(rows) == len(limits)
    assert limits[("webuser", "lock_timeout")] == "1500ms"


@pytest.mark.parametrize(("limits", "expected"), [(None, "3s"), ((), "15s")])
async def test_the_data_api_statement_copies_limits_only_without_a_cache(
    pooled_db: asyncpg.Connection, limits: tuple[tuple[str, str, str], ...] | None, expected: str
) -> None:
    # No cache loaded (None): authenticate() copies them. A loaded cache
    # (here one with no limits in it) means the statement sets them itself.
    sql, args = Prelude((("request.method", "GET"),), "anonymous", limits=limits).statement(
        None, read_only=False
    )
    async with pooled_db.transaction():
        row = await pooled_db.fetchrow(sql, *args)
        assert row is not None
        assert row["role"] == "anonymous"
        assert await pooled_db.fetchval("SHOW statement_timeout") == expected
        assert await pooled_db.fetchval("SELECT current_setting('request.method')") == "GET"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "null",
        '{"x-probe": "a\\"b", "k": [1, null]}',
        "back\\slash and \"quotes\" and 'apostrophes'",
        "line\nbreak\ttab \u2028 é ✓ 🐘",
        "control \x01\x1f\x7f characters",
        "x" * 20000,
    ],
)
async def test_the_data_api_statement_sets_values_byte_for_byte(
    pooled_db: asyncpg.Connection, value: str
) -> None:
    # Whatever a request carries must arrive in current_setting() exactly:
    # never re-read as JSON (as when settings travelled as one JSON text),
    # re-quoted or truncated.
    sql, args = Prelude((("request.headers", value),), "anonymous", limits=()).statement(
        None, read_only=False
    )
    async with pooled_db.transaction():
        await pooled_db.fetchrow(sql, *args)
        assert await pooled_db.fetchval("SELECT current_setting('request.headers')") == value
    # The same path carries role-limit rows, which name the role they apply to.
    limits = (("anonymous", "sessiongate.probe", value),)
    sql, args = Prelude((), "anonymous", limits=limits).statement(None, read_only=False)
    async with pooled_db.transaction():
        await pooled_db.fetchrow(sql, *args)
        assert await pooled_db.fetchval("SELECT current_setting('sessiongate.probe')") == value


async def test_cached_limits_apply_to_the_resolved_role_only(
    pooled_db: asyncpg.Connection,
) -> None:
    limits = (("webuser", "statement_timeout", "7s"), ("anonymous", "statement_timeout", "2s"))
    sql, args = Prelude((), "anonymous", limits=limits).statement(None, read_only=False)
    async with pooled_db.transaction():
        await pooled_db.fetchrow(sql, *args)
        assert await pooled_db.fetchval("SHOW statement_timeout") == "2s"


async def test_too_many_cached_limits_fall_back_to_the_catalog(
    pooled_db: asyncpg.Connection,
) -> None:
    # Hundreds of roles with limits would make a statement too long for the
    # driver's cache; the catalog copy (anonymous: 3s) must take over, and
    # no cached value (here a wrong 2s) may be applied.
    limits = tuple((f"tenant_{i}", "lock_timeout", "9s") for i in range(300))
    limits += (("anonymous", "statement_timeout", "2s"),)
    sql, args = Prelude((("request.method", "GET"),), "anonymous", limits=limits).statement(
        None, read_only=False
    )
    assert len(args) == 4  # the hash, the anonymous role, one setting's name and value
    async with pooled_db.transaction():
        await pooled_db.fetchrow(sql, *args)
        assert await pooled_db.fetchval("SHOW statement_timeout") == "3s"
        assert await pooled_db.fetchval("SELECT current_setting('request.method')") == "GET"


async def test_authenticate_works_as_any_request_role(pooled_db: asyncpg.Connection) -> None:
    # Under PostgREST the pre-request runs in the role a JWT gave the request.
    async with pooled_db.transaction():
        await pooled_db.execute("SET LOCAL ROLE webuser")
        await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL)")
        assert await pooled_db.fetchval("SELECT current_user") == "anonymous"
        assert await pooled_db.fetchval("SHOW statement_timeout") == "3s"


async def test_anonymous_statement_timeout_cancels_a_slow_query(
    pooled_db: asyncpg.Connection,
) -> None:
    async with pooled_db.transaction():
        await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL)")
        with pytest.raises(asyncpg.QueryCanceledError):
            await pooled_db.execute("SELECT pg_sleep(3.5)")


async def test_a_leaked_session_level_role_is_dropped_by_the_next_request(
    pooled_db: asyncpg.Connection,
) -> None:
    # SQL in an earlier request ran set_config('role', 'admin', false) and committed.
    await pooled_db.execute("SELECT set_config('role', 'admin', false)")
    assert await pooled_db.fetchval("SELECT current_user") == "admin"
    async with pooled_db.transaction():
        assert await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL)") == "anonymous"
    # Back to itself between requests, so the service's own queries run as authenticator.
    assert await pooled_db.fetchval("SELECT current_user") == "authenticator"


async def test_security_definer_functions_cannot_switch_role(
    admin_db: asyncpg.Connection, pooled_db: asyncpg.Connection
) -> None:
    # PostgreSQL refuses SET ROLE / RESET ROLE inside SECURITY DEFINER code,
    # and in everything it calls; docs/security.md recommends the pattern for
    # exposed functions that build dynamic SQL.
    await admin_db.execute(
        """
        CREATE OR REPLACE FUNCTION api.escape_attempt_definer(how text) RETURNS text
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
          EXECUTE how;
          RETURN current_user;
        END $$;
        ALTER FUNCTION api.escape_attempt_definer(text) OWNER TO sessiongate_owner;
        GRANT EXECUTE ON FUNCTION api.escape_attempt_definer(text) TO webuser, anonymous;
        """
    )
    for how in ("RESET ROLE", "SET ROLE admin", "SELECT set_config('role', 'admin', false)"):
        async with pooled_db.transaction():
            await pooled_db.fetchval("SELECT role FROM auth.authenticate(NULL)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="security-definer"):
                await pooled_db.fetchval("SELECT api.escape_attempt_definer($1)", how)
