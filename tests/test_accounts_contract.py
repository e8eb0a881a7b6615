"""The account lifecycle's SQL contract, checked directly: grants, hashing, single use, outbox."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import unique_email

pytestmark = pytest.mark.contract

_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$c29tZWhhc2hzb21laGFzaHNvbWVoYXNo"


@pytest.fixture
async def tx(authenticator_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """The service's connection inside a transaction that is rolled back afterwards."""
    transaction = authenticator_db.transaction()
    await transaction.start()
    try:
        yield authenticator_db
    finally:
        await transaction.rollback()


@pytest.mark.parametrize("role", ["anonymous", "webuser", "admin"])
async def test_request_roles_reach_no_token_event_or_account_function(
    tx: asyncpg.Connection, role: str
) -> None:
    await tx.execute(f"SET LOCAL ROLE {role}")
    for statement in (
        "SELECT * FROM auth.tokens",
        "SELECT * FROM auth.events",
        "SELECT auth.sign_up('x@example.com', 'h', 'webuser')",
        "SELECT auth.request_password_reset('x@example.com')",
        "SELECT * FROM auth.claim_event()",
        "SELECT auth.update_user(gen_random_uuid(), 'admin')",
        "SELECT * FROM auth.admin_list_users('\\x00'::bytea, 'admin')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tx.transaction():
                await tx.execute(statement)


async def test_internal_helpers_are_not_even_granted_to_authenticator(
    tx: asyncpg.Connection,
) -> None:
    for statement in (
        "SELECT auth.enqueue_event('reset', '{}')",
        "SELECT * FROM auth.consume_token('reset', '\\x00'::bytea)",
        "SELECT auth.invalidate_tokens(gen_random_uuid(), 'reset')",
        "SELECT auth.require_clearance('admin', 'admin')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tx.transaction():
                await tx.execute(statement)


async def test_a_token_is_single_use_bound_to_purpose_and_hashed(tx: asyncpg.Connection) -> None:
    email = unique_email("contract")
    assert await tx.fetchval("SELECT auth.sign_up($1, $2)", email, _HASH) is True
    user_id = await tx.fetchval("SELECT id FROM auth.find_user($1)", email)
    token = secrets.token_bytes(32)
    digest = hashlib.sha256(token).digest()
    recipient = await tx.fetchval(
        "SELECT auth.mint_token($1, 'verify', $2, $3, 60)", user_id, digest, email
    )
    assert recipient == email
    # Wrong purpose: nothing happens, and the token survives.
    assert await tx.fetchval("SELECT auth.reset_password($1, $2)", digest, _HASH) is None
    # A sign-up link names the password it confirms, and is redeemed only
    # with that hash (the service checks the password itself first).
    needed = "SELECT password_hash FROM auth.verification_password($1)"
    assert await tx.fetchval(needed, digest) == _HASH
    for wrong in (None, "$argon2id$v=19$m=1,t=1,p=1$bm90$dGhpcw"):
        assert await tx.fetch("SELECT * FROM auth.verify_email($1, $2)", digest, wrong) == []
    verified = await tx.fetch("SELECT * FROM auth.verify_email($1, $2)", digest, _HASH)
    assert [r["verified"] for r in verified] == [True]
    assert await tx.fetch("SELECT * FROM auth.verify_email($1, $2)", digest, _HASH) == []
    assert await tx.fetch(needed, digest) == []
    # Minting for an address that is already verified sends nothing.
    again = await tx.fetchval(
        "SELECT auth.mint_token($1, 'verify', $2, NULL, 60)",
        user_id,
        hashlib.sha256(b"another").digest(),
    )
    assert again is None


async def test_a_link_that_carries_a_password_always_asks_for_it(tx: asyncpg.Connection) -> None:
    email = unique_email("carried")
    assert await tx.fetchval("SELECT auth.sign_up($1, $2)", email, _HASH) is True
    user_id = await tx.fetchval("SELECT id FROM auth.find_user($1)", email)
    other_hash = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXNo"
    digest = hashlib.sha256(secrets.token_bytes(32)).digest()
    # The link a second sign-up for the same address gets: it carries that
    # sign-up's password, and only that password redeems it.
    await tx.fetchval(
        "SELECT auth.mint_token($1, 'verify', $2, NULL, 60, $3)", user_id, digest, other_hash
    )
    needed = "SELECT password_hash FROM auth.verification_password($1)"
    assert await tx.fetchval(needed, digest) == other_hash
    # Still so once the account is verified some other way (a password reset).
    await tx.execute("SELECT auth.update_user($1, new_verified => true)", user_id)
    assert await tx.fetchval(needed, digest) == other_hash
    assert await tx.fetch("SELECT * FROM auth.verify_email($1, NULL)", digest) == []
    assert await tx.fetch("SELECT * FROM auth.verify_email($1, $2)", digest, _HASH) == []
    stored = "SELECT password_hash FROM auth.login_lookup($1)"
    assert await tx.fetchval(stored, email) == _HASH
    assert len(await tx.fetch("SELECT * FROM auth.verify_email($1, $2)", digest, other_hash)) == 1
    assert await tx.fetchval(stored, email) == other_hash


async def test_a_link_to_a_new_address_needs_no_password(tx: asyncpg.Connection) -> None:
    # Also for an account not yet verified (REQUIRE_VERIFIED_EMAIL off lets
    # it sign in): the move was asked for with the current password.
    email = unique_email("unverified-mover")
    assert await tx.fetchval("SELECT auth.sign_up($1, $2)", email, _HASH) is True
    user_id = await tx.fetchval("SELECT id FROM auth.find_user($1)", email)
    digest = hashlib.sha256(secrets.token_bytes(32)).digest()
    new = unique_email("moved")
    assert (
        await tx.fetchval("SELECT auth.mint_token($1, 'verify', $2, $3, 60)", user_id, digest, new)
        == new
    )
    needed = await tx.fetch("SELECT password_hash FROM auth.verification_password($1)", digest)
    assert [r["password_hash"] for r in needed] == [None]
    moved = await tx.fetch("SELECT * FROM auth.verify_email($1, NULL)", digest)
    assert [(r["email"], r["verified"]) for r in moved] == [(new, True)]


async def test_every_request_writes_one_outbox_row_naming_no_secret(
    admin_db: asyncpg.Connection,
) -> None:
    email = unique_email("outbox")
    transaction = admin_db.transaction()
    await transaction.start()
    try:
        await admin_db.execute("SELECT auth.sign_up($1, $2)", email, _HASH)
        await admin_db.execute("SELECT auth.request_verification($1)", email.upper())
        await admin_db.execute("SELECT auth.request_password_reset($1)", email)
        await admin_db.execute("SELECT auth.request_password_reset($1)", unique_email("nobody"))
        rows = await admin_db.fetch(
            "SELECT kind, payload, delivered, attempts FROM auth.events"
            " WHERE payload->>'email' = $1 ORDER BY id",
            email,
        )
        tokens = await admin_db.fetchval(
            "SELECT count(*) FROM auth.tokens t JOIN auth.users u ON u.id = t.user_id"
            " WHERE lower(u.email::text) = lower($1)",
            email,
        )
    finally:
        await transaction.rollback()
    assert [r["kind"] for r in rows] == ["validate", "validate", "reset"]
    assert all(set(json.loads(r["payload"])) == {"user_id", "email"} for r in rows)
    assert all(r["delivered"] is None and r["attempts"] == 0 for r in rows)
    # No token exists before the mailer mints one as it sends.
    assert tokens == 0


async def test_clearance_follows_role_membership(tx: asyncpg.Connection) -> None:
    # Sign in an admin the way the service does, then act through the admin functions.
    email = unique_email("clear")
    admin = await tx.fetchrow("SELECT * FROM auth.create_user($1, $2, 'admin', true)", email, _HASH)
    assert admin is not None
    secret = secrets.token_bytes(32)
    digest = hashlib.sha256(secret).digest()
    await tx.execute("SELECT * FROM auth.issue_session($1, $2, 60, 60)", admin["id"], digest)
    target = await tx.fetchrow(
        "SELECT * FROM auth.create_user($1, $2, 'webuser', true)", unique_email("t"), _HASH
    )
    assert target is not None
    promoted = await tx.fetchrow(
        "SELECT * FROM auth.admin_update_user($1, 'admin', $2, 'admin')", digest, target["id"]
    )
    assert promoted is not None
    assert promoted["role"] == "admin"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tx.transaction():
            # authenticator is a member of its own role; admin is not.
            await tx.execute(
                "SELECT * FROM auth.admin_update_user($1, 'admin', $2, 'authenticator')",
                digest,
                target["id"],
            )
