"""The session cookie: a random secret, signed with itsdangerous, in an HttpOnly cookie."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection
from starlette.responses import Response

SECRET_BYTES = 32  # 256 bits from the OS's CSPRNG
_ENCODED_LENGTH = 43  # base64url of 32 bytes, unpadded
SALT = "sessiongate.session"


def new_secret() -> bytes:
    """A fresh session secret."""
    return secrets.token_bytes(SECRET_BYTES)


def token_hash(secret: bytes) -> bytes:
    """What the database stores and looks sessions up by: sha256(secret)."""
    return hashlib.sha256(secret).digest()


@dataclass(frozen=True)
class SessionCookie:
    """Reads, writes and deletes the session cookie.

    keys: signing keys, newest first; the newest signs, every key verifies.
    name: the cookie's name on the wire (with __Host- when secure).
    secure: send only over HTTPS.
    """

    keys: tuple[str, ...]
    name: str
    secure: bool

    @cached_property
    def _signer(self) -> Signer:
        # itsdangerous signs with the last key and tries them all. It derives
        # each HMAC key from the secret and the salt on every call, a hash
        # per key per request; derive them once here instead, and let the
        # signer use them as they are. Same keys, same signatures.
        deriving = Signer(
            list(reversed(self.keys)),
            salt=SALT,
            digest_method=hashlib.sha256,
        )
        derived = [deriving.derive_key(key) for key in deriving.secret_keys]
        return Signer(derived, key_derivation="none", digest_method=hashlib.sha256)

    def encode(self, secret: bytes) -> str:
        """The cookie value for a secret: base64url(secret) "." signature."""
        encoded = base64.urlsafe_b64encode(secret).rstrip(b"=")
        return self._signer.sign(encoded).decode("ascii")

    def decode(self, value: str) -> bytes | None:
        """The secret inside a cookie value, or None if it was not signed by us.

        A bad signature never reaches the database: it is "no session".
        """
        if len(value) > 256:
            return None
        try:
            encoded = self._signer.unsign(value.encode("ascii"))
        except (BadSignature, UnicodeEncodeError):
            return None
        if len(encoded) != _ENCODED_LENGTH:
            return None
        try:
            secret = base64.urlsafe_b64decode(encoded + b"=")
        except ValueError:
            return None
        return secret if len(secret) == SECRET_BYTES else None

    def read(self, connection: HTTPConnection) -> bytes | None:
        """The verified secret from a request's cookie, if any."""
        value = connection.cookies.get(self.name)
        return None if value is None else self.decode(value)

    def write(self, response: Response, secret: bytes, expires_at: datetime) -> None:
        """Set the cookie on a response, kept by the browser until the session's
        absolute expiry, so the browser forgets it no later than the server does."""
        max_age = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
        response.set_cookie(
            self.name,
            self.encode(secret),
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def delete(self, response: Response) -> None:
        """Tell the browser to drop the cookie now (Max-Age=0)."""
        response.set_cookie(
            self.name,
            "",
            max_age=0,
            expires=0,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
