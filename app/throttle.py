"""Brute-force throttling: failures counted per account and per client network in PostgreSQL.

Every worker and host shares the counters (auth.throttle), and a failure is
counted in a transaction of its own, so it sticks although the request that
caused it fails. Back-off is exponential and capped: per account at a few
minutes, so nobody can lock a victim out for long; per client network much
longer, so the attacker's own address takes the weight. Thresholds are
settings (THROTTLE_*, docs/security.md).

Scopes name what is protected: "login", "verify" (e-mail verification),
"reset" (password reset), "password" (the current password, to change it or
the address), "signup". Each is counted
twice: `<scope>:account` keyed by a hash of the e-mail address, and
`<scope>:address` keyed by the client's IPv4 address or IPv6 /64.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv6Address, ip_address, ip_network

from sqlalchemy import text
from starlette.requests import HTTPConnection

from app import audit
from app.errors import ApiError
from app.gateway import Gateway

_RETRY_AFTER = text("SELECT auth.throttle_retry_after(:scopes, :subjects)")
_FAIL = text("SELECT auth.throttle_fail(:scope, :subject, :free, :base, :max, :window)")
_CLEAR = text("SELECT auth.throttle_clear(:scope, :subject)")
UNKNOWN_ADDRESS = "unknown"


def account_subject(email: str) -> str:
    """The counter key for an e-mail address: sha256 hex of its trimmed, lower-cased form."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def address_subject(host: str | None) -> str:
    """The counter key for a client: its IPv4 address, or its IPv6 /64 network.

    One IPv6 subscriber usually holds a whole /64, so counting single
    addresses there would give an attacker 2^64 fresh counters.
    """
    if host is None:
        return UNKNOWN_ADDRESS
    try:
        address = ip_address(host)
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def _subjects(scope: str, email: str | None, host: str | None) -> list[tuple[str, str]]:
    keys = [(f"{scope}:address", address_subject(host))]
    if email is not None:
        keys.append((f"{scope}:account", account_subject(email)))
    return keys


def _client_host(connection: HTTPConnection) -> str | None:
    return connection.client.host if connection.client else None


def too_many(retry_after: int) -> ApiError:
    """The 429 a throttled client gets."""
    return ApiError(
        429,
        "too_many_attempts",
        "Too many failed attempts",
        details=f"Try again in {retry_after} seconds.",
        hint="Wait for the Retry-After interval; each further failure doubles it.",
        headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"},
    )


async def check(
    gateway: Gateway, connection: HTTPConnection, scope: str, *, email: str | None
) -> None:
    """Raise a 429 with Retry-After if the account or the client is held back for `scope`."""
    keys = _subjects(scope, email, _client_host(connection))
    async with gateway.engine.connect() as conn:
        retry_after = int(
            (
                await conn.execute(
                    _RETRY_AFTER,
                    {"scopes": [k[0] for k in keys], "subjects": [k[1] for k in keys]},
                )
            ).scalar_one()
        )
    if retry_after > 0:
        audit.event("throttled", connection, email=email, scope=scope, retry_after=retry_after)
        raise too_many(retry_after)


async def fail(
    gateway: Gateway, connection: HTTPConnection, scope: str, *, email: str | None
) -> int:
    """Count a failure for the account and the client; the seconds either is now locked for.

    Runs in its own transaction, committed before the caller answers.
    """
    settings = gateway.settings
    policy = {
        "account": (settings.throttle_account_free_failures, settings.throttle_account_max_lock),
        "address": (settings.throttle_address_free_failures, settings.throttle_address_max_lock),
    }
    locked = 0
    async with gateway.engine.begin() as conn:
        for key_scope, subject in _subjects(scope, email, _client_host(connection)):
            free, maximum = policy[key_scope.rsplit(":", 1)[1]]
            seconds = int(
                (
                    await conn.execute(
                        _FAIL,
                        {
                            "scope": key_scope,
                            "subject": subject,
                            "free": free,
                            "base": settings.throttle_base_lock,
                            "max": maximum,
                            "window": settings.throttle_window,
                        },
                    )
                ).scalar_one()
            )
            if seconds > 0:
                audit.event("lock", connection, email=email, scope=key_scope, seconds=seconds)
            locked = max(locked, seconds)
    return locked


async def spend(
    gateway: Gateway, connection: HTTPConnection, scope: str, *, email: str | None
) -> None:
    """Count an attempt that costs something whatever its outcome (it sends mail).

    A 429 if the account or the client is held back for `scope`; otherwise
    the attempt is counted as a failure before the work is done, so nobody
    can use the route to mail-bomb an address or load the service.
    """
    await check(gateway, connection, scope, email=email)
    await fail(gateway, connection, scope, email=email)


async def succeed(gateway: Gateway, scope: str, *, email: str) -> None:
    """Forget the account's failures for `scope` (after a successful attempt)."""
    async with gateway.engine.begin() as conn:
        await conn.execute(_CLEAR, {"scope": f"{scope}:account", "subject": account_subject(email)})
