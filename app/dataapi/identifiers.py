"""Quoting identifiers that came from the catalog. Never call these on request text."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier, as PostgreSQL's quote_ident() would always quote."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """schema.name, both quoted."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"
