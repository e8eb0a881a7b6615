"""Brute-force throttling: failures counted per account and per client network in PostgreSQL.

Every worker and host shares the counters (auth.throttle). An attempt is
counted in before it is tried, so parallel requests cannot all slip past
the allowance, and a failure is counted in a transaction of its own, so it
sticks although the request that caused it fails. Back-off is exponential
and capped: per account at a few minutes; per client network much
longer, so the attacker's own address takes the weight. Anyone can keep
re-locking an account, so a login from a browser that signed in to it
before (a device cookie, app/devices.py) is counted per device instead,
and its owner gets in. Thresholds are settings (THROTTLE_*, docs/security.md).

Scopes name what is protected: "login", "verify" (e-mail verification),
"reset" (password reset), "password" (the current password, to change it or
the address), "signup". Each is counted twice: `<scope>:account` keyed by
the gateway's address keys (app.addresses: an HMAC of the e-mail address
under a key derived from SECRET_KEYS), or `<scope>:device` keyed by a
device cookie's id, and `<scope>:address` keyed by the client's IPv4
address or IPv6 /64.
"""

from __future__ import annotations

import logging
from ipaddress import IPv6Address, ip_address, ip_network

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from app import audit
from app.addresses import AddressKeys
from app.errors import ApiError
from app.gateway import Gateway

_ATTEMPT = text("SELECT auth.throttle_attempt(:scopes, :subjects, :free, :window)")
_RELEASE = text("SELECT auth.throttle_release(:scopes, :subjects)")
_FAIL = text("SELECT auth.throttle_fail(:scope, :subject, :free, :base, :max, :window)")
_CLEAR = text("SELECT auth.throttle_clear(:scope, :subject)")
UNKNOWN_ADDRESS = "unknown"
log = logging.getLogger(__name__)


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


def _subjects(
    address_keys: AddressKeys, scope: str, email: str | None, device: str | None, host: str | None
) -> list[tuple[str, str]]:
    keys = [(f"{scope}:address", address_subject(host))]
    if device is not None:
        # A browser that signed in to this account before (app/devices.py):
        # counted on its own, so a lock others keep on the account spares it.
        keys.append((f"{scope}:device", device))
    elif email is not None:
        keys.append((f"{scope}:account", address_keys.key(email)))
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


class Attempt:
    """One attempt at a guarded door, counted in before it is tried.

    `async with throttle.attempt(...) as attempt:` refuses with a 429 while
    the account or the client is held back, and otherwise counts the
    attempt in, so parallel requests see each other (sql/08_throttle_attempts.sql).
    Inside the block, call `fail()` when the guess was wrong, or `succeed()`
    after a sign-in; leaving the block any other way (a right answer, an
    error) counts the attempt out as no failure.
    """

    def __init__(
        self,
        gateway: Gateway,
        connection: HTTPConnection,
        scope: str,
        email: str | None,
        device: str | None = None,
    ) -> None:
        self._gateway = gateway
        self._connection = connection
        self._scope = scope
        self._email = email
        # Sorted as the SQL functions lock them, so that fail(), which writes
        # one counter after the other, takes its row locks in the same order.
        self._keys = sorted(
            _subjects(gateway.address_keys, scope, email, device, _client_host(connection))
        )
        self._open = False
        self._failing = False

    def _key_arrays(self) -> dict[str, list[str]]:
        """The keys as the SQL functions take them: parallel scope and subject arrays."""
        return {"scopes": [k[0] for k in self._keys], "subjects": [k[1] for k in self._keys]}

    def _policy(self, key_scope: str) -> tuple[int, int]:
        """(free failures, longest lock) for a key: `<scope>:account`, `:device` or `:address`."""
        settings = self._gateway.settings
        if key_scope.endswith((":account", ":device")):
            return settings.throttle_account_free_failures, settings.throttle_account_max_lock
        return settings.throttle_address_free_failures, settings.throttle_address_max_lock

    async def __aenter__(self) -> Attempt:
        settings = self._gateway.settings
        async with self._gateway.engine.begin() as conn:
            retry_after = int(
                (
                    await conn.execute(
                        _ATTEMPT,
                        {
                            **self._key_arrays(),
                            "free": [self._policy(k[0])[0] for k in self._keys],
                            "window": settings.throttle_window,
                        },
                    )
                ).scalar_one()
            )
        if retry_after > 0:
            audit.event(
                "throttled",
                self._connection,
                email=self._email,
                scope=self._scope,
                retry_after=retry_after,
            )
            raise too_many(retry_after)
        self._open = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._open:
            return
        try:
            # A failure whose counting broke off is tried once more rather
            # than let go as no failure. (If a commit went through but its
            # answer was lost, the attempt is counted out twice; the SQL
            # never lets a count drop below zero.)
            await (self.fail() if self._failing else self._release())
        except Exception:
            # The request's own answer stands; the count left behind is
            # forgotten with the counter (THROTTLE_WINDOW).
            log.warning("counting a throttled attempt out failed", exc_info=True)

    async def fail(self) -> int:
        """Count the attempt out as a failure; the seconds the account or client is now locked.

        Committed before the caller answers, although the request fails.
        Until it is, the attempt stays open, and leaving the block tries
        the failure once more.
        """
        self._failing = True
        settings = self._gateway.settings
        locked = 0
        async with self._gateway.engine.begin() as conn:
            for key_scope, subject in self._keys:
                free, maximum = self._policy(key_scope)
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
                    audit.event(
                        "lock",
                        self._connection,
                        email=self._email,
                        scope=key_scope,
                        seconds=seconds,
                    )
                locked = max(locked, seconds)
        self._open = False
        return locked

    async def succeed(self) -> None:
        """Count the attempt out, and forget the account's failures (after a sign-in).

        The client's are kept: an attacker with one valid account must not
        be able to clear the counter of the network they guess from.
        """
        async with self._gateway.engine.begin() as conn:
            await self._count_out(conn)
            for key_scope, subject in self._keys:
                if key_scope.endswith((":account", ":device")):
                    await conn.execute(_CLEAR, {"scope": key_scope, "subject": subject})
        self._open = False

    async def _release(self) -> None:
        async with self._gateway.engine.begin() as conn:
            await self._count_out(conn)
        self._open = False

    async def _count_out(self, conn: AsyncConnection) -> None:
        await conn.execute(_RELEASE, self._key_arrays())


def attempt(
    gateway: Gateway,
    connection: HTTPConnection,
    scope: str,
    *,
    email: str | None,
    device: str | None = None,
) -> Attempt:
    """An attempt at `scope` for the account `email` (None: by client only); see Attempt.

    `device`: the id from a device cookie for that account (app/devices.py);
    the attempt is then counted per device instead of per account.
    """
    return Attempt(gateway, connection, scope, email, device)


async def spend(
    gateway: Gateway, connection: HTTPConnection, scope: str, *, email: str | None
) -> None:
    """Count an attempt that costs something whatever its outcome (it sends mail).

    A 429 if the account or the client is held back for `scope`; otherwise
    the attempt is counted as a failure before the work is done, so nobody
    can use the route to mail-bomb an address or load the service.
    """
    async with attempt(gateway, connection, scope, email=email) as counted:
        await counted.fail()
