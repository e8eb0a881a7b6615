"""Verification, reset and password-change throttling; the audit trail; secret-key rules."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from app.addresses import AddressKeys
from app.audit import session_ref
from app.config import InsecureConfigurationError
from app.cookies import SessionCookie, new_secret
from app.main import create_app
from tests.conftest import TEST_PASSWORD, LiveServer, make_settings, sign_in, unique_email
from tests.conftest import TestDatabase as Database
from tests.security.conftest import client_from, loopback_address

STRICT = {
    "throttle_account_free_failures": 3,
    "throttle_account_max_lock": 8,
    "throttle_address_free_failures": 5,
    "throttle_base_lock": 2,
}
BOGUS_TOKEN = "A" * 43


async def test_token_guessing_is_throttled_per_address(server_factory: Any) -> None:
    server: LiveServer = server_factory(**STRICT)
    for path, body in (
        ("/api/verify", {"token": BOGUS_TOKEN}),
        ("/api/password/reset", {"token": BOGUS_TOKEN, "password": TEST_PASSWORD}),
    ):
        async with client_from(server.url, loopback_address()) as http:
            statuses = [(await http.post(path, json=body)).status_code for _ in range(7)]
        assert statuses[:6] == [400] * 6, (path, statuses)
        assert statuses[6] == 429, (path, statuses)


async def test_reset_and_verification_mails_are_throttled_per_account(
    server_factory: Any,
) -> None:
    server: LiveServer = server_factory(**STRICT)
    # Sign-up mails too: a link, or a notice to the address's owner.
    for path, extra, answer in (
        ("/api/password/forgot", {}, 202),
        ("/api/verify/resend", {}, 202),
        ("/api/signup", {"password": TEST_PASSWORD}, 201),
    ):
        email = unique_email("mailbomb")
        statuses = []
        for _ in range(5):
            # A fresh address each time: the account counter alone must hold.
            async with client_from(server.url, loopback_address()) as http:
                response = await http.post(path, json={"email": email, **extra})
                statuses.append(response.status_code)
        assert statuses[:4] == [answer] * 4, (path, statuses)
        assert statuses[4] == 429, (path, statuses)


async def test_sign_ups_from_one_client_are_throttled(server_factory: Any) -> None:
    server: LiveServer = server_factory(**STRICT)
    async with client_from(server.url, loopback_address()) as http:
        statuses = [
            (
                await http.post(
                    "/api/signup", json={"email": unique_email(), "password": TEST_PASSWORD}
                )
            ).status_code
            for _ in range(7)
        ]
    assert statuses == [201] * 6 + [429]


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [("POST", "/api/password/change", "new_password"), ("PATCH", "/api/me", "email")],
)
async def test_current_password_guessing_is_throttled(
    server_factory: Any, method: str, path: str, field: str
) -> None:
    server: LiveServer = server_factory(**STRICT)
    change = {"new_password": "a new long password", "email": unique_email("moved")}[field]
    async with client_from(server.url, loopback_address()) as http:
        await sign_in(http)
        body = {"current_password": "not it", field: change}
        statuses = [(await http.request(method, path, json=body)).status_code for _ in range(5)]
        assert statuses == [403, 403, 403, 403, 429]
        right = {"current_password": TEST_PASSWORD, field: change}
        assert (await http.request(method, path, json=right)).status_code == 429


async def test_audit_lines_hash_the_session_and_never_leak_secrets(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sessiongate.audit")
    address = loopback_address()
    async with client_from(live_server.url, address) as http:
        user = await sign_in(http)
        first_cookie = http.cookies["sessiongate"]
        assert (
            await http.post("/api/login", json={"email": user["email"], "password": "no"})
        ).status_code == 401
        assert (await http.post("/api/refresh")).status_code == 200
        sessions = (await http.get("/api/sessions")).json()
        change = await http.post(
            "/api/password/change",
            json={"current_password": TEST_PASSWORD, "new_password": "another long password"},
        )
        assert change.status_code == 200
        last_cookie = http.cookies["sessiongate"]
        assert (await http.post("/api/logout")).status_code == 204
    lines = [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "sessiongate.audit"
    ]
    lines = [line for line in lines if line.get("ip") == address]  # this client's only
    events = [line["event"] for line in lines]
    for expected in ("login", "login_failed", "refresh", "password_change", "logout"):
        assert expected in events, events
    session_id = sessions[0]["id"]
    refs = {line["session_ref"] for line in lines if line["event"] in {"login", "refresh"}}
    assert session_ref(session_id) in refs
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (session_id, first_cookie, last_cookie, TEST_PASSWORD, user["email"]):
        assert secret not in text
    for line in lines:
        assert {"ts", "event", "user_id", "session_ref"} <= set(line)


async def test_a_password_typed_as_the_address_is_kept_only_under_a_keyed_hash(
    live_server: LiveServer,
    database: Database,
    admin_db: asyncpg.Connection,
    account_key: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sessiongate.audit")
    typed = f"Summer2024!{secrets.token_hex(3)}"  # a password, in the wrong box
    async with client_from(live_server.url, loopback_address()) as http:
        answer = await http.post("/api/login", json={"email": typed, "password": "whatever"})
    assert answer.status_code == 401
    stored = {
        row["subject"]
        for row in await admin_db.fetch(
            "SELECT subject FROM auth.throttle WHERE scope = 'login:account'"
        )
    }
    logged = {
        line["account_ref"]
        for line in (json.loads(r.getMessage()) for r in caplog.records)
        if line.get("event") == "login_failed" and "account_ref" in line
    }
    # A dictionary of sha256 over lowered passwords finds nothing...
    plain = hashlib.sha256(typed.lower().encode()).hexdigest()
    assert plain not in stored
    assert plain[:16] not in logged
    # ...because both are keyed with the service's secret: its key finds them,
    # another key does not.
    assert account_key(typed) in stored
    assert account_key(typed)[:16] in logged
    other = AddressKeys.from_settings(make_settings(database, secret_keys=["another-" * 5]))
    assert other.key(typed) not in stored
    assert other.key(typed)[:16] not in logged


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ([], "SECRET_KEYS is not set"),
        (["short-key"], "shorter than 32"),
        (["changeme"], "well-known default"),
        (["x" * 40], "too few distinct"),
        (["a-good-key-" + "k9Zq" * 10, "secret"], "well-known default"),
    ],
)
def test_production_refuses_weak_or_missing_keys(
    database: Database, keys: list[str], problem: str
) -> None:
    settings = make_settings(database, demo=False, secret_keys=keys)
    with pytest.raises(InsecureConfigurationError, match=problem):
        create_app(settings)


def test_demo_mode_generates_a_key_and_production_accepts_a_strong_one(
    database: Database, tmp_path: Any
) -> None:
    demo = make_settings(database, demo=True, secret_keys=[], data_dir=tmp_path)
    assert len(demo.signing_keys[0]) >= 32
    create_app(make_settings(database, demo=False, secret_keys=["k9Zq-Tr4w-" * 4]))


async def test_rotating_keys_keeps_everyone_signed_in(server_factory: Any) -> None:
    old_key, new_key = "old-key-Q7mP" * 4, "new-key-Z3xW" * 4
    before: LiveServer = server_factory(secret_keys=[old_key])
    async with httpx.AsyncClient(base_url=before.url) as http:
        user = await sign_in(http)
        old_cookie = http.cookies["sessiongate"]
    after: LiveServer = server_factory(secret_keys=[new_key, old_key])
    async with httpx.AsyncClient(base_url=after.url) as http:
        me = await http.get("/api/me", headers={"cookie": f"sessiongate={old_cookie}"})
        assert me.json()["id"] == user["id"]
    codec = SessionCookie(keys=(new_key,), name="sessiongate", secure=False)
    assert codec.decode(old_cookie) is None  # the old key really was needed
    assert codec.decode(codec.encode(new_secret())) is not None
