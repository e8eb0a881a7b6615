"""The SQL contract, checked in SQL: roles, grants, policies and auth.authenticate().

These tests talk to PostgreSQL only (no HTTP), so `make test` also runs them
against Debian's PostgreSQL 15 (tests/pg15.sh) to keep the 14+ claim honest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.conftest import TestDatabase, unique_email

pytestmark = pytest.mark.contract

ARGON2_PLACEHOLDER = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


@dataclass(frozen=True)
class SessionFixture:
    """A user with a live session, made directly in SQL."""

    user_id: UUID
    email: str
    secret: bytes
    session_id: UUID

    @property
    def token_hash(self) -> bytes:
        """sha256(secret), what authenticate() takes."""
        return hashlib.sha256(self.secret).digest()

    @property
    def cookie(self) -> str:
        """A cookie value in sessiongate's format (the signature part is not checked in SQL)."""
        encoded = base64.urlsafe_b64encode(self.secret).rstrip(b"=").decode()
        return f"{encoded}.signature-checked-by-the-service"


async def make_session(conn: asyncpg.Connection, *, role: str = "webuser") -> SessionFixture:
    """Create a user and a session with the service's own functions, as authenticator would."""
    email = unique_email("contract")
    user_id = await conn.fetchval(
        "SELECT id FROM auth.create_user($1, $2, $3, true)", email, ARGON2_PLACEHOLDER, role
    )
    secret = secrets.token_bytes(32)
    session_id = await conn.fetchval(
        "SELECT session_id FROM auth.issue_session($1, $2, 3600, 86400)",
        user_id,
        hashlib.sha256(secret).digest(),
    )
    return SessionFixture(user_id, email, secret, session_id)


# --- Roles ------------------------------------------------------------------


async def test_authenticator_is_a_bare_login_role(admin_db: asyncpg.Connection) -> None:
    row = await admin_db.fetchrow(
        "SELECT rolcanlogin, rolinherit, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb"
        " FROM pg_roles WHERE rolname = 'authenticator'"
    )
    assert row is not None
    assert row["rolcanlogin"] is True
    assert row["rolinherit"] is False
    assert row["rolsuper"] is False
    assert row["rolbypassrls"] is False
    assert row["rolcreaterole"] is False
    assert row["rolcreatedb"] is False


async def test_request_roles_cannot_log_in_or_bypass_rls(admin_db: asyncpg.Connection) -> None:
    rows = await admin_db.fetch(
        "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles"
        " WHERE rolname IN ('anonymous', 'webuser', 'admin', 'sessiongate_owner')"
    )
    assert len(rows) == 4
    for row in rows:
        assert not row["rolcanlogin"], row["rolname"]
        assert not row["rolsuper"], row["rolname"]
        assert not row["rolbypassrls"], row["rolname"]


async def test_authenticator_may_switch_only_into_request_roles(
    admin_db: asyncpg.Connection,
) -> None:
    granted = {
        row["role"]
        for row in await admin_db.fetch(
            "SELECT r.rolname AS role FROM pg_auth_members m"
            " JOIN pg_roles r ON r.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'authenticator'"
        )
    }
    assert {"anonymous", "webuser", "admin"} <= granted
    assert "sessiongate_owner" not in granted
    superusers = {
        r["rolname"] for r in await admin_db.fetch("SELECT rolname FROM pg_roles WHERE rolsuper")
    }
    assert not granted & superusers


async def test_objects_belong_to_the_owner_role(admin_db: asyncpg.Connection) -> None:
    owners = await admin_db.fetch(
        "SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c"
        " WHERE c.relnamespace IN ('auth'::regnamespace, 'app'::regnamespace, 'api'::regnamespace)"
        " AND c.relkind IN ('r', 'v') AND c.relname <> 'alembic_version'"
    )
    assert owners
    assert {row["owner"] for row in owners} == {"sessiongate_owner"}


# --- Grants -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["authenticator", "anonymous", "webuser", "admin"])
async def test_no_runtime_role_can_touch_auth_tables(
    admin_db: asyncpg.Connection, role: str
) -> None:
    for table in ("auth.users", "auth.sessions"):
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            allowed = await admin_db.fetchval(
                "SELECT has_table_privilege($1, $2, $3)", role, table, privilege
            )
            assert allowed is False, (role, table, privilege)


async def test_authenticator_cannot_read_password_hashes(
    authenticator_db: asyncpg.Connection,
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await authenticator_db.fetch("SELECT password_hash FROM auth.users")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await authenticator_db.fetch("SELECT token_hash FROM auth.sessions")


@pytest.mark.parametrize(
    "function",
    [
        "auth.issue_session(uuid, bytea, integer, integer, inet, text)",
        "auth.rotate_session(bytea, bytea, integer)",
        "auth.revoke_session(bytea)",
        "auth.create_user(text, text, name, boolean)",
        "auth.login_lookup(text)",
        "auth.list_users()",
        "auth.role_limits()",
    ],
)
@pytest.mark.parametrize("role", ["anonymous", "webuser", "admin"])
async def test_request_roles_cannot_call_account_functions(
    admin_db: asyncpg.Connection, role: str, function: str
) -> None:
    assert (
        await admin_db.fetchval("SELECT has_function_privilege($1, $2, 'EXECUTE')", role, function)
        is False
    )


async def test_every_security_definer_function_pins_search_path(
    admin_db: asyncpg.Connection,
) -> None:
    loose = await admin_db.fetch(
        "SELECT p.oid::regprocedure::text AS fn FROM pg_proc p"
        " WHERE p.pronamespace IN ('auth'::regnamespace, 'api'::regnamespace, 'app'::regnamespace)"
        " AND p.prosecdef"
        " AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%')"
    )
    assert [row["fn"] for row in loose] == []


async def test_no_function_is_executable_by_public(admin_db: asyncpg.Connection) -> None:
    public = await admin_db.fetch(
        "SELECT p.oid::regprocedure::text AS fn FROM pg_proc p"
        " WHERE p.pronamespace IN ('auth'::regnamespace, 'app'::regnamespace)"
        " AND has_function_privilege('public', p.oid, 'EXECUTE')"
        " AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype"
    )
    assert [row["fn"] for row in public] == []


async def test_nothing_of_ours_lives_in_public(admin_db: asyncpg.Connection) -> None:
    relations = await admin_db.fetchval(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    )
    functions = await admin_db.fetchval(
        "SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
        " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
    )
    assert relations == 0
    assert functions == 0


# --- Policies -----------------------------------------------------------------


async def test_todos_have_forced_row_level_security(admin_db: asyncpg.Connection) -> None:
    row = await admin_db.fetchrow(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'app.todos'::regclass"
    )
    assert row is not None
    assert row["relrowsecurity"] is True
    assert row["relforcerowsecurity"] is True
    commands = {
        row["cmd"]
        for row in await admin_db.fetch("SELECT cmd FROM pg_policies WHERE tablename = 'todos'")
    }
    assert commands == {"SELECT", "INSERT", "UPDATE", "DELETE"}


async def test_anonymous_may_read_but_not_write_todos(admin_db: asyncpg.Connection) -> None:
    assert await admin_db.fetchval("SELECT has_table_privilege('anonymous', 'api.todos', 'SELECT')")
    for privilege in ("INSERT", "UPDATE", "DELETE"):
        assert not await admin_db.fetchval(
            "SELECT has_table_privilege('anonymous', 'api.todos', $1)", privilege
        )
    assert not await admin_db.fetchval("SELECT has_schema_privilege('anonymous', 'app', 'USAGE')")


async def test_policies_isolate_users(authenticator_db: asyncpg.Connection) -> None:
    alice = await make_session(authenticator_db)
    bob = await make_session(authenticator_db)
    async with authenticator_db.transaction():
        await authenticator_db.fetch("SELECT * FROM auth.authenticate($1)", alice.token_hash)
        await authenticator_db.execute(
            "INSERT INTO api.todos (description, public)"
            " VALUES ('alice private', false), ('alice public', true)"
        )
    async with authenticator_db.transaction():
        await authenticator_db.fetch("SELECT * FROM auth.authenticate($1)", bob.token_hash)
        seen = {
            r["description"]
            for r in await authenticator_db.fetch("SELECT description FROM api.todos")
        }
        assert "alice public" in seen
        assert "alice private" not in seen
        changed = await authenticator_db.execute(
            "UPDATE api.todos SET done = true WHERE description LIKE 'alice%'"
        )
        assert changed == "UPDATE 0"
        deleted = await authenticator_db.execute(
            "DELETE FROM api.todos WHERE description LIKE 'alice%'"
        )
        assert deleted == "DELETE 0"


async def test_insert_cannot_claim_another_users_row(authenticator_db: asyncpg.Connection) -> None:
    alice = await make_session(authenticator_db)
    bob = await make_session(authenticator_db)
    async with authenticator_db.transaction():
        await authenticator_db.fetch("SELECT * FROM auth.authenticate($1)", bob.token_hash)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await authenticator_db.execute(
                "INSERT INTO api.todos (description, user_id) VALUES ('forged', $1)", alice.user_id
            )


async def test_user_id_fails_closed(authenticator_db: asyncpg.Connection) -> None:
    async with authenticator_db.transaction():
        await authenticator_db.execute("SET LOCAL ROLE webuser")
        assert await authenticator_db.fetchval("SELECT auth.user_id()") is None
        await authenticator_db.execute("SELECT set_config('auth.user_id', '', true)")
        assert await authenticator_db.fetchval("SELECT auth.user_id()") is None


# --- authenticate(token_hash) ---------------------------------------------------


async def test_authenticate_sets_role_and_claims_transaction_locally(
    authenticator_db: asyncpg.Connection,
) -> None:
    session = await make_session(authenticator_db)
    async with authenticator_db.transaction():
        row = await authenticator_db.fetchrow(
            "SELECT * FROM auth.authenticate($1)", session.token_hash
        )
        assert row is not None
        assert (row["role"], row["user_id"], row["session_id"]) == (
            "webuser",
            session.user_id,
            session.session_id,
        )
        state = await authenticator_db.fetchrow(
            "SELECT current_user AS role, session_user AS login, auth.user_id() AS uid,"
            " current_setting('request.jwt.claims') AS claims,"
            " current_setting('jwt.claims.user_id') AS pg_user_id"
        )
        assert state is not None
        assert state["role"] == "webuser"
        assert state["login"] == "authenticator"
        assert state["uid"] == session.user_id
        claims = json.loads(state["claims"])
        assert claims == {
            "role": "webuser",
            "sub": str(session.user_id),
            "user_id": str(session.user_id),
            "email": session.email,
            "session_id": str(session.session_id),
        }
        assert state["pg_user_id"] == str(session.user_id)
    after = await authenticator_db.fetchrow(
        "SELECT current_user AS role, current_setting('auth.user_id', true) AS uid,"
        " current_setting('request.jwt.claims', true) AS claims"
    )
    assert after is not None
    assert after["role"] == "authenticator"
    assert not after["uid"]
    assert not after["claims"]


# Temporary tables named like the types the auth functions use. PostgreSQL
# looks for type names in pg_temp first unless the search_path lists it, so
# unqualified, these would stand in for the real types in any statement or
# PL/pgSQL function compiled on the connection afterwards.
_TYPE_NAMES = ("text", "uuid", "jsonb", "name", "bytea", "boolean", "record", "integer")


async def test_temporary_tables_named_like_types_change_nothing(
    database: TestDatabase, authenticator_db: asyncpg.Connection
) -> None:
    session = await make_session(authenticator_db)
    # A fresh connection, so every function is compiled after the tables exist.
    conn = await asyncpg.connect(database.runtime_dsn)
    try:
        for type_name in _TYPE_NAMES:
            await conn.execute(f"CREATE TEMP TABLE {type_name} (planted int)")
        async with conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM auth.authenticate($1, true, 'anonymous', true)", session.token_hash
            )
            assert row is not None
            assert (row["role"], row["user_id"]) == ("webuser", session.user_id)
            assert await conn.fetchval("SELECT auth.user_id()") == session.user_id
            claims = json.loads(await conn.fetchval("SELECT current_setting('request.jwt.claims')"))
            assert claims["user_id"] == str(session.user_id)
            # The policies inline auth.user_id() into the query.
            assert await conn.fetchval("SELECT count(*) FROM api.todos") >= 0
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('request.cookies', $1, true)",
                json.dumps({"sessiongate": session.cookie}),
            )
            await conn.execute("SELECT auth.authenticate()")
            assert await conn.fetchval("SELECT current_user") == "webuser"
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "spoil",
    [
        "UPDATE auth.sessions SET revoked_at = now() WHERE id = $1",
        "UPDATE auth.sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        "UPDATE auth.sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1",
        "UPDATE auth.users SET disabled = true"
        " WHERE id = (SELECT user_id FROM auth.sessions WHERE id = $1)",
    ],
    ids=["revoked", "expired", "idle-expired", "disabled-user"],
)
async def test_dead_sessions_authenticate_as_anonymous(
    authenticator_db: asyncpg.Connection, admin_db: asyncpg.Connection, spoil: str
) -> None:
    session = await make_session(authenticator_db)
    await admin_db.execute(spoil, session.session_id)
    async with authenticator_db.transaction():
        row = await authenticator_db.fetchrow(
            "SELECT * FROM auth.authenticate($1)", session.token_hash
        )
        assert row is not None
        assert row["role"] == "anonymous"
        assert row["user_id"] is None
        assert await authenticator_db.fetchval("SELECT current_user") == "anonymous"
        assert (
            await authenticator_db.fetchval("SELECT current_setting('request.jwt.claims')") == "{}"
        )


async def test_unknown_and_missing_hashes_are_anonymous(
    authenticator_db: asyncpg.Connection,
) -> None:
    for value in (None, hashlib.sha256(b"guess").digest()):
        async with authenticator_db.transaction():
            row = await authenticator_db.fetchrow("SELECT * FROM auth.authenticate($1)", value)
            assert row is not None
            assert row["role"] == "anonymous"
            assert await authenticator_db.fetchval("SELECT auth.user_id()") is None


async def test_role_change_takes_effect_on_the_next_request(
    authenticator_db: asyncpg.Connection, admin_db: asyncpg.Connection
) -> None:
    session = await make_session(authenticator_db)
    await admin_db.execute("UPDATE auth.users SET role = 'admin' WHERE id = $1", session.user_id)
    async with authenticator_db.transaction():
        await authenticator_db.fetch("SELECT * FROM auth.authenticate($1)", session.token_hash)
        assert await authenticator_db.fetchval("SELECT current_user") == "admin"


async def test_a_role_authenticator_may_not_use_is_refused(
    authenticator_db: asyncpg.Connection, admin_db: asyncpg.Connection
) -> None:
    role = f"contract_extra_{secrets.token_hex(4)}"
    await admin_db.execute(f'CREATE ROLE "{role}" NOLOGIN')
    try:
        await admin_db.execute(f'GRANT "{role}" TO authenticator')
        session = await make_session(authenticator_db)
        await admin_db.execute(
            "UPDATE auth.users SET role = $1 WHERE id = $2", role, session.user_id
        )
        await admin_db.execute(f'REVOKE "{role}" FROM authenticator')
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not permitted"):
            async with authenticator_db.transaction():
                await authenticator_db.fetch(
                    "SELECT * FROM auth.authenticate($1)", session.token_hash
                )
        assert await authenticator_db.fetchval("SELECT current_user") == "authenticator"
    finally:
        await admin_db.execute("DELETE FROM auth.users WHERE role = $1", role)
        await admin_db.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_users_cannot_be_given_a_superuser_role(admin_db: asyncpg.Connection) -> None:
    superuser = await admin_db.fetchval("SELECT rolname FROM pg_roles WHERE rolsuper LIMIT 1")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await admin_db.execute(
            "INSERT INTO auth.users (email, password_hash, role) VALUES ($1, $2, $3)",
            unique_email(),
            ARGON2_PLACEHOLDER,
            superuser,
        )


async def test_session_lookup_is_one_index_probe(
    admin_db: asyncpg.Connection, authenticator_db: asyncpg.Connection
) -> None:
    session = await make_session(authenticator_db)
    # Enough rows that a sequential scan would be the planner's choice if the
    # index were missing or unusable.
    await admin_db.execute(
        "INSERT INTO auth.sessions (token_hash, user_id, idle_expires_at, expires_at)"
        " SELECT sha256(convert_to(g::text || random()::text, 'UTF8')), $1,"
        " now() + interval '1 hour', now() + interval '1 day' FROM generate_series(1, 3000) g",
        session.user_id,
    )
    await admin_db.execute("ANALYZE auth.sessions")
    plan = await admin_db.fetchval(
        "EXPLAIN (FORMAT JSON) SELECT * FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id"
        " WHERE s.token_hash = $1 AND s.revoked_at IS NULL",
        session.token_hash,
    )
    nodes = list(_plan_nodes(json.loads(plan)[0]["Plan"]))
    on_sessions = [n for n in nodes if n.get("Relation Name") == "sessions"]
    assert [n["Node Type"] for n in on_sessions] == ["Index Scan"]
    assert on_sessions[0]["Index Name"] == "sessions_token_hash_key"


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


# --- auth.authenticate(): PostgREST's db-pre-request --------------------------


async def _postgrest_request(
    conn: asyncpg.Connection, *, cookies: dict[str, str], claims: dict[str, str]
) -> None:
    """Set up a transaction the way PostgREST 12 does before calling the pre-request."""
    role = claims.get("role", "anonymous")
    await conn.execute(
        "SELECT set_config('search_path', 'api', true), set_config('role', $1, true),"
        " set_config('request.jwt.claims', $2, true), set_config('request.method', 'GET', true),"
        " set_config('request.path', '/todos', true),"
        " set_config('request.headers', $3, true), set_config('request.cookies', $4, true)",
        role,
        json.dumps(claims),
        json.dumps({"accept": "application/json", "user-agent": "contract-test"}),
        json.dumps(cookies),
    )
    await conn.execute('SELECT "auth"."authenticate"()')


async def test_postgrest_pre_request_reads_the_session_cookie(
    authenticator_db: asyncpg.Connection,
) -> None:
    session = await make_session(authenticator_db)
    for name in ("sessiongate", "__Host-sessiongate"):
        async with authenticator_db.transaction():
            await _postgrest_request(
                authenticator_db, cookies={name: session.cookie}, claims={"role": "anonymous"}
            )
            state = await authenticator_db.fetchrow(
                "SELECT current_user AS role, auth.user_id() AS uid,"
                " current_setting('request.jwt.claims') AS c"
            )
            assert state is not None
            assert state["role"] == "webuser"
            assert state["uid"] == session.user_id
            assert json.loads(state["c"])["session_id"] == str(session.session_id)


async def test_postgrest_pre_request_with_a_bad_cookie_is_anonymous(
    authenticator_db: asyncpg.Connection,
) -> None:
    forged = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode() + ".x"
    for cookie in (forged, "garbage", "", "a.b.c"):
        async with authenticator_db.transaction():
            await _postgrest_request(
                authenticator_db, cookies={"sessiongate": cookie}, claims={"role": "anonymous"}
            )
            assert await authenticator_db.fetchval("SELECT current_user") == "anonymous"
            assert await authenticator_db.fetchval("SELECT auth.user_id()") is None


async def test_postgrest_pre_request_without_cookie_keeps_the_jwt_role(
    authenticator_db: asyncpg.Connection,
) -> None:
    async with authenticator_db.transaction():
        await _postgrest_request(
            authenticator_db, cookies={}, claims={"role": "webuser", "sub": "from-a-jwt"}
        )
        assert await authenticator_db.fetchval("SELECT current_user") == "webuser"
        claims = json.loads(
            await authenticator_db.fetchval("SELECT current_setting('request.jwt.claims')")
        )
        assert claims["sub"] == "from-a-jwt"


async def test_postgrest_legacy_cookie_setting_works(authenticator_db: asyncpg.Connection) -> None:
    session = await make_session(authenticator_db)
    async with authenticator_db.transaction():
        await authenticator_db.execute("SELECT set_config('role', 'anonymous', true)")
        await authenticator_db.execute(
            "SELECT set_config('request.cookie.sessiongate', $1, true)", session.cookie
        )
        await authenticator_db.execute("SELECT auth.authenticate()")
        assert await authenticator_db.fetchval("SELECT current_user") == "webuser"
