"""Brute-force throttling: shared counters in PostgreSQL, capped back-off, Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app import housekeeping
from app.db import create_engine
from app.throttle import address_subject
from tests.conftest import TEST_PASSWORD, LiveServer, make_settings, sign_up, unique_email
from tests.conftest import TestDatabase as Database
from tests.security.conftest import client_from, loopback_address

# Small numbers so a test needs few requests; the shape is the production one.
STRICT = {
    "throttle_account_free_failures": 3,
    "throttle_account_max_lock": 8,
    "throttle_address_free_failures": 6,
    "throttle_address_max_lock": 600,
    "throttle_base_lock": 2,
}


async def _login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/api/login", json={"email": email, "password": password})


@pytest.fixture
def strict_server(server_factory: Any) -> LiveServer:
    server: LiveServer = server_factory(**STRICT)
    return server


async def test_failures_lock_the_account_with_retry_after(
    strict_server: LiveServer,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    async with client_from(strict_server.url, loopback_address()) as http:
        user = await sign_up(http)
        for _ in range(3):
            assert (await _login(http, user["email"], "wrong password")).status_code == 401
        # The fourth failure is still answered 401, and starts a 2 s lock.
        assert (await _login(http, user["email"], "wrong password")).status_code == 401
        locked = await _login(http, user["email"], TEST_PASSWORD)
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 2
        body = locked.json()
        assert body["code"] == "too_many_attempts"
        assert set(body) == {"code", "message", "details", "hint"}
        assert "sessiongate" not in http.cookies
    # Counted and committed although every one of those logins failed.
    row = await admin_db.fetchrow(
        "SELECT failures, locked_until > now() AS locked FROM auth.throttle"
        " WHERE scope = 'login:account' AND subject = $1",
        account_key(user["email"]),
    )
    assert row is not None
    assert row["failures"] == 4
    assert row["locked"]


async def test_lock_ends_and_success_forgets_the_account_failures(
    strict_server: LiveServer,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    async with client_from(strict_server.url, loopback_address()) as http:
        user = await sign_up(http)
        for _ in range(4):
            await _login(http, user["email"], "wrong password")
        assert (await _login(http, user["email"], TEST_PASSWORD)).status_code == 429
        # Time passes (moved, not waited for: no sleeps in tests).
        await admin_db.execute(
            "UPDATE auth.throttle SET locked_until = now() - interval '1 second'"
            " WHERE subject = $1",
            account_key(user["email"]),
        )
        assert (await _login(http, user["email"], TEST_PASSWORD)).status_code == 200
    remaining = await admin_db.fetchval(
        "SELECT count(*) FROM auth.throttle WHERE scope = 'login:account' AND subject = $1",
        account_key(user["email"]),
    )
    assert remaining == 0


async def test_unknown_addresses_are_throttled_like_known_ones(strict_server: LiveServer) -> None:
    # Otherwise the 429 itself would tell which addresses have accounts.
    async with client_from(strict_server.url, loopback_address()) as http:
        nobody = unique_email("nobody")
        answers = [(await _login(http, nobody, "guess")).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 401, 429]


async def test_the_client_address_counter_dominates(strict_server: LiveServer) -> None:
    # One address guessing one password each against many accounts: the
    # per-account counters never trip, the per-address one does.
    address = loopback_address()
    async with client_from(strict_server.url, address) as http:
        statuses = [(await _login(http, unique_email(), "guess")).status_code for _ in range(7)]
        assert statuses == [401] * 7
        blocked = await _login(http, unique_email(), "guess")
        assert blocked.status_code == 429
        # Even a correct password from that address waits.
    async with client_from(strict_server.url, loopback_address()) as elsewhere:
        user = await sign_up(elsewhere)
        assert (await _login(elsewhere, user["email"], TEST_PASSWORD)).status_code == 200
    async with client_from(strict_server.url, address) as http:
        assert (await _login(http, user["email"], TEST_PASSWORD)).status_code == 429


async def test_every_worker_sees_the_same_counters(server_factory: Any) -> None:
    first: LiveServer = server_factory(**STRICT)
    second: LiveServer = server_factory(**STRICT)
    address = loopback_address()
    async with client_from(first.url, address) as a, client_from(second.url, address) as b:
        user = await sign_up(a)
        for _ in range(4):
            assert (await _login(a, user["email"], "wrong")).status_code == 401
        assert (await _login(b, user["email"], TEST_PASSWORD)).status_code == 429


async def _lock_out(base_url: str, email: str) -> None:
    """Fail from an attacker's own network until the account is locked."""
    async with client_from(base_url, loopback_address()) as attacker:
        for _ in range(4):
            assert (await _login(attacker, email, "wrong password")).status_code == 401
        assert (await _login(attacker, email, TEST_PASSWORD)).status_code == 429


async def test_a_browser_that_signed_in_before_gets_past_the_accounts_lock(
    strict_server: LiveServer,
) -> None:
    # Anyone can keep an account's lock shut by failing whenever it opens;
    # the owner's own browser (its device cookie) still gets in.
    async with client_from(strict_server.url, loopback_address()) as owner:
        user = await sign_up(owner)
        assert (await _login(owner, user["email"], TEST_PASSWORD)).status_code == 200
        device = owner.cookies["sessiongate-device"]
        await _lock_out(strict_server.url, user["email"])
        assert (await _login(owner, user["email"], TEST_PASSWORD)).status_code == 200
    # Everyone else still meets the lock: a new browser, a forged or
    # tampered cookie, and a cookie another account's sign-in left.
    async with client_from(strict_server.url, loopback_address()) as other:
        other_user = await sign_up(other)
        assert (await _login(other, other_user["email"], TEST_PASSWORD)).status_code == 200
        others_device = other.cookies["sessiongate-device"]
    # A character of the signature that carries six bits of it: the last
    # one carries four, and A and B there decode to the same bytes.
    signed, _, signature = device.rpartition(".")
    tampered = f"{signed}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    account, _, rest = device.partition(".")
    forged = "0" * len(account) + "." + rest
    for presented in (None, tampered, forged, others_device):
        async with client_from(strict_server.url, loopback_address()) as stranger:
            if presented is not None:
                stranger.cookies.set("sessiongate-device", presented)
            refused = await _login(stranger, user["email"], TEST_PASSWORD)
            assert refused.status_code == 429, presented


async def test_a_look_alike_accounts_device_cookie_does_not_serve_its_twin(
    strict_server: LiveServer, account_key: Callable[[str], str]
) -> None:
    # The throttle folds look-alike addresses into one counter on purpose
    # (straße and strasse share it); they are still two accounts, and one's
    # sign-ins must not mint exemptions for the other.
    tag = unique_email("x").split("@")[0]
    victim_email, twin_email = f"strasse-{tag}@example.com", f"straße-{tag}@example.com"
    assert account_key(victim_email) == account_key(twin_email)
    async with client_from(strict_server.url, loopback_address()) as victim:
        await sign_up(victim, victim_email)
    async with client_from(strict_server.url, loopback_address()) as attacker:
        await sign_up(attacker, twin_email)
        assert (await _login(attacker, twin_email, TEST_PASSWORD)).status_code == 200
        assert "sessiongate-device" in attacker.cookies
        await _lock_out(strict_server.url, victim_email)
        guessed = await _login(attacker, victim_email, TEST_PASSWORD)
        assert guessed.status_code == 429


async def test_failures_with_a_device_cookie_lock_that_device(
    strict_server: LiveServer,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    async with client_from(strict_server.url, loopback_address()) as owner:
        user = await sign_up(owner)
        assert (await _login(owner, user["email"], TEST_PASSWORD)).status_code == 200
        device = owner.cookies["sessiongate-device"]
        for _ in range(4):
            assert (await _login(owner, user["email"], "wrong password")).status_code == 401
        # The device is held back like an account would be...
        assert (await _login(owner, user["email"], TEST_PASSWORD)).status_code == 429
    # ...and the account itself is not: the owner's typos lock nobody else out.
    async with client_from(strict_server.url, loopback_address()) as elsewhere:
        assert (await _login(elsewhere, user["email"], TEST_PASSWORD)).status_code == 200
    assert not await admin_db.fetchval(
        "SELECT exists(SELECT FROM auth.throttle WHERE scope = 'login:account' AND subject = $1)",
        account_key(user["email"]),
    )
    # The cookie is itsdangerous's "<account key>.<device id>.<time>.<signature>".
    device_id = device.split(".")[1]
    assert (
        await admin_db.fetchval(
            "SELECT failures FROM auth.throttle WHERE scope = 'login:device' AND subject = $1",
            device_id,
        )
        == 4
    )


async def test_a_password_change_ends_the_device_cookies_signed_in_under_the_old_one(
    strict_server: LiveServer,
) -> None:
    # Whoever once had the password (a thief, before the owner changed it)
    # could sign in as often as they liked, each time with a fresh device
    # id and counter of its own. After the change none of those cookies may
    # spare them the account's lock on the new password.
    new_password = "an entirely new passphrase"
    async with client_from(strict_server.url, loopback_address()) as thief:
        user = await sign_up(thief)
        hoard = []
        for _ in range(3):
            thief.cookies.clear()
            assert (await _login(thief, user["email"], TEST_PASSWORD)).status_code == 200
            hoard.append(thief.cookies["sessiongate-device"])
    async with client_from(strict_server.url, loopback_address()) as owner:
        assert (await _login(owner, user["email"], TEST_PASSWORD)).status_code == 200
        changed = await owner.post(
            "/api/password/change",
            json={"current_password": TEST_PASSWORD, "new_password": new_password},
        )
        assert changed.status_code == 200, changed.text
        await _lock_out(strict_server.url, user["email"])
        for stolen in hoard:
            async with client_from(strict_server.url, loopback_address()) as guesser:
                guesser.cookies.set("sessiongate-device", stolen)
                guessed = await _login(guesser, user["email"], "another guess")
                assert guessed.status_code == 429, guessed.text
        # The browser that made the change got a new cookie and still gets in.
        assert (await _login(owner, user["email"], new_password)).status_code == 200


async def test_victim_lockout_is_capped(
    authenticator_db: asyncpg.Connection, account_key: Callable[[str], str]
) -> None:
    # A botnet failing for the victim from everywhere: the back-off doubles,
    # but never beyond the account maximum (here 300 s, the default).
    subject = account_key(unique_email("victim"))
    locks = [
        await authenticator_db.fetchval(
            "SELECT auth.throttle_fail('login:account', $1, 5, 2, 300, 900)", subject
        )
        for _ in range(40)
    ]
    assert locks[:5] == [0, 0, 0, 0, 0]
    assert locks[5] == 2
    assert locks[6] == 4
    assert locks[7] == 8
    assert max(locks) == 300
    assert all(lock <= 300 for lock in locks)


async def test_old_failures_are_forgotten(
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    subject = account_key(unique_email())
    for _ in range(5):
        await authenticator_db.fetchval(
            "SELECT auth.throttle_fail('login:account', $1, 5, 2, 300, 900)", subject
        )
    await admin_db.execute(
        "UPDATE auth.throttle SET last_failure_at = now() - interval '16 minutes'"
        " WHERE subject = $1",
        subject,
    )
    lock = await authenticator_db.fetchval(
        "SELECT auth.throttle_fail('login:account', $1, 5, 2, 300, 900)", subject
    )
    assert lock == 0
    failures = await admin_db.fetchval(
        "SELECT failures FROM auth.throttle WHERE subject = $1", subject
    )
    assert failures == 1


@pytest.mark.parametrize("role", ["anonymous", "webuser", "admin"])
async def test_request_roles_cannot_touch_the_counters(
    admin_db: asyncpg.Connection, role: str
) -> None:
    async with admin_db.transaction():
        await admin_db.execute(f"SET LOCAL ROLE {role}")
        for statement in (
            "SELECT count(*) FROM auth.throttle",
            "SELECT auth.throttle_clear('login:account', 'x')",
            "SELECT auth.throttle_fail('login:account', 'x', 1, 1, 1, 1)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with admin_db.transaction():
                    await admin_db.execute(statement)


def test_ipv6_clients_are_counted_per_64() -> None:
    assert address_subject("2001:db8:1:2:aaaa::1") == address_subject("2001:db8:1:2:bbbb::2")
    assert address_subject("2001:db8:1:2::1") != address_subject("2001:db8:1:3::1")
    assert address_subject("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_subject("192.0.2.7") == "192.0.2.7"
    assert address_subject(None) == address_subject("not an address") == "unknown"


async def test_quiet_counters_are_purged(
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    quiet, recent = account_key(unique_email()), account_key(unique_email())
    for subject in (quiet, recent):
        await authenticator_db.fetchval(
            "SELECT auth.throttle_fail('login:account', $1, 5, 2, 300, 900)", subject
        )
    await admin_db.execute(
        "UPDATE auth.throttle SET last_failure_at = now() - interval '2 days' WHERE subject = $1",
        quiet,
    )
    assert await authenticator_db.fetchval("SELECT auth.purge_throttle(86400)") >= 1
    left = await admin_db.fetch(
        "SELECT subject FROM auth.throttle WHERE subject = ANY($1::text[])", [quiet, recent]
    )
    assert [row["subject"] for row in left] == [recent]


async def test_parallel_guesses_get_no_more_tries_than_sequential_ones(
    strict_server: LiveServer,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    # Twenty wrong passwords for one account at once, each from its own
    # address so only the account counter can hold them. A check made before
    # the guess and a failure counted after it would let all twenty through.
    async with client_from(strict_server.url, loopback_address()) as http:
        user = await sign_up(http)

    async def guess() -> int:
        async with client_from(strict_server.url, loopback_address()) as http:
            return (await _login(http, user["email"], "wrong password")).status_code

    statuses = await asyncio.gather(*(guess() for _ in range(20)))
    # Three free failures, then the fourth starts the lock: four were tried.
    assert sorted(statuses) == [401] * 4 + [429] * 16, statuses
    row = await admin_db.fetchrow(
        "SELECT failures, pending FROM auth.throttle"
        " WHERE scope = 'login:account' AND subject = $1",
        account_key(user["email"]),
    )
    assert row is not None
    assert (row["failures"], row["pending"]) == (4, 0)


async def test_every_spelling_the_database_matches_shares_the_account_counter(
    strict_server: LiveServer,
    account_key: Callable[[str], str],
) -> None:
    async with client_from(strict_server.url, loopback_address()) as http:
        email = (await sign_up(http, unique_email("victim")))["email"]
    # glibc's lower() (this database's C.UTF-8) folds "İ" to "i"; Python's
    # str.lower() makes it "i" and a combining dot, another key.
    variant = email.replace("i", "İ", 1)
    assert variant != email
    async with client_from(strict_server.url, loopback_address()) as http:
        # The premise: PostgreSQL finds the account under that spelling too.
        assert (await _login(http, variant, TEST_PASSWORD)).status_code == 200
    for _ in range(4):
        async with client_from(strict_server.url, loopback_address()) as http:
            assert (await _login(http, email, "wrong password")).status_code == 401
    # The lock the four failures started holds for the other spelling too.
    async with client_from(strict_server.url, loopback_address()) as http:
        assert (await _login(http, variant, "wrong password")).status_code == 429
    assert account_key(variant) == account_key(email.upper())


async def test_a_counter_that_starts_over_still_counts_parallel_guesses(
    strict_server: LiveServer,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    async with client_from(strict_server.url, loopback_address()) as http:
        user = await sign_up(http)
        assert (await _login(http, user["email"], "wrong password")).status_code == 401
    # The failure is older than the window: the next attempt starts over.
    await admin_db.execute(
        "UPDATE auth.throttle SET last_failure_at = now() - interval '1 hour'"
        " WHERE scope = 'login:account' AND subject = $1",
        account_key(user["email"]),
    )

    async def guess() -> int:
        async with client_from(strict_server.url, loopback_address()) as http:
            return (await _login(http, user["email"], "wrong password")).status_code

    statuses = await asyncio.gather(*(guess() for _ in range(20)))
    assert sorted(statuses) == [401] * 4 + [429] * 16, statuses


async def test_parallel_guesses_from_one_client_all_get_an_answer(
    strict_server: LiveServer,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    # One account and one address: every attempt locks both counters, and
    # counting a failure out writes both; nothing may wait in a cycle.
    address = loopback_address()
    async with client_from(strict_server.url, address) as http:
        user = await sign_up(http)

        async def guess() -> int:
            return (await _login(http, user["email"], "wrong password")).status_code

        statuses = await asyncio.gather(*(guess() for _ in range(12)))
    assert sorted(statuses) == [401] * 4 + [429] * 8, statuses
    pending = await admin_db.fetch(
        "SELECT scope, pending FROM auth.throttle WHERE subject IN ($1, $2)",
        account_key(user["email"]),
        address,
    )
    assert {row["scope"]: row["pending"] for row in pending} == {
        "login:account": 0,
        "login:address": 0,
        "signup:account": 0,
        "signup:address": 0,
    }


async def _waiting_for_a_lock(admin: asyncpg.Connection, pid: int) -> None:
    """Return once backend `pid` waits for a lock (its query is blocked)."""
    waiting = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
    for _ in range(1000):  # a bound, so a test that went wrong fails instead of hanging
        if await admin.fetchval(waiting, pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


async def test_an_attempt_that_waits_for_a_cleared_counter_is_still_counted(
    database: Database,
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    subject = account_key(unique_email("cleared"))
    await authenticator_db.fetchval(
        "SELECT auth.throttle_fail('login:account', $1, 3, 2, 8, 900)", subject
    )
    # A sign-in holds the counter (it counts its own attempt out first)...
    signing_in = admin_db.transaction()
    await signing_in.start()
    await admin_db.execute("SELECT 1 FROM auth.throttle WHERE subject = $1 FOR UPDATE", subject)
    # ...when a guess arrives and waits for it...
    other = await asyncpg.connect(database.runtime_dsn)
    try:
        guess = asyncio.ensure_future(
            other.fetchval(
                "SELECT auth.throttle_attempt('{login:account}', ARRAY[$1], '{3}', 900)", subject
            )
        )
        await _waiting_for_a_lock(admin_db, other.get_server_pid())
        # ...and the sign-in forgets the account's failures: the row goes.
        await admin_db.execute("DELETE FROM auth.throttle WHERE subject = $1", subject)
        await signing_in.commit()
        assert await guess == 0
    finally:
        await other.close()
    # The guess found the row gone and counted itself on a new one.
    pending = await admin_db.fetchval(
        "SELECT pending FROM auth.throttle WHERE scope = 'login:account' AND subject = $1",
        subject,
    )
    assert pending == 1


async def test_a_sign_in_keeps_the_counts_of_attempts_still_under_way(
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    subject = account_key(unique_email("busy"))
    attempt = "SELECT auth.throttle_attempt('{login:account}', ARRAY[$1], '{3}', 900)"
    assert [await authenticator_db.fetchval(attempt, subject) for _ in range(2)] == [0, 0]
    # One of the two signs in: counted out, the account's failures forgotten.
    await authenticator_db.execute(
        "SELECT auth.throttle_release('{login:account}', ARRAY[$1])", subject
    )
    await authenticator_db.execute("SELECT auth.throttle_clear('login:account', $1)", subject)
    row = await admin_db.fetchrow(
        "SELECT failures, pending FROM auth.throttle"
        " WHERE scope = 'login:account' AND subject = $1",
        subject,
    )
    # The other is still under way, and still counted.
    assert row is not None
    assert (row["failures"], row["pending"]) == (0, 1)


async def _quiet_failure(
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
    label: str,
    age: timedelta,
) -> str:
    """A login:account counter with one failure, last touched `age` ago; its subject."""
    subject = account_key(unique_email(label))
    await authenticator_db.fetchval(
        "SELECT auth.throttle_fail('login:account', $1, 3, 2, 8, 900)", subject
    )
    await admin_db.execute(
        "UPDATE auth.throttle SET last_failure_at = now() - CAST($2 AS interval)"
        " WHERE subject = $1",
        subject,
        age,
    )
    return subject


async def test_the_purge_passes_over_a_counter_an_attempt_holds(
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
) -> None:
    subject = await _quiet_failure(
        authenticator_db, admin_db, account_key, "purged", timedelta(days=2)
    )
    async with admin_db.transaction():
        # An attempt holds the row; the purge must not wait for it.
        await admin_db.execute("SELECT 1 FROM auth.throttle WHERE subject = $1 FOR UPDATE", subject)
        async with authenticator_db.transaction():
            await authenticator_db.execute("SET LOCAL lock_timeout = '100ms'")
            await authenticator_db.fetchval("SELECT auth.purge_throttle(86400)")
    assert await admin_db.fetchval("SELECT count(*) FROM auth.throttle WHERE subject = $1", subject)
    assert await authenticator_db.fetchval("SELECT auth.purge_throttle(86400)") >= 1
    assert not await admin_db.fetchval(
        "SELECT count(*) FROM auth.throttle WHERE subject = $1", subject
    )


def test_the_account_key_folds_what_turkish_collations_fold(
    account_key: Callable[[str], str],
) -> None:
    # lower('I') is a dotless i under tr_TR and az collations.
    assert account_key("KADIN@example.com") == account_key("kad\u0131n@example.com")
    assert account_key("KADIN@example.com") == account_key("kadin@example.com")


@pytest.mark.parametrize(("window", "kept"), [(900, False), (3 * 86400, True)])
async def test_the_purge_keeps_a_counter_still_inside_its_window(
    database: Database,
    authenticator_db: asyncpg.Connection,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
    window: int,
    kept: bool,
) -> None:
    subject = await _quiet_failure(
        authenticator_db, admin_db, account_key, "window", timedelta(days=2)
    )
    settings = make_settings(database, throttle_window=window)
    engine = create_engine(database.runtime_url, settings)
    try:
        await housekeeping.purge(engine, settings)
    finally:
        await engine.dispose()
    left = await admin_db.fetchval("SELECT count(*) FROM auth.throttle WHERE subject = $1", subject)
    assert (left == 1) is kept
