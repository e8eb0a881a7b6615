"""Device cookies: a browser that signed in to an account before is not locked out with it.

The per-account login throttle stops a guesser spread over many networks,
but anyone can keep an account's lock shut by failing once whenever it
opens, and so keep its owner out. Following OWASP's "device cookies"
scheme, a successful login leaves a signed cookie naming the account (by
its user id: the throttle's address keys fold look-alike addresses
together on purpose, which must not let one account's cookie serve
another), the password it was issued under (a tag of the stored hash) and
a random device id. A login attempt that presents one for the account it
names, whose password has not changed since, is throttled per
device and per network instead of per account: the owner's own browser
gets in during an attack, and a guesser, who has no such cookie, still
meets the account's lock. A password change or reset ends every device
cookie of the account: whoever once knew the old password (and could sign
in as often as they liked, each time with a fresh device id and counter)
keeps no exemption from the lock on the new one. The cookie grants nothing
else: it is no session and opens no door without the password.
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
# A user id is 32 hex digits; a device id 22 and a password tag 16
# base64url characters.
_MAX_VALUE_LENGTH = 200
_TAG_LABEL = b"sessiongate.device.password\0"


def _password_tag(password_hash: str) -> bytes:
    """A short tag of the stored password hash: it changes with the password.

    The hash holds a random salt, so the tag lets nobody check a guessed
    password offline; it only tells the hash apart from the next one.
    """
    digest = hashlib.sha256(_TAG_LABEL + password_hash.encode("utf-8")).digest()[:12]
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


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

    def write(self, response: Response, user_id: UUID, password_hash: str) -> None:
        """Set a new device cookie for the account `user_id`, whose password hash is
        `password_hash` (as stored after this request), on a response."""
        device = base64.urlsafe_b64encode(secrets.token_bytes(_DEVICE_ID_BYTES)).rstrip(b"=")
        payload = b".".join((user_id.hex.encode("ascii"), device, _password_tag(password_hash)))
        value = self._signer.sign(payload).decode("ascii")
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

    def device(self, connection: HTTPConnection, user_id: UUID, password_hash: str) -> str | None:
        """The device id in the request's cookie, if it is ours, in date, for `user_id`,
        and issued under the password whose hash is `password_hash`."""
        value = connection.cookies.get(self.name)
        if value is None or len(value) > _MAX_VALUE_LENGTH:
            return None
        try:
            payload = self._signer.unsign(value.encode("ascii"), max_age=self.lifetime)
        except (BadSignature, UnicodeEncodeError):
            return None
        parts = payload.split(b".")
        if len(parts) != 3:
            return None
        named, device, tag = parts
        if not device or not hmac.compare_digest(
            named + b"." + tag, user_id.hex.encode("ascii") + b"." + _password_tag(password_hash)
        ):
            return None
        return device.decode("ascii")
