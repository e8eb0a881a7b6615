"""A key for an e-mail address as typed, for counters and logs that must not store it.

The key is an HMAC under a secret only the service holds, never a plain
hash: what is typed into the address field may be a password, and a plain
sha256 of it, in auth.throttle or in the audit log, gives it back to anyone
with a dictionary.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass, field

from app.config import Settings

_DOTLESS_I = "\N{LATIN SMALL LETTER DOTLESS I}"
# The label that makes the address key a key of its own: HMAC-SHA256 of it
# under a signing key tells nothing about that key, or about the cookie
# signer's key, which itsdangerous derives under another salt.
_PURPOSE = b"sessiongate.address-key.v1"


def fold(email: str) -> str:
    """The address, folded deliberately coarsely.

    PostgreSQL finds an account with lower() under the database's
    collation, which can fold more than Python's str.lower() does (glibc
    folds "İ" to "i", Python to "i" and a combining dot): a key finer than
    that match would give one account a fresh key per spelling.
    Compatibility decomposition, case folding and dropping combining marks
    merge every such spelling, and a few distinct addresses with them;
    dotless i (U+0131) becomes "i" too, because Turkish and Azeri
    collations lower "I" to it. Plain ASCII folds as str.lower() does.
    """
    decomposed = unicodedata.normalize("NFKD", email.strip()).casefold()
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return folded.replace(_DOTLESS_I, "i")


@dataclass(frozen=True)
class AddressKeys:
    """Keys addresses as typed: HMAC-SHA256 of the folded address, in hex.

    secret: the HMAC key, 32 bytes; `from_settings` derives it from the
    newest of SECRET_KEYS, so nobody without that key can recompute a key
    from a guessed address. A new first key means new address keys.
    """

    secret: bytes = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressKeys:
        """The service's address keys: derived from the first of SECRET_KEYS."""
        signing_key = settings.signing_keys[0].encode()
        return cls(hmac.new(signing_key, _PURPOSE, hashlib.sha256).digest())

    def key(self, email: str) -> str:
        """The key for `email`: the same for every spelling the database matches."""
        return hmac.new(self.secret, fold(email).encode(), hashlib.sha256).hexdigest()
