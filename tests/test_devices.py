"""The device cookie: bound to one account, signed, and honoured only for its lifetime."""

from __future__ import annotations

import hashlib
import time
import uuid

from itsdangerous import TimestampSigner
from starlette.requests import Request
from starlette.responses import Response

from app.devices import DeviceCookie

KEYS = ("device-test-key-" + "x" * 40,)
ACCOUNT = uuid.uuid4()
LIFETIME = 3600


def _cookie() -> DeviceCookie:
    return DeviceCookie(keys=KEYS, name="sessiongate-device", secure=False, lifetime=LIFETIME)


def _request(value: str) -> Request:
    header = f"sessiongate-device={value}".encode()
    return Request({"type": "http", "headers": [(b"cookie", header)]})


def _issued() -> str:
    response = Response()
    _cookie().write(response, ACCOUNT)
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
    device = _cookie().device(_request(value), ACCOUNT)
    assert device is not None
    assert len(device) == 22
    assert _cookie().device(_request(value), uuid.uuid4()) is None
    # Two sign-ins, two devices ids.
    assert _cookie().device(_request(_issued()), ACCOUNT) != device


def test_an_expired_cookie_is_not_honoured() -> None:
    payload = f"{ACCOUNT.hex}.AAAAAAAAAAAAAAAAAAAAAA".encode()
    fresh = _SignedAt(int(time.time()) - LIFETIME + 60).sign(payload).decode()
    stale = _SignedAt(int(time.time()) - LIFETIME - 60).sign(payload).decode()
    assert _cookie().device(_request(fresh), ACCOUNT) == "AAAAAAAAAAAAAAAAAAAAAA"
    assert _cookie().device(_request(stale), ACCOUNT) is None


def test_a_cookie_signed_with_another_key_or_salt_is_not_honoured() -> None:
    payload = f"{ACCOUNT.hex}.AAAAAAAAAAAAAAAAAAAAAA".encode()
    other_key = TimestampSigner(["another key " + "y" * 40], salt="sessiongate.device")
    session_salt = TimestampSigner(list(KEYS), salt="sessiongate.session")
    for signer in (other_key, session_salt):
        value = signer.sign(payload).decode()
        assert _cookie().device(_request(value), ACCOUNT) is None
    assert _cookie().device(_request("x" * 500), ACCOUNT) is None
