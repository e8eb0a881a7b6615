"""The device cookie: bound to one account, signed, and honoured only for its lifetime."""

from __future__ import annotations

import hashlib
import time
import uuid

from itsdangerous import TimestampSigner
from starlette.requests import Request
from starlette.responses import Response

from app.devices import DeviceCookie, _password_tag

KEYS = ("device-test-key-" + "x" * 40,)
ACCOUNT = uuid.uuid4()
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
LIFETIME = 3600


def _cookie() -> DeviceCookie:
    return DeviceCookie(keys=KEYS, name="sessiongate-device", secure=False, lifetime=LIFETIME)


def _request(value: str) -> Request:
    header = f"sessiongate-device={value}".encode()
    return Request({"type": "http", "headers": [(b"cookie", header)]})


def _issued() -> str:
    response = Response()
    _cookie().write(response, ACCOUNT, HASH)
    set_cookie = response.headers["set-cookie"]
    return set_cookie.split(";")[0].split("=", 1)[1]


class _SignedAt(TimestampSigner):
    def __init__(self, at: int) -> None:
        super().__init__(list(KEYS), salt="sessiongate.device", digest_method=hashlib.sha256)
        self._at = at

    def get_timestamp(self) -> int:
        return self._at


def test_a_fresh_cookie_names_its_device_for_its_account_only() -> None:
    value = _issued()
    device = _cookie().device(_request(value), ACCOUNT, HASH)
    assert device is not None
    assert len(device) == 22
    assert _cookie().device(_request(value), uuid.uuid4(), HASH) is None
    # Two sign-ins, two devices ids.
    assert _cookie().device(_request(_issued()), ACCOUNT, HASH) != device


def test_an_expired_cookie_is_not_honoured() -> None:
    payload = f"{ACCOUNT.hex}.AAAAAAAAAAAAAAAAAAAAAA.".encode() + _password_tag(HASH)
    fresh = _SignedAt(int(time.time()) - LIFETIME + 60).sign(payload).decode()
    stale = _SignedAt(int(time.time()) - LIFETIME - 60).sign(payload).decode()
    assert _cookie().device(_request(fresh), ACCOUNT, HASH) == "AAAAAAAAAAAAAAAAAAAAAA"
    assert _cookie().device(_request(stale), ACCOUNT, HASH) is None


def test_a_cookie_signed_with_another_key_or_salt_is_not_honoured() -> None:
    payload = f"{ACCOUNT.hex}.AAAAAAAAAAAAAAAAAAAAAA.".encode() + _password_tag(HASH)
    other_key = TimestampSigner(["another key " + "y" * 40], salt="sessiongate.device")
    session_salt = TimestampSigner(list(KEYS), salt="sessiongate.session")
    for signer in (other_key, session_salt):
        value = signer.sign(payload).decode()
        assert _cookie().device(_request(value), ACCOUNT, HASH) is None
    assert _cookie().device(_request("x" * 500), ACCOUNT, HASH) is None


def test_a_cookie_issued_under_another_password_is_not_honoured() -> None:
    # A password change or reset ends the account's device cookies: whoever
    # signed in with the old password keeps no exemption from the lock.
    value = _issued()
    assert _cookie().device(_request(value), ACCOUNT, HASH) is not None
    assert _cookie().device(_request(value), ACCOUNT, HASH + "x") is None
    # The two-part form (no password tag) is not honoured either.
    old_form = _SignedAt(int(time.time())).sign(f"{ACCOUNT.hex}.AAAAAAAAAAAAAAAAAAAAAA".encode())
    assert _cookie().device(_request(old_form.decode()), ACCOUNT, HASH) is None
