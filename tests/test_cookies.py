"""The cookie codec: what verifies, what does not, and key rotation."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest
from itsdangerous import Signer

from app.config import Settings
from app.cookies import SALT, SessionCookie, new_secret
from tests.conftest import (
    TEST_PASSWORD,
    LiveServer,
    cookie_header,
    make_client,
    sign_in,
    sign_up,
)

KEY_OLD = "old-key-" + "o" * 40
KEY_NEW = "new-key-" + "n" * 40


def codec(*keys: str) -> SessionCookie:
    """A codec with `keys`, newest first."""
    return SessionCookie(keys=keys, name="sessiongate", secure=False)


def test_round_trip() -> None:
    secret = new_secret()
    value = codec(KEY_NEW).encode(secret)
    assert codec(KEY_NEW).decode(value) == secret


def test_rotation_keeps_old_cookies_and_signs_with_the_newest() -> None:
    secret = new_secret()
    old_cookie = codec(KEY_OLD).encode(secret)
    rotated = codec(KEY_NEW, KEY_OLD)
    assert rotated.decode(old_cookie) == secret
    assert codec(KEY_NEW).decode(rotated.encode(secret)) == secret
    # Once the old key is dropped, its cookies stop verifying.
    assert codec(KEY_NEW).decode(old_cookie) is None


def test_cookies_are_itsdangerous_signatures_under_our_salt() -> None:
    # The codec derives its keys once; what it signs and accepts must stay
    # exactly what a plain itsdangerous Signer signs, so cookies issued
    # before (and by any tool using the same key and salt) keep working.
    plain = Signer([KEY_OLD, KEY_NEW], salt=SALT, digest_method=hashlib.sha256)
    secret = new_secret()
    encoded = base64.urlsafe_b64encode(secret).rstrip(b"=")
    rotated = codec(KEY_NEW, KEY_OLD)
    assert rotated.encode(secret) == plain.sign(encoded).decode()
    assert rotated.decode(plain.sign(encoded).decode()) == secret
    old_only = Signer(KEY_OLD, salt=SALT, digest_method=hashlib.sha256)
    assert rotated.decode(old_only.sign(encoded).decode()) == secret
    other_salt = Signer(KEY_NEW, salt="another.salt", digest_method=hashlib.sha256)
    assert rotated.decode(other_salt.sign(encoded).decode()) is None


@pytest.mark.parametrize(
    "tamper",
    [
        # A middle character: the last one of base64 carries padding bits,
        # so changing it can decode to the very same signature.
        lambda v: v[:-5] + ("A" if v[-5] != "A" else "B") + v[-4:],  # signature changed
        lambda v: ("A" if v[0] != "A" else "B") + v[1:],  # secret changed
        lambda v: v.split(".")[0],  # signature removed
        lambda v: v[:20],  # truncated
        lambda v: v + v,  # doubled
        lambda v: v.split(".")[0] + ".",  # empty signature
        lambda v: "",  # empty
        lambda v: "é" * 10,  # not ASCII
        lambda v: "x" * 5000,  # oversized
    ],
    ids=["sig", "secret", "nosig", "truncated", "doubled", "emptysig", "empty", "unicode", "huge"],
)
def test_tampered_values_are_no_session(tamper: Any) -> None:
    value = codec(KEY_NEW).encode(new_secret())
    assert codec(KEY_NEW).decode(tamper(value)) is None


def test_a_validly_signed_value_of_the_wrong_shape_is_refused() -> None:
    # Someone holding a signing key could sign anything; the secret must
    # still be exactly 32 bytes of base64url.
    signer = codec(KEY_NEW)._signer
    short = signer.sign(base64.urlsafe_b64encode(b"short").rstrip(b"=")).decode()
    assert codec(KEY_NEW).decode(short) is None


async def test_forged_cookie_over_http_is_anonymous(live_server: LiveServer) -> None:
    async with make_client(live_server.url) as http:
        await sign_in(http)
        genuine = http.cookies["sessiongate"]
        forged = codec("an attacker's key " + "a" * 30).encode(new_secret())
        for value in (forged, genuine[:-2], genuine.split(".")[0]):
            me = await http.get("/api/me", headers=cookie_header(value))
            assert me.status_code == 401
            who = await http.get("/demo/summary", headers=cookie_header(value))
            assert who.json()["role"] == "anonymous"


async def test_rotating_keys_keeps_users_signed_in(server_factory: Any) -> None:
    before = server_factory(secret_keys=[KEY_OLD])
    async with make_client(before.url) as http:
        await sign_in(http)
        cookie = http.cookies["sessiongate"]
    after = server_factory(secret_keys=[KEY_NEW, KEY_OLD])
    async with httpx.AsyncClient(base_url=after.url) as http:
        assert (await http.get("/api/me", headers=cookie_header(cookie))).status_code == 200
    dropped = server_factory(secret_keys=[KEY_NEW])
    async with httpx.AsyncClient(base_url=dropped.url) as http:
        assert (await http.get("/api/me", headers=cookie_header(cookie))).status_code == 401


def test_https_public_url_means_secure_host_prefixed_cookies() -> None:
    settings = Settings(_env_file=None, public_url="https://app.example.com", secret_keys=[KEY_NEW])
    assert settings.secure_cookies is True
    assert settings.session_cookie_name == "__Host-sessiongate"
    assert settings.device_cookie_name == "__Host-sessiongate-device"
    plain = Settings(_env_file=None, public_url="http://127.0.0.1:8000", secret_keys=[KEY_NEW])
    assert plain.secure_cookies is False
    assert plain.session_cookie_name == "sessiongate"


async def test_secure_cookie_attributes_on_the_wire(server_factory: Any) -> None:
    server = server_factory(cookie_secure=True)
    async with make_client(server.url) as http:
        user = await sign_in_raw(http)
        session, device = user.headers.get_list("set-cookie")
        assert session.startswith("__Host-sessiongate=")
        assert device.startswith("__Host-sessiongate-device=")
        for cookie in (session, device):
            assert "; Secure" in cookie
            assert "Domain" not in cookie
            assert "Path=/" in cookie


async def sign_in_raw(http: httpx.AsyncClient) -> httpx.Response:
    """Sign up and log in, returning the raw login response."""
    user = await sign_up(http)
    return await http.post("/api/login", json={"email": user["email"], "password": TEST_PASSWORD})
