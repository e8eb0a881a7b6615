"""Password hashing: argon2id (OWASP parameters), and bcrypt from PostgREST's basic_auth."""

from __future__ import annotations

import asyncpg
import bcrypt
import httpx
import pytest

from app.errors import ApiError
from app.passwords import PasswordPolicy, hash_password, verify_password
from tests.conftest import unique_email


async def test_argon2id_round_trip() -> None:
    stored = await hash_password("a long passphrase")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await verify_password("a long passphrase", stored) == (True, None)
    assert (await verify_password("a long passphrasE", stored))[0] is False


async def test_unknown_user_never_verifies() -> None:
    assert await verify_password("anything at all", None) == (False, None)


async def test_garbage_hash_is_a_mismatch_not_a_crash() -> None:
    assert (await verify_password("anything at all", "$unknown$scheme"))[0] is False


def test_policy_bounds() -> None:
    policy = PasswordPolicy()
    policy.check("x" * 8)
    policy.check("x" * 64)
    policy.check("x" * 128)
    for bad in ("x" * 7, "x" * 129):
        with pytest.raises(ApiError) as refused:
            policy.check(bad)
        assert refused.value.status == 422


async def test_pgcrypto_bcrypt_hash_logs_in_and_is_upgraded(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    # pgcrypto's crypt(pw, gen_salt('bf')) writes "$2a$06$...": what a
    # PostgREST basic_auth schema holds.
    email = unique_email("legacy")
    password = "imported from postgrest"
    legacy = bcrypt.hashpw(password.encode(), bcrypt.gensalt(6, prefix=b"2a")).decode()
    assert legacy.startswith("$2a$06$")
    await admin_db.execute(
        "INSERT INTO auth.users (email, password_hash, verified) VALUES ($1, $2, true)",
        email,
        legacy,
    )
    wrong = await client.post("/api/login", json={"email": email, "password": "not it at all"})
    assert wrong.status_code == 401
    assert (
        await admin_db.fetchval("SELECT password_hash FROM auth.users WHERE email = $1", email)
        == legacy
    )

    response = await client.post("/api/login", json={"email": email, "password": password})
    assert response.status_code == 200
    upgraded = await admin_db.fetchval(
        "SELECT password_hash FROM auth.users WHERE email = $1", email
    )
    assert upgraded.startswith("$argon2id$")
    again = await client.post("/api/login", json={"email": email, "password": password})
    assert again.status_code == 200


async def test_long_legacy_password_keeps_working_after_upgrade(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    # bcrypt (and pgcrypto) only look at 72 bytes; the upgrade must hash all of it.
    email = unique_email("legacy-long")
    password = "y" * 100
    legacy = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4, prefix=b"2a")).decode()
    await admin_db.execute(
        "INSERT INTO auth.users (email, password_hash, verified) VALUES ($1, $2, true)",
        email,
        legacy,
    )
    assert (
        await client.post("/api/login", json={"email": email, "password": password})
    ).status_code == 200
    assert (
        await client.post("/api/login", json={"email": email, "password": password})
    ).status_code == 200
    truncated = await client.post("/api/login", json={"email": email, "password": password[:72]})
    assert truncated.status_code == 401
