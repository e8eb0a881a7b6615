"""Device cookies: a browser that signed in to an account before is not locked out with it.

The per-account login throttle stops a guesser spread over many networks,
but anyone can keep an account's lock shut by failing once whenever it
opens, and so keep its owner out. Following OWASP's "device cookies"
scheme, a successful login leaves a signed cookie naming the account (by
its user id: the throttle's address keys fold look-alike addresses
together on purpose, which must not let one account's cookie serve
another) and a random device id. A login attempt that presents one for
the account it names is throttled per
device and per network instead of per account: the owner's own browser
gets in during an attack, and a guesser, who has no such cookie, still
meets the account's lock. The cookie grants nothing else: it is no session
and opens no door without the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cached_property
from uuid import UUID

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import HTTPConnection
from starlette.responses import Response

_DEVICE_ID_BYTES = 16
# A user id is 32 hex digits; a device id is 22 base64url characters.
_MAX_VALUE_LENGTH = 200


@dataclass(frozen=True)
class DeviceCookie:
    """Reads and writes the device cookie.

    keys: signing keys, newest first; the newest signs, every key verifies.
    name: the cookie's name on the wire (with __Host- when secure).
    secure: send only over HTTPS.
    lifetime: seconds a device cookie is honoured after its last sign-in.
    """

    keys: tuple[str, ...]
    name: str
    secure: bool
    lifetime: int

    @cached_property
    def _signer(self) -> TimestampSigner:
        # Its own salt: a session cookie's signature is never a device
        # cookie's, nor the other way round.
        return TimestampSigner(
            list(reversed(self.keys)), salt="sessiongate.device", digest_method=hashlib.sha256
        )

    def write(self, response: Response, user_id: UUID) -> None:
        """Set a new device cookie for the account `user_id` on a response."""
        device = base64.urlsafe_b64encode(secrets.token_bytes(_DEVICE_ID_BYTES)).rstrip(b"=")
        value = self._signer.sign(user_id.hex.encode("ascii") + b"." + device).decode("ascii")
        response.set_cookie(
            self.name,
            value,
            max_age=self.lifetime,
            path="/",
            secure=self.secure,
            httponly=True,
            # Only login reads it, and a login is always same-site.
            samesite="strict",
        )

    def device(self, connection: HTTPConnection, user_id: UUID) -> str | None:
        """The device id in the request's cookie, if it is ours, in date, and for `user_id`."""
        value = connection.cookies.get(self.name)
        if value is None or len(value) > _MAX_VALUE_LENGTH:
            return None
        try:
            payload = self._signer.unsign(value.encode("ascii"), max_age=self.lifetime)
        except (BadSignature, UnicodeEncodeError):
            return None
        named, _, device = payload.partition(b".")
        if not device or not hmac.compare_digest(named, user_id.hex.encode("ascii")):
            return None
        return device.decode("ascii")
