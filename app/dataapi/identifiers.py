"""Quoting identifiers: names from the catalog, and output aliases the grammar has read."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier, as PostgreSQL's quote_ident() would always quote."""
    if "\x00" in name:
        # PostgreSQL's protocol ends a query at NUL. The grammar refuses NUL
        # in every name a request gives (aliases among them); this is the
        # last line, never reached by a request.
        raise ValueError("an SQL identifier cannot hold a NUL character")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """schema.name, both quoted."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"
