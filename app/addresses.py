"""A key for an e-mail address as typed, for counters and logs that must not store it."""

from __future__ import annotations

import hashlib
import unicodedata

_DOTLESS_I = "\N{LATIN SMALL LETTER DOTLESS I}"


def address_key(email: str) -> str:
    """sha256 hex of the address, folded deliberately coarsely.

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
    return hashlib.sha256(folded.replace(_DOTLESS_I, "i").encode()).hexdigest()
