"""Password hashing: argon2id for new hashes, bcrypt accepted from PostgREST's basic_auth."""

from __future__ import annotations

from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from starlette.concurrency import run_in_threadpool

from app.errors import ApiError

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_ARGON2 = Argon2Hasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# pgcrypto's crypt(pw, gen_salt('bf')) writes $2a$; verified, then replaced.
_BCRYPT_MAX_BYTES = 72  # bcrypt ignores the rest; pgcrypto truncated silently

_hasher = PasswordHash((_ARGON2, BcryptHasher()))
# Hashed once, verified against when the e-mail is unknown, so that a login
# for a missing account costs what a wrong password costs.
_DUMMY_HASH = _ARGON2.hash("sessiongate: no such user")


@dataclass(frozen=True)
class PasswordPolicy:
    """Length bounds, in characters (NIST SP 800-63B: at least 8, allow at least 64)."""

    min_length: int = 8
    max_length: int = 128

    def check(self, password: str) -> None:
        """Raise a 422 ApiError if the password may not be used."""
        if len(password) < self.min_length:
            raise ApiError(
                422,
                "weak_password",
                f"Password must be at least {self.min_length} characters",
                hint="Use a longer passphrase.",
            )
        if len(password) > self.max_length:
            raise ApiError(
                422,
                "password_too_long",
                f"Password must be at most {self.max_length} characters",
                hint="Use a shorter passphrase.",
            )


def _verify_dummy(password: str) -> None:
    """Spend what verifying a password against an argon2id hash costs, for nothing."""
    _ARGON2.verify(password, _DUMMY_HASH)


def _verify(password: str, stored: str) -> tuple[bool, str | None]:
    if not _ARGON2.identify(stored):
        # bcrypt at pgcrypto's cost 6 takes a third of argon2id's time: an
        # account with an imported hash (or an unusable one) would answer
        # faster than an unknown address, which costs the dummy. So it
        # costs the dummy too, on top of its own check.
        _verify_dummy(password)
    if stored.startswith("$2"):
        # bcrypt refuses more than 72 bytes; pgcrypto used only the first 72.
        candidate = password.encode("utf-8")[:_BCRYPT_MAX_BYTES]
    else:
        candidate = password.encode("utf-8")
    try:
        valid, replacement = _hasher.verify_and_update(candidate, stored)
    except (UnknownHashError, ValueError):
        return False, None
    if valid and replacement is not None:
        # Re-hash the whole password, not the 72 bytes bcrypt looked at.
        replacement = _hasher.hash(password)
    return valid, replacement


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`, computed off the event loop."""
    return await run_in_threadpool(_hasher.hash, password)


async def verify_password(password: str, stored: str | None) -> tuple[bool, str | None]:
    """Check `password` against `stored`; also return a replacement hash if outdated.

    With `stored` None (no such user) a dummy hash is checked, so the caller
    spends the same time either way, and the answer is always False. A
    stored hash that is not argon2id (bcrypt from PostgREST) is checked
    after the dummy, so no account answers faster than an unknown address.
    """
    if stored is None:
        await run_in_threadpool(_verify_dummy, password)
        return False, None
    return await run_in_threadpool(_verify, password, stored)
