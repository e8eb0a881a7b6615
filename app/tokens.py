"""Verification and reset tokens: random, handed out once, known to the database only as sha256."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG
# base64url of 32 bytes, unpadded: what new_token() produces and nothing else.
_TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> tuple[str, bytes]:
    """A fresh token for a mail link, and the hash the database keeps."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    """sha256 of the token's text. The token is random, so no slow hash is needed."""
    return hashlib.sha256(token.encode("ascii")).digest()


def parse_token(raw: str) -> bytes | None:
    """The hash of a token as a client presents it, or None if it cannot be one of ours."""
    token = raw.strip()
    if not _TOKEN_FORMAT.fullmatch(token):
        return None
    return hash_token(token)
