"""Password hashing: argon2id (OWASP parameters), and bcrypt from PostgREST's basic_auth."""

from __future__ import annotations

import asyncpg
import bcrypt
import httpx
import pytest

from app import passwords
from app.errors import ApiError
from app.passwords import PasswordPolicy, hash_password, verify_password
from tests.conftest import unique_email


@pytest.fixture
def argon2_verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash the real argon2id hasher verifies a password against, in order.

    The hasher still does the work: its own verify is wrapped, not replaced.
    """
    hashes: list[str] = []
    real = passwords._ARGON2.verify

    def counted(password: str | bytes, hash: str | bytes) -> bool:
        hashes.append(hash if isinstance(hash, str) else hash.decode())
        return real(password, hash)

    monkeypatch.setattr(passwords._ARGON2, "verify", counted)
    return hashes


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


async def test_an_imported_bcrypt_hash_costs_the_unknown_address_dummy_too(
    argon2_verified: list[str],
) -> None:
    # bcrypt at cost 6 is about three times faster than argon2id: without the
    # dummy, an imported account would answer faster than an unknown address.
    password = "imported from postgrest"
    legacy = bcrypt.hashpw(password.encode(), bcrypt.gensalt(6, prefix=b"2a")).decode()
    assert await verify_password("not it at all", legacy) == (False, None)
    assert argon2_verified == [passwords._DUMMY_HASH]
    valid, replacement = await verify_password(password, legacy)
    # Still upgraded on a successful login, still after the dummy.
    assert valid
    assert replacement is not None
    assert replacement.startswith("$argon2id$")
    assert argon2_verified == [passwords._DUMMY_HASH] * 2


async def test_an_argon2id_hash_is_verified_once_without_the_dummy(
    argon2_verified: list[str],
) -> None:
    stored = await hash_password("a long passphrase")
    assert await verify_password("a long passphrase", stored) == (True, None)
    assert argon2_verified == [stored]
    assert await verify_password("anything at all", None) == (False, None)
    assert argon2_verified == [stored, passwords._DUMMY_HASH]


async def test_login_to_an_imported_account_costs_what_an_unknown_address_costs(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection, argon2_verified: list[str]
) -> None:
    email = unique_email("legacy-timing")
    legacy = bcrypt.hashpw(b"imported from postgrest", bcrypt.gensalt(6, prefix=b"2a")).decode()
    await admin_db.execute(
        "INSERT INTO auth.users (email, password_hash, verified) VALUES ($1, $2, true)",
        email,
        legacy,
    )
    for address in (email, unique_email("nobody")):
        answer = await client.post("/api/login", json={"email": address, "password": "a guess"})
        assert answer.status_code == 401
    # One argon2id verification each: the bcrypt account's is the dummy.
    assert argon2_verified == [passwords._DUMMY_HASH] * 2
